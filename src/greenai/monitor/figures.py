"""What the exporter serves, refreshed off the scrape path.

Two threads keep the figures current, each at the sampling interval: `MachineWatch` turns the
tracker's totals into per-device figures (energy, power, uncertainty, carbon) and `RunsWatch`
reads the runs in progress from the ledger. Each publishes an immutable record by replacing
one reference; a scrape reads whichever records are current, so it never waits for a meter
or the ledger, and always sees one consistent set of figures per source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenai.carbon.intensity import IntensitySource
from greenai.ledger.queries import RunProgress, runs_in_progress
from greenai.ledger.records import RunSnapshot
from greenai.ledger.store import Ledger
from greenai.monitor.health import MeterHealth, WatchedMeter

log = logging.getLogger("greenai.monitor")

# Per-run series are exported for this many runs in progress at most (the newest): label
# cardinality stays bounded however many runs a shared ledger holds. A refresh reads the newest
# RUNS_SCANNED runs marked running, and only their runs-table row (ledger/queries.py
# `runs_in_progress`): the count of runs in progress looks at those.
MAX_RUN_SERIES = 100
RUNS_SCANNED = 1000
MAX_NAME_CHARS = 128  # a run's name as a label value is cut to this many characters
LEDGER_POLL_MIN_S = 1.0  # the tracker flushes about once a second: reading faster finds nothing new


@dataclass(frozen=True, slots=True)
class DeviceFigures:
    device: str
    kind: str
    provenance: str
    energy_j: float  # since the exporter started
    power_w: float  # mean power over the last sampling interval
    rel_uncertainty: float  # half-width of the ~95 % band of energy_j, as a fraction of it


@dataclass(frozen=True, slots=True)
class MachineFigures:
    sampled_at: float  # unix time of the readings behind these figures
    devices: tuple[DeviceFigures, ...]
    facility_energy_j: float  # IT energy x PUE, since the exporter started
    carbon_g: float  # facility energy x grid intensity, interval by interval
    intensity_g_per_kwh: float  # the grid intensity now
    intensity_source: str
    meters: tuple[MeterHealth, ...]


@dataclass(frozen=True, slots=True)
class RunFigures:
    run_id: str
    name: str
    energy_j: float
    power_w: float
    carbon_g: float


@dataclass(frozen=True, slots=True)
class RunsFigures:
    ledger_up: bool  # the last read of the ledger worked
    in_progress: int
    runs: tuple[RunFigures, ...]  # the newest MAX_RUN_SERIES of them


class Periodic:
    """Calls `work()` every `interval_s` in a daemon thread until stopped (first after
    `first_s`); an exception is logged and the next call goes ahead."""

    def __init__(self, name: str, interval_s: float, work: Callable[[], object], first_s: float | None = None) -> None:
        self._interval_s = interval_s
        self._first_s = interval_s if first_s is None else first_s
        self._work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        wait_s = self._first_s
        while not self._stop.wait(wait_s):
            wait_s = self._interval_s
            try:
                self._work()
            except Exception:  # an exporter keeps serving what it has
                log.exception("greenai monitor: %s failed (keeps going)", self._thread.name)


class MachineWatch:
    """Per-device figures from the tracker's running totals.

    `snapshot()` is the tracker's (`Tracker.snapshot`): cumulative energy per device since the
    start, and `duration_s`, the time of the sampler's last tick since the start. A device's
    power is its energy between the last two ticks seen, over their time apart, so it is exact
    however this thread's wake-ups fall between the sampler's ticks."""

    def __init__(
        self,
        snapshot: Callable[[], RunSnapshot],
        meters: Sequence[WatchedMeter],
        intensity: IntensitySource,
        started_at: float,
        stale_after_s: float,
    ) -> None:
        self._snapshot = snapshot
        self._meters = tuple(meters)
        self._intensity = intensity
        self._started_at = started_at  # unix time of the tracker's start (its tick times count from it)
        self._stale_after_s = stale_after_s
        self._last: dict[str, tuple[float, float]] = {}  # device -> (duration_s, energy_j) at the last tick seen
        self._power_w: dict[str, float] = {}
        self.figures: MachineFigures | None = None

    def update(self) -> MachineFigures | None:
        snap = self._snapshot()
        if snap.duration_s <= 0:  # no tick yet
            return self.figures
        devices = []
        for d in snap.devices:
            seen_s, seen_j = self._last.get(d.device, (0.0, 0.0))  # a device's meter started with the run
            if snap.duration_s > seen_s:
                self._power_w[d.device] = max(d.energy_j - seen_j, 0.0) / (snap.duration_s - seen_s)
                self._last[d.device] = (snap.duration_s, d.energy_j)
            devices.append(
                DeviceFigures(
                    d.device,
                    d.kind.value,
                    d.provenance.value,
                    d.energy_j,
                    self._power_w.get(d.device, 0.0),
                    d.rel_uncertainty,
                )
            )
        sampled_at = self._started_at + snap.duration_s
        self.figures = MachineFigures(
            sampled_at=sampled_at,
            devices=tuple(devices),
            facility_energy_j=snap.facility_energy_j,
            carbon_g=snap.carbon_g,
            intensity_g_per_kwh=self._intensity.intensity_at(sampled_at),
            intensity_source=self._intensity.describe(),
            meters=tuple(m.health(self._stale_after_s) for m in self._meters),
        )
        return self.figures


class RunsWatch:
    """The runs in progress in the ledger at `path`, read through a read-only connection
    (nothing is ever written; a run whose process is gone reads as incomplete and is left
    out). A refresh is one query of RUNS_SCANNED rows at most, whatever the ledger holds. A
    run's power is its energy between the last two flushes seen over their time apart; at
    first sight, its mean power so far."""

    def __init__(self, path: Path, max_series: int = MAX_RUN_SERIES) -> None:
        self.path = path
        self._max_series = max_series
        self._ledger: Ledger | None = None
        self._last: dict[str, tuple[float, float]] = {}  # run_id -> (duration_s, energy_j) at its last flush seen
        self._power_w: dict[str, float] = {}
        self._failing = False
        self.figures = RunsFigures(False, 0, ())

    def update(self) -> RunsFigures:
        try:
            running = self._read()
        except Exception as e:  # a missing, locked or damaged ledger: say so, keep serving the rest
            if not self._failing:  # once per streak; no ledger yet is not worth a warning
                level = logging.INFO if isinstance(e, FileNotFoundError) else logging.WARNING
                log.log(level, "greenai monitor: cannot read the runs in progress from %s: %s", self.path, e)
            self._failing = True
            self.close()
            self.figures = RunsFigures(False, 0, ())
            return self.figures
        if self._failing:
            log.info("greenai monitor: reading the runs in progress from %s again", self.path)
        self._failing = False
        shown = running[: self._max_series]
        runs = tuple(self._figures_of(r) for r in shown)
        ids = {r.run_id for r in runs}
        for gone in self._last.keys() - ids:  # finished runs: their series and state are dropped
            del self._last[gone]
            self._power_w.pop(gone, None)
        self.figures = RunsFigures(True, len(running), runs)
        return self.figures

    def close(self) -> None:
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            ledger.close()

    def _read(self) -> list[RunProgress]:
        if self._ledger is None:
            if not self.path.exists():
                raise FileNotFoundError(f"no ledger at {self.path} yet")
            self._ledger = Ledger(self.path, read_only=True)
        return self._ledger.transaction(lambda conn: runs_in_progress(conn, RUNS_SCANNED), write=False)

    def _figures_of(self, run: RunProgress) -> RunFigures:
        run_id = run.run_id
        seen = self._last.get(run_id)
        if seen is None:
            if run.duration_s > 0:
                self._power_w[run_id] = run.energy_j / run.duration_s
            self._last[run_id] = (run.duration_s, run.energy_j)
        elif run.duration_s > seen[0]:
            self._power_w[run_id] = max(run.energy_j - seen[1], 0.0) / (run.duration_s - seen[0])
            self._last[run_id] = (run.duration_s, run.energy_j)
        return RunFigures(run_id, run.name[:MAX_NAME_CHARS], run.energy_j, self._power_w.get(run_id, 0.0), run.carbon_g)
