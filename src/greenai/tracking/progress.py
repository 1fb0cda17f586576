"""The run's progress trace, recorded by the sampler thread for the forecast
(`greenai.tracking.forecast`): one `TracePoint` per tick (bounded memory) and the
occurrences of periodic phases such as evaluation."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from greenai.meters.base import Provenance
from greenai.tracking.accumulator import RunAccumulator
from greenai.tracking.phases import NO_PHASE, SEPARATOR

DEFAULT_PERIODIC_PHASES = ("eval", "evaluation")
MAX_POINTS = 2048
MAX_OCCURRENCES = 1024


class TracePoint(NamedTuple):
    """The run's cumulative state at one sampler tick."""

    t_s: float  # since the run started
    steps: float  # the progress counter
    epochs: float
    energy_j: float  # IT energy, all devices
    periodic_energy_j: float  # of which in periodic phases (evaluation, ...)
    periodic_time_s: float
    carbon_g: float
    cost: float
    # CPU-seconds other processes (and steal) took since the run started (tracking/coload.py)
    coload_core_s: float = 0.0


class Occurrence(NamedTuple):
    """One occurrence of a periodic phase (or `count` of them, if they fell in one tick)."""

    phase: str
    start_steps: float
    # the name hides tuple.count(value); kept, as recorded traces and tests read `.count`
    count: int  # type: ignore[assignment]
    energy_j: float
    duration_s: float


@dataclass(frozen=True)
class ProgressSeries:
    """An immutable copy of the recorder's trace, for the forecast (and for tests)."""

    points: tuple[TracePoint, ...]
    occurrences: tuple[Occurrence, ...] = ()
    epoch_ends: tuple[float, ...] = ()  # progress count when the epoch counter went up
    rel_uncertainty: float = 0.0
    provenance: Provenance = Provenance.ESTIMATED
    currency: str = "EUR"
    periodic_phases: tuple[str, ...] = ()  # the names watched (for the forecast's notes)
    # a run is disturbed while other processes keep this many CPUs busy (None: co-load unknown)
    coload_threshold_cores: float | None = None


