"""An intensity source held at its last known value past the end of what it knows.

A run tracked against a trace file read at exact times may outlive the trace. Every sampler
tick charging past its end used to fail (a traceback a tick, and the run lost its duration,
power and phases); the tracker now charges those intervals at the last intensity the trace
gave, warns once, and says so in the run's carbon source and notes. A trace that does not
cover the run's start is refused when the run starts (``Tracker.start``), before anything is
measured with it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from greenai.carbon.intensity import IntensitySource
from greenai.errors import CarbonDataError

log = logging.getLogger(__name__)


class HeldIntensity:
    """``source``, whose last good value is held once it raises ``CarbonDataError`` for a later
    time. Before any good value it raises as ``source`` does."""

    def __init__(self, source: IntensitySource) -> None:
        self.source = source
        self.last_g_per_kwh: float | None = None
        self.held_since: float | None = None  # unix time of the first interval charged at a held value
        self._why = ""

    def intensity_at(self, t: float) -> float:
        try:
            value = self.source.intensity_at(t)
        except CarbonDataError as e:
            if self.last_g_per_kwh is None:
                raise
            if self.held_since is None:
                self.held_since, self._why = t, str(e)
                log.warning("greenai: %s", self.note())
            return self.last_g_per_kwh
        self.last_g_per_kwh = value
        return value

    def note(self) -> str | None:
        """What was held, from when and why; None while nothing was."""
        if self.held_since is None or self.last_g_per_kwh is None:
            return None
        return (
            f"carbon from {_utc(self.held_since)} on charged at {self.last_g_per_kwh:g} gCO2e/kWh, the last "
            f"intensity known: {self._why}"
        )

    def describe(self) -> str:
        text = self.source.describe()
        if self.held_since is not None:
            text += f"; held at {self.last_g_per_kwh:g} gCO2e/kWh from {_utc(self.held_since)} on (past its end)"
        return text


def _utc(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S} UTC"
