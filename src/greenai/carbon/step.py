"""The step function of carbon intensity over time: one type for traces, series and forecasts.

Rows ``(t_s, value)`` with strictly increasing times. Row ``i`` holds ``values[i]`` over
``[t_i, t_{i+1})``; the last row holds for one more step of the same length, so the function
ends (exclusive) at ``end_s = 2 t[-1] - t[-2]`` (a single row holds for ever). With
``extend=True`` (forecast rows: a source that publishes less than was asked is taken as is)
the last value also continues past ``end_s`` in integrals.

A step longer than ``max_gap_s`` is a gap in the data: ``find_gap`` is that rule, and every
reader of traces refuses such a gap rather than silently bridging it. By default the limit is
twice the median step (the lower median, so that in a short file the gap itself cannot
raise the median and hide) and never more than ``MAX_STEP_S``, 1.5 days: daily data
passes (a 25 h daylight-saving day too), a missing day does not. A trace with coarser rows
needs an explicit ``max_gap_s``.

Lookups are pure Python (binary search, O(log n)), so ``greenai.carbon`` imports without
numpy; the exact integral over many intervals is vectorised with numpy (imported on first
use) from a cumulative sum, two interpolations per bound.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from greenai.units import S_PER_DAY, format_duration

if TYPE_CHECKING:
    import numpy as np

# row times and values: lists (traces read from CSV) or numpy arrays (series, forecast rows)
Rows = TypeVar("Rows", Sequence[float], "np.ndarray")

__all__ = ["MAX_STEP_S", "Gap", "StepFunction", "find_gap", "step_end_s", "step_integral"]

MAX_STEP_S = 1.5 * S_PER_DAY  # the longest step the default gap rule accepts


def step_end_s(times_s: Sequence[float] | np.ndarray) -> float:
    """Where a step function over these row times stops holding: the last row plus one step
    (a single row: never)."""
    return float(2 * times_s[-1] - times_s[-2]) if len(times_s) > 1 else math.inf


class Gap(NamedTuple):
    """A step between rows ``row`` and ``row + 1`` longer than the rule allows."""

    row: int
    step_s: float
    limit_s: float
    median_step_s: float  # the lower median of the steps
    rule: str  # the limit that applied, in words: "max_gap_s", "2x the median step of 30 min", ...


def find_gap(times_s: Sequence[float] | np.ndarray, max_gap_s: float | None = None) -> Gap | None:
    """The first gap of increasing row times (see the module docstring for the rule), or
    None. Needs at least two rows."""
    steps = [float(b - a) for a, b in pairwise(times_s)]
    median = statistics.median_low(steps)
    if max_gap_s is not None:
        limit, rule = max_gap_s, "max_gap_s"
    elif 2 * median <= MAX_STEP_S:
        limit, rule = 2 * median, f"2x the median step of {format_duration(median)}"
    else:
        limit, rule = MAX_STEP_S, f"the longest step accepted without max_gap_s, {format_duration(MAX_STEP_S)}"
    for i, step in enumerate(steps):
        if step > limit:
            return Gap(i, step, limit, median, rule)
    return None


class StepFunction(Generic[Rows]):
    """The step function of rows ``times_s`` (strictly increasing) and ``values``; see the
    module docstring. The rows are not copied nor validated: readers validate them."""

    def __init__(self, times_s: Rows, values: Rows, *, extend: bool = False) -> None:
        if len(times_s) != len(values) or len(times_s) == 0:
            raise ValueError("a step function needs as many values as times, and at least one row")
        self.times_s: Rows = times_s
        self.values: Rows = values
        self.extend = extend
        self.end_s = step_end_s(times_s)
        self._integral: tuple[np.ndarray, np.ndarray] | None = None  # (knots, cumulative integral), on first use

    @staticmethod
    def from_rows(rows: np.ndarray, *, extend: bool = True) -> StepFunction[np.ndarray]:
        """Of an ``(n, 2)`` array of rows ``(t_s, value)``, as forecasters return them; by
        default the last value continues beyond the rows."""
        return StepFunction(rows[:, 0], rows[:, 1], extend=extend)

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    def __len__(self) -> int:
        return len(self.times_s)

    def covers(self, t: float) -> bool:
        """Whether a row holds at ``t``: ``start_s <= t < end_s``."""
        return bool(self.times_s[0] <= t < self.end_s)

    def index_at(self, t: float) -> int:
        """Index of the row holding at ``t`` (-1 before the first row)."""
        return bisect.bisect_right(self.times_s, t) - 1

    def value_at(self, t: float) -> float:
        """The value at ``t``, which the caller has checked is covered (see ``covers``)."""
        return self.values[self.index_at(t)]

    def integral(self, t0: np.ndarray | float, t1: np.ndarray | float) -> np.ndarray:
        """∫ value dt over ``[t0, t1]`` (value x s), exact for the step function; element-wise
        for arrays. Before the first row the function is 0; past ``end_s`` it is 0 too, or
        the last value with ``extend``."""
        import numpy as np

        knots, cum = self._cumulative()
        if not self.extend:
            return np.interp(t1, knots, cum) - np.interp(t0, knots, cum)
        tail = float(self.values[-1])

        def at(x: np.ndarray) -> np.ndarray:
            return np.interp(x, knots, cum) + np.maximum(x - knots[-1], 0.0) * tail

        return at(np.asarray(t1, float)) - at(np.asarray(t0, float))

    def _cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        if self._integral is None:
            import numpy as np

            t = np.asarray(self.times_s, float)
            end = self.end_s if len(t) > 1 else float(t[-1]) + 1.0  # one row: any step, then its tail
            knots = np.append(t, end)
            cum = np.concatenate(([0.0], np.cumsum(np.asarray(self.values, float) * np.diff(knots))))
            self._integral = (knots, cum)
        return self._integral


def step_integral(rows: np.ndarray, t0: np.ndarray | float, t1: np.ndarray | float) -> np.ndarray:
    """∫ of the step function of forecast rows ``(t_s, g/kWh)`` over ``[t0, t1]``, the last
    value continuing beyond the rows."""
    return StepFunction.from_rows(rows).integral(t0, t1)
