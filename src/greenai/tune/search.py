"""Which settings the tuner profiles, in which order: exhaustive, successive halving, or
coordinate descent.

A search is a generator of settings. It is resumed only after the tuner has profiled the
setting it yielded last, so it may ask `cost(setting)` of anything it yielded before; a
setting yielded again is profiled again, and its cost then pools all its trials. The tuner
stops pulling settings when its profiling budget is spent.

Successive halving (Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and
Hyperparameter Optimization", AISTATS 2016) measures every setting once, then re-measures the
better half, and so on down to two finalists that alternate until the budget ends: on a
noisy machine the contenders get the most (and most interleaved) measurements.

Coordinate descent (e.g. Wright, "Coordinate descent algorithms", Math. Programming 151,
2015) changes one knob at a time, keeping the others at the best setting so far. One pass
costs 1 + sum(|values_k| - 1) trials instead of the product of the |values_k|; it finds the
grid's optimum when the knobs' effects are separable, and a local optimum otherwise, which
further passes (budget allowing) can improve.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Setting = tuple[tuple[str, Any], ...]  # (knob name, value) in knob order: hashable
Axes = Sequence[tuple[str, Sequence[Any]]]  # (knob name, candidate values)


def grid_size(axes: Axes) -> int:
    return math.prod(len(values) for _, values in axes)


def pass_size(axes: Axes) -> int:
    """Trials in one coordinate-descent pass from a start on the grid."""
    return 1 + sum(len(values) - 1 for _, values in axes)


def with_value(setting: Setting, name: str, value: Any) -> Setting:
    return tuple((k, value if k == name else v) for k, v in setting)


def exhaustive(axes: Axes, start: Setting) -> Iterator[Setting]:
    """Every grid point once, the starting setting first."""
    yield start
    names = [name for name, _ in axes]
    for values in itertools.product(*(vals for _, vals in axes)):
        setting = tuple(zip(names, values))
        if setting != start:
            yield setting


def successive_halving(axes: Axes, start: Setting, cost: Callable[[Setting], float]) -> Iterator[Setting]:
    """The whole grid, then the cheaper half (at least two) again and again, without end."""
    survivors = list(exhaustive(axes, start))
    while True:
        yield from survivors
        if len(survivors) > 2:
            survivors = sorted(survivors, key=cost)[: max(2, math.ceil(len(survivors) / 2))]


def coordinate_descent(
    axes: Axes, start: Setting, cost: Callable[[Setting], float], max_passes: int
) -> Iterator[Setting]:
    """Knob by knob, try each value with the others at the best setting so far; stop after
    a pass that improves nothing, or after `max_passes`."""
    best = start
    tried: set[Setting] = set()
    if start not in tried:
        tried.add(start)
        yield start
    for _ in range(max_passes):
        improved = False
        for name, values in axes:
            line = [with_value(best, name, v) for v in values]
            for setting in line:
                if setting not in tried:
                    tried.add(setting)
                    yield setting
            candidate = min(line, key=cost)
            if cost(candidate) < cost(best):
                best, improved = candidate, True
        if not improved:
            return