class ProgressRecorder:
    """Sampler-thread side: one `TracePoint` per tick (downsampled 2:1 whenever `max_points`
    is reached, so memory is bounded and the points stay evenly spread), plus a log of
    periodic-phase occurrences (start step, energy, duration)."""

    def __init__(
        self,
        counter: Callable[[str], float | None],
        progress_counter: str = "steps",
        epoch_counter: str = "epochs",
        periodic_phases: Sequence[str] = DEFAULT_PERIODIC_PHASES,
        max_points: int = MAX_POINTS,
        coload_threshold_cores: float | None = None,
    ) -> None:
        self._counter = counter
        self.coload_threshold_cores = coload_threshold_cores
        self._progress = progress_counter
        self._epochs = epoch_counter
        self._names = tuple(periodic_phases)
        self._max_points = max(max_points, 16)
        self._points: list[TracePoint] = []
        self._stride = 1
        self._ticks = 0
        self.latest: TracePoint | None = None
        self._occurrences: deque[Occurrence] = deque(maxlen=MAX_OCCURRENCES)
        self._epoch_ends: deque[float] = deque(maxlen=MAX_OCCURRENCES)
        self._last_epochs = 0.0
        self._owner: dict[str, str | None] = {}  # phase path -> periodic phase it belongs to
        self._prev: dict[str, tuple[float, float, int]] = {}  # name -> (energy, time, calls)
        self._open: dict[str, tuple[float, float, int, float]] = {}  # name -> base, start step
        self._rel_uncertainty = 0.0
        self._provenance = Provenance.ESTIMATED
        self._currency = "EUR"

    @property
    def ticks(self) -> int:
        return self._ticks

    def observe(self, t_s: float, acc: RunAccumulator) -> None:
        """Record the state after one accumulator tick (called under the sampler's lock)."""
        steps = float(self._counter(self._progress) or 0.0)
        epochs = float(self._counter(self._epochs) or 0.0)
        energy_j = sum(d.energy_j for d in acc.devices.values())
        while self._last_epochs + 1 <= epochs:
            self._last_epochs += 1
            self._epoch_ends.append(steps)
        per_e, per_t = self._observe_periodic(acc, steps)
        point = TracePoint(
            t_s, steps, epochs, energy_j, per_e, per_t, acc.charge.carbon_g, acc.charge.cost, acc.coload_core_s
        )
        self.latest = point
        if self._ticks % self._stride == 0:
            self._points.append(point)
            if len(self._points) >= self._max_points:
                self._points = self._points[::2]
                self._stride *= 2
        self._ticks += 1
        if acc.devices:
            band = sum(d.energy_j * d.rel_uncertainty for d in acc.devices.values())
            self._rel_uncertainty = (
                band / energy_j if energy_j > 0 else max(d.rel_uncertainty for d in acc.devices.values())
            )
            self._provenance = max((d.provenance for d in acc.devices.values()), key=lambda p: p.rank)
        self._currency = acc.account.currency

    def series(self) -> ProgressSeries:
        points = list(self._points)
        if self.latest is not None and (not points or points[-1] is not self.latest):
            points.append(self.latest)
        return ProgressSeries(
            tuple(points),
            tuple(self._occurrences),
            tuple(self._epoch_ends),
            self._rel_uncertainty,
            self._provenance,
            self._currency,
            self._names,
            self.coload_threshold_cores,
        )

    def _phase_owner(self, path: str) -> str | None:
        owner = self._owner.get(path, "")
        if owner == "":
            owner = next((part for part in path.split(SEPARATOR) if part in self._names), None)
            self._owner[path] = owner
        return owner

    def _observe_periodic(self, acc: RunAccumulator, steps: float) -> tuple[float, float]:
        if not self._names:
            return 0.0, 0.0
        ph = acc.phases
        energy: dict[str, float] = {}
        time_s: dict[str, float] = {}
        calls: dict[str, int] = {}
        for (path, _device), joules in ph.energy_j.items():
            owner = self._phase_owner(path)
            if owner is not None:
                energy[owner] = energy.get(owner, 0.0) + joules
        for path, secs in ph.duration_s.items():
            owner = self._phase_owner(path)
            if owner is not None:
                time_s[owner] = time_s.get(owner, 0.0) + secs
        for path, n in ph.calls.items():
            owner = self._phase_owner(path)
            if owner is not None and path.rsplit(SEPARATOR, 1)[-1] == owner:
                calls[owner] = calls.get(owner, 0) + n
        # the periodic phases some thread is in now (each thread has its own phase stack)
        inside = {self._phase_owner(path) for path in ph.active.values() if path != NO_PHASE}
        for name in set(calls) | set(self._open):
            self._track_occurrence(
                name, energy.get(name, 0.0), time_s.get(name, 0.0), calls.get(name, 0), name in inside, steps
            )
        return sum(energy.values()), sum(time_s.values())

    def _track_occurrence(self, name: str, e: float, t: float, c: int, inside: bool, steps: float) -> None:
        pe, pt, pc = self._prev.get(name, (0.0, 0.0, 0))
        opened = self._open.get(name)
        if opened is not None and c > pc and inside:
            # a new occurrence started while the last one was still open: close that one
            # at the previous tick and start the next from there
            be, bt, bc, s0 = opened
            if pc > bc:
                self._occurrences.append(Occurrence(name, s0, pc - bc, pe - be, pt - bt))
            opened = self._open[name] = (pe, pt, pc, steps)
        elif opened is None and (c > pc or inside):
            opened = self._open[name] = (pe, pt, pc, steps)
        if opened is not None and not inside:
            be, bt, bc, s0 = self._open.pop(name)
            self._occurrences.append(Occurrence(name, s0, max(c - bc, 1), e - be, t - bt))
        self._prev[name] = (e, t, c)
