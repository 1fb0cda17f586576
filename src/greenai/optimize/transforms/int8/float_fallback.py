"""Per-layer float fallback for int8 transforms, by measured sensitivity.

Each quantizable layer in turn is left float (all others int8) and the quality it recovers
is recorded; the most harmful layers then go back to float one at a time (in the spirit of
mixed-precision sensitivity analysis, e.g. Dong et al., "HAWQ", ICCV 2019, here measured
rather than estimated from the Hessian). Cost: one evaluation per layer, plus one per layer
kept float. Shared by static int8 (quantize_static.py) and dynamic int8
(quantize_dynamic_fallback.py), which differ only in how they quantize.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class FallbackResult:
    model: nn.Module
    float_layers: list[str]
    quality: float  # of `model`
    quality_all_int8: float
    sensitivity: list[tuple[str, float]]  # (layer, quality gained keeping only it float), worst first


def float_fallback(
    quantize: Callable[[Sequence[str]], nn.Module],
    evaluate: Callable[[nn.Module], float],
    layers: Sequence[str],
    reference: float,
    max_drop: float,
    limit: int,
    fixed: bool = False,
    all_int8: nn.Module | None = None,
) -> FallbackResult:
    """Quantize with `quantize(float_layers)`, keeping layers float until the quality is
    within `max_drop` of `reference` (at most `limit` layers; a layer whose fallback alone
    does not help ends the search). With `fixed`, exactly the `limit` most harmful layers
    stay float, whatever the quality. `all_int8`: the all-int8 model, if already built."""
    model = all_int8 if all_int8 is not None else quantize(())
    quality_all = evaluate(model)
    if not fixed and reference - quality_all <= max_drop:
        return FallbackResult(model, [], quality_all, quality_all, [])
    ranking = sorted(
        ((layer, evaluate(quantize([layer])) - quality_all) for layer in layers), key=lambda item: item[1], reverse=True
    )
    float_layers: list[str] = []
    quality = quality_all
    for layer, gain in ranking[:limit]:
        if not fixed and gain <= 0:
            break  # keeping this layer float alone does not help
        float_layers.append(layer)
        model = quantize(float_layers)
        if not fixed:
            quality = evaluate(model)
            if reference - quality <= max_drop:
                break
    if fixed and float_layers:
        quality = evaluate(model)
    return FallbackResult(model, float_layers, quality, quality_all, ranking)
