"""Transforms by name, for the command line: `NAME[=ARG]`, joined by `+` into a pipeline.

    int8-dynamic[=perchannel|fallback]   int8-static            int8-qat           bf16-autocast   bf16
    prune-unstructured=0.5  prune-unstructured=taylor:0.5            prune-structured=0.3
    depthwise-separable     grouped-shuffle=4      distill-halve-width
    threads=1               batch=256              trim-padding       fp16-autocast

e.g. `prune-structured=0.5+int8-static+threads=1`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from greenai.errors import ConfigError
from greenai.optimize.candidate import Transform
from greenai.optimize.search import Pipeline


def _fraction(arg: str | None, default: float) -> float:
    try:
        value = float(arg) if arg else default
    except ValueError:
        raise ConfigError(f"expected a fraction such as 0.5, got {arg!r}") from None
    if not 0 < value < 1:
        raise ConfigError(f"fraction must be between 0 and 1, got {value}")
    return value


def _int(arg: str | None, default: int) -> int:
    try:
        return int(arg) if arg else default
    except ValueError:
        raise ConfigError(f"expected a whole number, got {arg!r}") from None


def _unstructured(arg: str | None) -> Transform:
    from greenai.optimize.transforms.prune import UnstructuredImportance, UnstructuredPrune

    importance, _, amount = (arg or "").rpartition(":")
    # the name as typed: UnstructuredPrune checks it against the choices (ConfigError otherwise)
    return UnstructuredPrune(_fraction(amount, 0.5), cast(UnstructuredImportance, importance or "magnitude"))


def _registry() -> dict[str, Callable[[str | None], Transform]]:
    from greenai.optimize.transforms.distill import Distill, halve_width
    from greenai.optimize.transforms.int8.dynamic import DynamicInt8
    from greenai.optimize.transforms.int8.dynamic_fallback import DynamicInt8Fallback
    from greenai.optimize.transforms.int8.qat import QuantAwareTraining
    from greenai.optimize.transforms.int8.static import StaticInt8
    from greenai.optimize.transforms.lighten import DepthwiseSeparable, GroupedShuffle
    from greenai.optimize.transforms.padding import TrimPadding
    from greenai.optimize.transforms.precision import Bf16Autocast, Bf16Weights, Fp16Autocast
    from greenai.optimize.transforms.prune import StructuredPrune
    from greenai.optimize.transforms.runtime import BatchSize, Threads

    return {
        "int8-dynamic": lambda a: (
            DynamicInt8Fallback() if a == "fallback" else DynamicInt8(per_channel=a == "perchannel")
        ),
        "int8-static": lambda a: StaticInt8(per_channel=a != "pertensor"),
        "int8-qat": lambda a: QuantAwareTraining(steps=_int(a, 0) or None),
        "bf16-autocast": lambda a: Bf16Autocast(),
        "bf16": lambda a: Bf16Weights(),
        "fp16-autocast": lambda a: Fp16Autocast(),
        "prune-unstructured": _unstructured,
        "prune-structured": lambda a: StructuredPrune(_fraction(a, 0.3)),
        "depthwise-separable": lambda a: DepthwiseSeparable(),
        "grouped-shuffle": lambda a: GroupedShuffle(_int(a, 4)),
        "distill-halve-width": lambda a: Distill(halve_width),
        "threads": lambda a: Threads(_int(a, 1)),
        "batch": lambda a: BatchSize(_int(a, 256)),
        "trim-padding": lambda a: TrimPadding(),
    }


def parse_pipeline(text: str) -> tuple[Transform, ...]:
    """`prune-structured=0.5+int8-static` -> (StructuredPrune(0.5), StaticInt8())."""
    registry = _registry()
    steps = []
    for part in text.split("+"):
        name, _, arg = part.strip().partition("=")
        make = registry.get(name)
        if make is None:
            raise ConfigError(f"unknown transform {name!r}; known: {', '.join(sorted(registry))}")
        steps.append(make(arg or None))
    return tuple(steps)


DEFAULT_PLAN = (
    "threads=1",
    "int8-dynamic",
    "int8-static",
    "bf16-autocast",
    "prune-unstructured=0.5",
    "prune-structured=0.3",
    "depthwise-separable",
    "distill-halve-width",
    "trim-padding",
    "prune-structured=0.3+int8-static",
    "int8-dynamic+threads=1",
    "trim-padding+int8-dynamic",
)


def default_plan() -> list[Pipeline]:
    """Every family once, and the usual combinations; what does not apply is skipped."""
    return [parse_pipeline(text) for text in DEFAULT_PLAN]
