"""Live carbon intensity forecasts for real batches (`greenai schedule run --policy carbon`).

A real batch runs now, so carbon-aware timing needs the grid's intensity for the coming
hours, which the shipped 2020 traces cannot give. Two sources, named by one string:

- ``trace:FILE.csv`` (or any path ending in ``.csv``): a file of forecast intensities in the
  trace format (``Time,Carbon Intensity``), e.g. a grid operator's published forecast saved
  by a cron job (National Grid ESO's carbonintensity.org.uk publishes 48 hours ahead). It is
  read as published: the rows from the slot holding ``now`` on.
- ``MODULE:FUNCTION``: a callable ``(now_s, horizon_s) -> [(t_s, g/kWh), ...]``, e.g. a
  client of a live API, validated by ``ProviderForecaster``.

A batch must never lose a job to its forecast: when the source fails or runs out mid-batch,
``ResilientForecaster`` answers a flat curve (every start looks equally good, so the policy
starts jobs as they come, i.e. FIFO) and reports the problem once per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from greenai.errors import CarbonDataError, ConfigError
from greenai.schedule.forecast import (
    IntensityForecaster,
    IntensitySeries,
    ProviderForecaster,
    load_intensity_series,
)

TRACE_PREFIX = "trace:"


class FileForecaster:
    """A forecast file as published: ``forecast(now, horizon)`` returns its rows from the
    slot holding ``now`` through the slot holding ``now + horizon`` (fewer if the file ends
    first: the last value then continues, see ``StepCurve``)."""

    def __init__(self, series: IntensitySeries) -> None:
        self.series = series
        self.name = f"file({series.label})"

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        s = self.series
        if now_s < s.start_s or now_s >= s.end_s:
            raise CarbonDataError(
                f"forecast file {s.label} covers {_utc(s.start_s)} .. {_utc(s.end_s)} but it is now "
                f"{_utc(now_s)}: give a file that covers the batch (refresh the forecast)")
        first = int(np.searchsorted(s.times_s, now_s, side="right")) - 1
        last = int(np.searchsorted(s.times_s, now_s + horizon_s, side="right"))
        return np.column_stack((s.times_s[first:last], s.values[first:last]))


class ResilientForecaster:
    """Wraps a forecaster so that a failure mid-batch degrades to "start now" (a flat
    forecast) instead of failing the batch; ``on_problem`` hears each kind of failure once."""

    def __init__(self, inner: IntensityForecaster, on_problem: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.on_problem = on_problem
        self.problems: list[str] = []

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        try:
            return self.inner.forecast(now_s, horizon_s)
        except CarbonDataError as e:
            message = f"{e}; starting jobs as they come until the forecast is back"
            if message not in self.problems:
                self.problems.append(message)
                if self.on_problem is not None:
                    self.on_problem(message)
            return np.array([[now_s, 0.0], [now_s + max(horizon_s, 1.0), 0.0]])


def forecaster_from_spec(spec: str, *, timezone: str = "UTC", now_s: float | None = None) -> IntensityForecaster:
    """The forecaster a source string names (see the module doc). With ``now_s``, a file
    must cover that moment (checked before a batch starts, so a stale file is refused
    before any job runs)."""
    text = spec.strip()
    if text.startswith(TRACE_PREFIX) or text.lower().endswith(".csv"):
        path = Path(text.removeprefix(TRACE_PREFIX))
        if not path.is_file():
            raise ConfigError(f"forecast file {str(path)!r} not found")
        forecaster = FileForecaster(load_intensity_series(path, timezone=timezone))
        if now_s is not None:
            forecaster.forecast(now_s, 0.0)
        return forecaster
    if ":" not in text:
        raise ConfigError(f"--forecast {spec!r}: give trace:FILE.csv or MODULE:FUNCTION "
                          "(a callable (now_s, horizon_s) -> [(t_s, g/kWh), ...])")
    from greenai.factories import load_callable

    return ProviderForecaster(load_callable(text, ConfigError), name=text)


def _utc(t_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
