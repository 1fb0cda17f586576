"""Live carbon intensity forecasts for real batches (`greenai schedule run --policy carbon`).

A real batch runs now, so carbon-aware timing needs the grid's intensity for the coming
hours, which the shipped 2020 traces cannot give. Two sources, named by one string:

- ``trace:FILE.csv`` (or any path ending in ``.csv``): a file of forecast intensities in the
  trace format (``Time,Carbon Intensity``), e.g. a grid operator's published forecast saved
  by a cron job (National Grid ESO's carbonintensity.org.uk publishes 48 hours ahead). It is
  read as published: the rows from the slot holding ``now`` on.
- ``MODULE:FUNCTION``: a callable ``(now_s, horizon_s) -> [(t_s, g/kWh), ...]``, e.g. a
  client of a live API, validated by ``ProviderForecaster``.
- ``trace:gb_2020`` (a shipped trace, as ``--intensity`` takes it): the 2020 trace replayed by
  time of year (``ReplayForecaster``), a typical curve for the season and hour rather than a
  forecast of today's grid: for trying the policy, or where no forecast is published.

A batch must never lose a job to its forecast: when the source fails, hangs or runs out
mid-batch, ``ResilientForecaster`` answers from the last good forecast while it still holds
now, then with a flat curve (every start looks equally good, so the policy starts jobs as
they come, i.e. FIFO), and says so once per failure streak.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import numpy as np

from greenai.carbon.grid_forecast import (
    IntensityForecaster,
    IntensitySeries,
    ProviderForecaster,
    load_intensity_series,
)
from greenai.carbon.step import StepFunction
from greenai.errors import CarbonDataError, ConfigError

TRACE_PREFIX = "trace:"
REPLAY_STEP_S = 900.0  # the shipped traces' finest step (gb_2020 from 2020-10-31)


class FileForecaster:
    """A forecast file as published: ``forecast(now, horizon)`` returns its rows from the
    slot holding ``now`` through the slot holding ``now + horizon`` (fewer if the file ends
    first: the last value then continues, see ``StepFunction.from_rows``). The file is read again when it
    changes on disk (a cron job refreshing it); a refresh that cannot be read is an error
    (``ResilientForecaster`` then answers from the last good forecast)."""

    def __init__(self, path: Path, timezone: str = "UTC") -> None:
        self.path, self.timezone = Path(path), timezone
        self.name = f"file({self.path.name})"
        self._mtime_ns = -1
        self.series: IntensitySeries | None = None
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as e:
            if self.series is None:
                raise ConfigError(f"forecast file {str(self.path)!r} not found") from e
            raise CarbonDataError(f"forecast file {self.path}: {e.strerror or e}") from e
        if mtime != self._mtime_ns:
            series = load_intensity_series(self.path, timezone=self.timezone)
            self.series, self._mtime_ns = series, mtime

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        self._reload()
        s = self.series
        assert s is not None
        if now_s < s.start_s or now_s >= s.end_s:
            raise CarbonDataError(
                f"forecast file {s.label} covers {_utc(s.start_s)} .. {_utc(s.end_s)} but it is now "
                f"{_utc(now_s)}: give a file that covers the batch (refresh the forecast)"
            )
        first = int(np.searchsorted(s.times_s, now_s, side="right")) - 1
        last = int(np.searchsorted(s.times_s, now_s + horizon_s, side="right"))
        return np.column_stack((s.times_s[first:last], s.values[first:last]))


class ReplayForecaster:
    """A shipped trace (``gb_2020``) as a forecast: its values at the same time of year,
    every ``REPLAY_STEP_S`` from the slot holding ``now`` on (``carbon.trace``'s replay)."""

    def __init__(self, trace_name: str) -> None:
        from greenai.carbon.trace import shipped_trace

        self.trace = shipped_trace(trace_name)  # an unknown name is a CarbonDataError listing the shipped ones
        self.name = f"{trace_name} replayed by time of year"

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        first = np.floor(now_s / REPLAY_STEP_S) * REPLAY_STEP_S
        count = int(np.ceil((now_s + max(horizon_s, 0.0) - first) / REPLAY_STEP_S)) + 1
        times = first + REPLAY_STEP_S * np.arange(count)
        return np.column_stack((times, [self.trace.intensity_at(float(t)) for t in times]))


class ResilientForecaster:
    """Wraps a live forecaster so that a failure mid-batch never costs a job nor the batch's
    saving: a call that fails (or takes longer than ``timeout_s``) is answered from the last
    good forecast while it still holds now, and only then by a flat curve (every start looks
    equally good: jobs start as they come). ``on_problem`` hears when the source starts
    failing and when it is back, once per streak."""

    def __init__(
        self, inner: IntensityForecaster, on_problem: Callable[[str], None] | None = None, timeout_s: float = 10.0
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.on_problem = on_problem
        self.timeout_s = timeout_s
        self.failing = False
        self._last_good: np.ndarray | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greenai-forecast")
        self._call: Future[np.ndarray] | None = None

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        try:
            rows = self._ask(now_s, horizon_s)
        except CarbonDataError as e:
            return self._stand_in(now_s, horizon_s, str(e))
        if self.failing:
            self.failing = False
            self._say(f"forecast {self.name} is back")
        self._last_good = rows
        return rows

    def _ask(self, now_s: float, horizon_s: float) -> np.ndarray:
        # a live source may hang: ask in a worker thread, never more than one call at a time
        if self._call is None or self._call.done():
            self._call = self._pool.submit(self.inner.forecast, now_s, horizon_s)
        else:
            raise CarbonDataError(f"forecast {self.name}: the previous call has not returned")
        try:
            return self._call.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise CarbonDataError(f"forecast {self.name}: no answer within {self.timeout_s:g} s") from None

    def _stand_in(self, now_s: float, horizon_s: float, problem: str) -> np.ndarray:
        last = self._last_good
        held = last is not None and StepFunction.from_rows(last).covers(now_s)
        if not self.failing:
            self.failing = True
            fallback = (
                "using its last good forecast while it holds, then starting jobs as they come"
                if held
                else "starting jobs as they come until it is back"
            )
            self._say(f"{problem}; {fallback}")
        if held:
            assert last is not None
            first = int(np.searchsorted(last[:, 0], now_s, side="right")) - 1
            return last[first:]
        return np.array([[now_s, 0.0], [now_s + max(horizon_s, 1.0), 0.0]])

    def _say(self, message: str) -> None:
        if self.on_problem is not None:
            self.on_problem(message)


def forecaster_from_spec(spec: str, *, timezone: str = "UTC", now_s: float | None = None) -> IntensityForecaster:
    """The forecaster a source string names (see the module doc). With ``now_s``, a file
    must cover that moment (checked before a batch starts, so a stale file is refused
    before any job runs)."""
    text = spec.strip()
    from greenai.carbon.trace import SHIPPED_TRACES

    if text.startswith(TRACE_PREFIX) and text.removeprefix(TRACE_PREFIX).strip() in SHIPPED_TRACES:
        return ReplayForecaster(text.removeprefix(TRACE_PREFIX).strip())
    if text.startswith(TRACE_PREFIX) or text.lower().endswith(".csv"):
        path = Path(text.removeprefix(TRACE_PREFIX))
        if not path.is_file():
            raise ConfigError(f"forecast file {str(path)!r} not found")
        forecaster = FileForecaster(path, timezone)
        if now_s is not None:
            forecaster.forecast(now_s, 0.0)
        return forecaster
    if ":" not in text:
        raise ConfigError(
            f"--forecast {spec!r}: give trace:FILE.csv or MODULE:FUNCTION "
            "(a callable (now_s, horizon_s) -> [(t_s, g/kWh), ...]), or a shipped trace (trace:gb_2020)"
        )
    from greenai.factories import load_callable

    return ProviderForecaster(load_callable(text, ConfigError), name=text)


def _utc(t_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
