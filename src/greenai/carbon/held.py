"""An intensity source held at its last known value past the end of what it knows.

A run tracked against a trace file read at exact times may outlive the trace. Every sampler
tick charging past its end used to fail (a traceback a tick, and the run lost its duration,
power and phases); the tracker now charges those intervals at the last intensity the trace
gave, warns once, and says so in the run's carbon source and notes. A trace that does not
cover the run's start is refused when the run starts (``Tracker.start``), before anything is
measured with it. `greenai monitor` reads the tracker's source; reports rebuild one the same
way (`HeldIntensity.started`), so they draw and charge what the tracker charged.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from greenai.carbon.intensity import IntensitySource
from greenai.errors import CarbonDataError
from greenai.text import one_line

log = logging.getLogger(__name__)


class HeldIntensity:
    """``source``, whose latest good value is held for a later time it raises
    ``CarbonDataError`` for. Before any good value, or for a time before the latest good one
    (before a trace's start), it raises as ``source`` does. Safe to read from several threads
    (the tracker's sampler and the monitor's figures): one warning, whatever the order."""

    def __init__(self, source: IntensitySource, *, warn: bool = True) -> None:
        self.source = source
        self.warn = warn  # log the hold once (the tracker); a report rebuilding a past run says it in its note
        self.last_g_per_kwh: float | None = None
        self.held_since: float | None = None  # unix time of the first time read at a held value
        self._last_t = float("-inf")  # the time of last_g_per_kwh: the latest read the source answered
        self._why = ""
        self._lock = threading.Lock()  # the state only: the source is read outside it

    @classmethod
    def started(cls, source: IntensitySource, start_s: float, *, warn: bool = True) -> HeldIntensity:
        """`source` as a run that starts at `start_s` is charged with it: read at the start, so
        a source that cannot give it raises here (the tracker refuses the run), and a trace that
        ends before the first interval's midpoint is held at the start's value."""
        held = cls(source, warn=warn)
        held.intensity_at(start_s)
        return held

    def intensity_at(self, t: float) -> float:
        try:
            value = self.source.intensity_at(t)
        except CarbonDataError as e:
            with self._lock:
                if self.last_g_per_kwh is None or t < self._last_t:
                    raise
                first = self.held_since is None
                if first:
                    self.held_since, self._why = t, str(e)
                held, note = self.last_g_per_kwh, self.note()
            if first and self.warn:
                log.warning("greenai: %s", one_line(note))  # the trace's path, as text
            return held
        with self._lock:
            if t >= self._last_t:
                self.last_g_per_kwh, self._last_t = value, t
        return value

    def note(self) -> str | None:
        """What was held, from when and why; None while nothing was."""
        if self.held_since is None or self.last_g_per_kwh is None:
            return None
        return (
            f"carbon from {_utc(self.held_since)} on charged at {self.last_g_per_kwh:g} gCO2e/kWh, the last "
            f"intensity known: {self._why}"
        )

    def held(self) -> str | None:
        """ "held at V gCO2e/kWh from T on (past its end)"; None while nothing was."""
        if self.held_since is None or self.last_g_per_kwh is None:
            return None
        return f"held at {self.last_g_per_kwh:g} gCO2e/kWh from {_utc(self.held_since)} on (past its end)"

    def describe(self) -> str:
        held = self.held()
        return self.source.describe() + (f"; {held}" if held else "")


def _utc(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S} UTC"
