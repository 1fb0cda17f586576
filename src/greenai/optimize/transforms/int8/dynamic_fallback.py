"""Dynamic int8 with per-layer float fallback: quantize every Linear, and when quality drops
more than the bound, keep the layers that hurt most in float.

Sensitivity is measured, not guessed (float_fallback.py, the same rule as static int8's):
the most harmful Linear layers go back to float one at a time until the drop is within
`max_quality_drop` or `max_float_layers` is reached. Cost: one evaluation per Linear layer,
plus one per layer kept float. torch.ao path only: it takes a qconfig per module name.
Outlier activations in a few layers (e.g. transformer feed-forward outputs; Dettmers et al.,
"LLM.int8()", NeurIPS 2022) are the usual reason per-tensor dynamic int8 fails a fidelity bound.
"""

from __future__ import annotations

import copy
from collections.abc import Collection

import torch
from torch import nn

from greenai.errors import ConfigError, TransformSkipped
from greenai.hardware.cpu import FeaturesSource, features_of
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.int8.common import (
    quantized_engine,
    quiet_torch_ao,
    torch_ao_available,
)
from greenai.optimize.transforms.int8.dynamic import NoTransformerFastPath
from greenai.optimize.transforms.int8.float_fallback import float_fallback
from greenai.optimize.transforms.precision import smoke_test


def quantize_linears(model: nn.Module, engine: str, per_channel: bool, float_layers: Collection[str] = ()) -> nn.Module:
    """A dynamically quantized copy of `model`: every nn.Linear but `float_layers` in int8."""
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
    )
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    copied = copy.deepcopy(model).eval()
    spec = {
        name: qconfig for name, m in copied.named_modules() if isinstance(m, nn.Linear) and name not in float_layers
    }
    with quiet_torch_ao(), quantized_engine(engine):
        quantized = ao_quantize_dynamic(copied, spec, dtype=torch.qint8, inplace=True)
    if any(isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerEncoder)) for m in quantized.modules()):
        quantized = NoTransformerFastPath(quantized)
    return quantized


class DynamicInt8Fallback:
    """Dynamic int8 for Linear layers, the most quality-harming ones kept in float."""

    def __init__(
        self,
        per_channel: bool = True,
        max_quality_drop: float = 0.01,
        max_float_layers: int = 12,
        features: FeaturesSource = None,
    ) -> None:
        if max_quality_drop < 0 or max_float_layers < 0:
            raise ConfigError("max_quality_drop and max_float_layers must be >= 0")
        self.per_channel = per_channel
        self.max_quality_drop = max_quality_drop
        self.max_float_layers = max_float_layers
        self._features = features
        self.name = "int8-dynamic-fallback"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        if not torch_ao_available():
            raise TransformSkipped(f"{self.name}: needs torch.ao.quantization, not available")
        try:
            engine = features_of(self._features).quantized_engine()
        except ValueError as e:
            raise TransformSkipped(f"{self.name}: {e}") from e
        linears = [name for name, m in candidate.model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise TransformSkipped(f"{self.name}: no nn.Linear layers to quantize")
        reference = task.evaluate(candidate.model)
        result = float_fallback(
            lambda keep: quantize_linears(candidate.model, engine, self.per_channel, keep),
            task.evaluate,
            linears,
            reference,
            self.max_quality_drop,
            self.max_float_layers,
        )
        model, float_layers, quality, all_int8 = (
            result.model,
            result.float_layers,
            result.quality,
            result.quality_all_int8,
        )
        smoke_test(model, task, self.name)
        within = reference - quality <= self.max_quality_drop
        note = (
            f"dynamic int8 ({'per-channel' if self.per_channel else 'per-tensor'} weights, torch.ao, "
            f"engine {engine}) on {len(linears) - len(float_layers)} of {len(linears)} Linear layers; "
            f"quality {reference:.4g} float, {all_int8:.4g} all int8, {quality:.4g} with "
            f"{len(float_layers)} layer(s) kept float"
            + (
                ""
                if within
                else f"; still {reference - quality:.3g} below the float model, "
                f"more than {self.max_quality_drop} (limit {self.max_float_layers} float layers)"
            )
        )
        return candidate.derive(self.name, model, note=note, float_layers=list(float_layers), quality_all_int8=all_int8)
