"""Time-varying carbon intensity from a trace file, looked up as a step function.

Each row holds from its timestamp until the next row's; the last row holds for one more step
of the same length (``greenai.carbon.step.StepFunction``, the one step-function type). Lookup
is a binary search over the row times (O(log n)).

Alignment of a lookup time ``t`` onto the trace:

- ``"exact"``: ``t`` must fall inside the trace, else ``CarbonDataError`` says the range.
- ``"time-of-year"`` (replay): ``t`` is moved to the same month, day and time of day
  (in the trace's time zone) in a year the trace covers, preferring the year of the
  trace's midpoint. This applies a historical year, such as the shipped 2020 traces, to a
  run today: it keeps the seasonal and daily shape of the grid but not its weekday
  pattern nor its change since. 29 February maps to 28 February in a non-leap year.

Shipped traces (``greenai.data/traces``), ENTSO-E Transparency Platform data as published
with "Let's Wait Awhile" (Wiesner et al., Middleware 2021, doi:10.1145/3464298.3493399),
from 2019-12-20 to 2021-01-09:

- ``gb_2020``: Great Britain, 30 min steps, 15 min from 2020-10-31 on.
- ``fr_2020``: France, hourly ENTSO-E data interpolated by the authors to 30 min steps.

Their timestamps carry no offset and are read as UTC: both have exactly 48 rows on the
daylight-saving change days of 2020 (local times would skip or repeat an hour there).
"""

from __future__ import annotations

import calendar
import os
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from greenai.carbon.step import StepFunction
from greenai.carbon.trace_csv import read_trace_file, time_zone
from greenai.errors import CarbonDataError, ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ALIGNS = ("exact", "time-of-year")
SHIPPED_TRACES = ("gb_2020", "fr_2020")
_SHIPPED_SOURCE = "ENTSO-E via Let's Wait Awhile, Wiesner et al. 2021"
# What to do about a run outside a trace read at exact times. `--intensity trace:FILE.csv` (and
# the config's `intensity`) has no way to ask for replay: only the Python constructor has.
OUTSIDE_ADVICE = (
    "give a trace that covers the run's dates (--intensity trace:FILE.csv reads a file at exact times); "
    "in Python, TraceIntensity(path, align='time-of-year') replays this one by time of year"
)


class TraceIntensity:
    """Carbon intensity read from a CSV trace (see ``trace_csv`` for the format)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | Traversable,
        *,
        timezone: str = "UTC",
        align: str = "exact",
        max_gap_s: float | None = None,
        time_column: str | None = None,
        intensity_column: str | None = None,
        label: str | None = None,
        source: str = "",
    ) -> None:
        if align not in ALIGNS:
            raise ConfigError(f"unknown trace alignment {align!r}; use one of {', '.join(ALIGNS)}")
        if max_gap_s is not None and not max_gap_s > 0:
            raise ConfigError(f"max_gap_s must be > 0 seconds, got {max_gap_s!r}")
        self.align = align
        self.label = label or str(path)
        self.source = source
        self._tz = time_zone(timezone)
        self._tz_name = timezone
        times, values = read_trace_file(
            path,
            self.label,
            self._tz,
            max_gap_s=max_gap_s,
            time_column=time_column,
            intensity_column=intensity_column,
        )
        self._steps = StepFunction(times, values)
        self._years = self._replay_years()

    @property
    def start_s(self) -> float:
        """Unix time the trace starts."""
        return self._steps.start_s

    @property
    def end_s(self) -> float:
        """Unix time the trace ends (exclusive): the last row plus one step."""
        return self._steps.end_s

    def __len__(self) -> int:
        return len(self._steps)

    def mean_g_per_kwh(self) -> float:
        """The time-weighted mean intensity over the whole trace (gCO2e/kWh)."""
        return float(self._steps.integral(self.start_s, self.end_s)) / (self.end_s - self.start_s)

    def range_text(self) -> str:
        """``"2019-12-20 00:00 to 2021-01-10 00:00 UTC"``: where the trace starts and ends."""
        return self._range()

    def intensity_at(self, t: float) -> float:
        if self.align == "time-of-year":
            t = self._replay(t)
        elif not self._steps.covers(t):
            raise CarbonDataError(
                f"time {self._local(t):%Y-%m-%d %H:%M} is outside trace {self.label} "
                f"({self._range()}); {OUTSIDE_ADVICE}"
            )
        return self._steps.value_at(t)

    def describe(self) -> str:
        mode = "replayed by time of year" if self.align == "time-of-year" else "exact times"
        suffix = f" ({self.source})" if self.source else ""
        return f"trace {self.label}: {len(self)} steps, {self._range()}, {mode}{suffix}"

    def _local(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self._tz)

    def _range(self) -> str:
        start, end = self._local(self.start_s), self._local(self.end_s)
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {self._tz_name}"

    def _replay_years(self) -> list[int]:
        first, last = self._local(self.start_s).year, self._local(self.end_s).year
        middle = self._local((self.start_s + self.end_s) / 2).year
        return sorted(range(first, last + 1), key=lambda year: (abs(year - middle), year))

    def _replay(self, t: float) -> float:
        moment = self._local(t)
        for year in self._years:
            leap_day = (moment.month, moment.day) == (2, 29) and not calendar.isleap(year)
            u = moment.replace(year=year, day=28 if leap_day else moment.day).timestamp()
            if self._steps.covers(u):
                return u
        raise CarbonDataError(
            f"trace {self.label} ({self._range()}) has no {moment:%d %b %H:%M} to replay "
            f"{moment:%Y-%m-%d %H:%M} on; a time-of-year trace should span a whole year"
        )


def shipped_trace_path(name: str) -> Traversable:
    """The packaged CSV file of a shipped trace (``gb_2020`` or ``fr_2020``)."""
    if name not in SHIPPED_TRACES:
        raise CarbonDataError(
            f"unknown shipped trace {name!r}; shipped traces: {', '.join(SHIPPED_TRACES)} (see `greenai carbon traces`)"
        )
    from importlib import resources  # deferred: keeps `import greenai.carbon` light

    return resources.files("greenai.data").joinpath("traces").joinpath(f"{name}.csv")


@cache
def shipped_trace(name: str) -> TraceIntensity:
    """A trace shipped with greenai (``gb_2020`` or ``fr_2020``), replayed by time of year."""
    return TraceIntensity(shipped_trace_path(name), align="time-of-year", label=name, source=_SHIPPED_SOURCE)
