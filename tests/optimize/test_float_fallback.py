"""The per-layer float fallback on its own: a fake 'quantizer' whose quality loss per int8
layer is known, so the search's choices can be checked exactly."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from greenai.optimize.transforms.int8.float_fallback import float_fallback

LOSS = {"a": 0.05, "b": 0.02, "c": 0.0, "d": 0.01}  # quality lost when the layer is int8


class Fake(nn.Module):
    def __init__(self, float_layers: Sequence[str]) -> None:
        super().__init__()
        self.float_layers = list(float_layers)


def quality(model: nn.Module) -> float:
    return 1.0 - sum(loss for name, loss in LOSS.items() if name not in model.float_layers)


def test_the_most_harmful_layers_go_float_until_within_the_bound() -> None:
    built: list[list[str]] = []

    def quantize(keep: Sequence[str]) -> nn.Module:
        built.append(list(keep))
        return Fake(keep)

    r = float_fallback(quantize, quality, list(LOSS), reference=1.0, max_drop=0.015, limit=3)
    assert r.float_layers == ["a", "b"] and r.quality == 1.0 - 0.01 and r.quality_all_int8 == 0.92
    assert [name for name, _ in r.sensitivity] == ["a", "b", "d", "c"]
    assert r.model.float_layers == ["a", "b"]
    # within the bound at once: nothing ranked, nothing kept float
    r = float_fallback(quantize, quality, list(LOSS), reference=1.0, max_drop=0.2, limit=3)
    assert r.float_layers == [] and r.sensitivity == []


def test_limit_useless_layers_and_fixed_count() -> None:
    quantize = Fake
    r = float_fallback(quantize, quality, list(LOSS), reference=1.0, max_drop=0.0, limit=2)
    assert r.float_layers == ["a", "b"] and r.quality < 1.0  # the limit stops it short
    r = float_fallback(quantize, quality, list(LOSS), reference=1.0, max_drop=0.0, limit=4)
    assert r.float_layers == ["a", "b", "d"]  # 'c' recovers nothing: the search ends there
    r = float_fallback(quantize, quality, list(LOSS), reference=1.0, max_drop=0.5, limit=1, fixed=True)
    assert r.float_layers == ["a"] and r.quality == 1.0 - 0.03  # fixed: kept float whatever the bound
