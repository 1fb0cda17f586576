"""Phase timeline: the user's thread records boundaries, the sampler apportions energy.

A phase boundary only appends `(perf_counter_ns, path)` to a deque (thread-safe append and
popleft), so entering and leaving a phase costs well under a microsecond (docs/benchmarks.md)
and never touches a meter. The sampler later splits each sampling interval's energy between the phases that were
active in it, in proportion to the time each was active (power assumed constant within one
interval, 100 ms by default). Energy goes to the innermost active phase ("exclusive");
parents are rolled up when reported. Each thread has its own phase stack (a phase entered
on a worker thread is a top-level phase of that thread, whatever the main thread is in).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from greenai.errors import InvalidNameError
from greenai.ledger.records import storable_name

NO_PHASE = "(no phase)"
SEPARATOR = "/"
MAX_EVENTS = 100_000  # undrained phase boundaries kept (about 10 MB); the oldest go first
# (t_ns, the thread's active path after the event or None, entered, thread id); events
# without the thread id (3-tuples) belong to one thread
Event = tuple[int, str | None, bool, int] | tuple[int, str | None, bool]


class PhaseTimeline:
    """Records phase transitions from the tracked code: one phase stack per thread.

    A phase entered on a worker thread nests under that thread's open phases only, never
    under another thread's; each event carries its thread's id, and while phases of several
    threads are open at once an interval's energy is split evenly between those threads (see
    `PhaseApportioner`). At most `max_events` undrained events are kept (the oldest are
    dropped), so memory stays bounded even if the sampler falls behind.
    """

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._events: deque[Event] = deque(maxlen=max_events)  # (t_ns, active path, entered, thread)
        self._local = threading.local()

    def _stack(self) -> _PathStack:
        try:
            stack: _PathStack = self._local.stack
        except AttributeError:
            stack = self._local.stack = _PathStack()
        return stack

    @property
    def depth(self) -> int:
        """How many phases the calling thread has open now (0 outside any phase)."""
        return len(self._stack())

    def enter(self, name: str) -> None:
        # the hot path: the stack keeps full paths, so entering joins one name, not the stack
        try:
            stack: _PathStack = self._local.stack
        except AttributeError:
            stack = self._local.stack = _PathStack()
        path = f"{stack[-1]}{SEPARATOR}{name}" if stack else name
        stack.append(path)
        self._events.append((_perf_counter_ns(), path, True, stack.thread))

    def exit(self) -> None:
        try:
            stack: _PathStack = self._local.stack
        except AttributeError:  # an exit without its enter in this thread: nothing to close
            return
        if not stack:
            return
        stack.pop()
        self._events.append((_perf_counter_ns(), stack[-1] if stack else None, False, stack.thread))

    def record(self, path: str | None, entered: bool, lane: int) -> None:
        """A boundary of a phase that belongs to no thread (see `PhaseLane`): `lane` is an id
        no thread has (thread ids are positive, lanes negative)."""
        self._events.append((time.perf_counter_ns(), path, entered, lane))

    def detach(self) -> None:
        """In a forked child: keep accepting phases but record nothing (nobody drains them)."""
        self._events = deque(maxlen=0)
        self._local = threading.local()

    def drain_until(self, t_ns: int) -> list[Event]:
        """Remove and return the events that happened before `t_ns` (sampler side)."""
        out = []
        events = self._events
        while events and events[0][0] < t_ns:
            out.append(events.popleft())
        return out


_perf_counter_ns = time.perf_counter_ns


class _PathStack(list[str]):
    """One thread's open phases, each as its full path ("train_step/forward"), and the
    thread's id: what a boundary needs, read once per thread."""

    __slots__ = ("thread",)

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()


def checked_phase_name(name: object) -> str:
    """`name` if it can name a phase: a name the ledger can store (ledger.records.storable_name)
    without the separator of nested phases; InvalidNameError (a ConfigError and a
    ValueError) otherwise."""
    checked = storable_name("a phase name", name)
    if SEPARATOR in checked:
        raise InvalidNameError(f"a phase name must not contain {SEPARATOR!r} (it separates nested phases): {checked!r}")
    return checked


_lane_ids = itertools.count(1)


class PhaseLane:
    """A phase bound to no thread: work in flight that one thread begins and another ends (a
    collective launched by the training thread and completed by the communication library's
    thread). `begin()` and `end()` may be called from any thread and nest by count: the phase
    is open while at least one piece of work is in flight. It is apportioned as one more
    thread's phase would be (sharing each interval evenly with the threads inside phases)."""

    def __init__(self, timeline: PhaseTimeline, name: str) -> None:
        self.name = checked_phase_name(name)
        self._timeline = timeline
        self._lane = -next(_lane_ids)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._opened_ns = 0
        self.open_s = 0.0  # wall time during which some work was in flight

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            if self._in_flight == 1:
                self._opened_ns = time.perf_counter_ns()
                self._timeline.record(self.name, True, self._lane)

    def end(self) -> None:
        with self._lock:
            if self._in_flight == 0:  # an end without its begin: nothing to close
                return
            self._in_flight -= 1
            if self._in_flight == 0:
                self.open_s += (time.perf_counter_ns() - self._opened_ns) / 1e9
                self._timeline.record(None, False, self._lane)


@dataclass
class PhaseApportioner:
    """Sampler-side state: which phase each thread is in, time and calls per phase, energy
    shares. While k threads are inside phases, each of them is given 1/k of the energy (two
    threads in the same phase give it all); `(no phase)` gets the time when no thread is in
    a phase. A phase's duration is the wall time during which some thread was in it."""

    active: dict[int, str] = field(default_factory=dict)  # thread id -> its current path
    duration_s: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    energy_j: dict[tuple[str, str], float] = field(default_factory=dict)  # (phase, device)

    @property
    def current(self) -> str | None:
        """The most recently entered of the open phases (None outside any phase)."""
        return next(reversed(self.active.values()), None)

    def apportion(
        self,
        t0_ns: int,
        t1_ns: int,
        events: Sequence[Event],
        device_energy_j: dict[str, float],
    ) -> str | None:
        """Split the energy of interval [t0, t1) over the phases active in it; return the
        phase that held most of the interval (None if that was time outside any phase)."""
        span_ns = max(t1_ns - t0_ns, 1)
        weights: dict[str, float] = {}  # seconds, shared out between threads
        seconds: dict[str, float] = {}  # wall seconds
        cursor = t0_ns
        active = self.active
        for event in events:
            t_ns, path, entered = event[0], event[1], event[2]
            thread = event[3] if len(event) > 3 else 0
            t_ns = min(max(t_ns, cursor), t1_ns)
            self._add(weights, seconds, (t_ns - cursor) / 1e9)
            cursor = t_ns
            active.pop(thread, None)  # re-inserted last: `current` is the latest entered
            if path is not None:
                active[thread] = path
                if entered:
                    self.calls[path] = self.calls.get(path, 0) + 1
        self._add(weights, seconds, (t1_ns - cursor) / 1e9)
        for phase, secs in seconds.items():
            self.duration_s[phase] = self.duration_s.get(phase, 0.0) + secs
        span_s = span_ns / 1e9
        for phase, secs in weights.items():
            share = secs / span_s
            for device, joules in device_energy_j.items():
                key = (phase, device)
                self.energy_j[key] = self.energy_j.get(key, 0.0) + joules * share
        dominant = max(weights.items(), key=lambda item: item[1], default=(NO_PHASE, 0.0))[0]
        return None if dominant == NO_PHASE else dominant

    def _add(self, weights: dict[str, float], seconds: dict[str, float], secs: float) -> None:
        if secs <= 0:
            return
        paths = self.active.values()
        if not paths:
            weights[NO_PHASE] = weights.get(NO_PHASE, 0.0) + secs
            seconds[NO_PHASE] = seconds.get(NO_PHASE, 0.0) + secs
            return
        each = secs / len(paths)
        for path in paths:
            weights[path] = weights.get(path, 0.0) + each
        for path in set(paths) if len(paths) > 1 else paths:
            seconds[path] = seconds.get(path, 0.0) + secs


# -- naming phases: one rule for every total of a phase (RunResult, the tuner, `runs show`) --


def phase_matches(path: str, name: str) -> bool:
    """Whether `name` names the phase at `path`: its leaf name ("forward" names
    "train_step/forward"), its full path, or its last segments ("train_step/forward" names
    "epoch/train_step/forward")."""
    return path == name or path.endswith(SEPARATOR + name)


def in_phase(path: str, name: str) -> bool:
    """Whether the phase at `path` is one `name` names or is nested in one (so a parent's
    totals include its nested phases)."""
    while True:
        if phase_matches(path, name):
            return True
        parent, sep, _ = path.rpartition(SEPARATOR)
        if not sep:
            return False
        path = parent


@dataclass(frozen=True)
class PhaseSum:
    """The totals of a phase including its nested phases ("inclusive"), summed over every
    phase the name matched. Phase records are exclusive (energy and time go to the innermost
    active phase), so summing a phase's own records and its nested ones counts each once."""

    energy_j_by_device: dict[str, float]
    duration_s: float
    calls: int  # times the named phase(s) were entered (not their nested phases)
    paths: tuple[str, ...]  # the phase paths summed, sorted

    @property
    def energy_j(self) -> float:
        return sum(self.energy_j_by_device.values())


def phase_sum(phases: Iterable[PhaseRecord], name: str) -> PhaseSum:
    """Inclusive totals of the phase(s) `name` names (see `phase_matches`) in per-device
    phase records (a RunSnapshot's `phases`); all zero when no phase matches."""
    return _sum(phases, lambda path: in_phase(path, name), lambda path: phase_matches(path, name))


def inclusive_totals(phases: Iterable[PhaseRecord]) -> dict[str, PhaseSum]:
    """Inclusive totals of every phase path, and of the parents of every path even when they
    held no time of their own, ordered parent first (siblings by name)."""
    records = list(phases)
    paths: set[str] = set()
    for record in records:
        parts = record.phase.split(SEPARATOR)
        paths.update(SEPARATOR.join(parts[:n]) for n in range(1, len(parts) + 1))
    return {
        path: _sum(records, _subtree(path), path.__eq__) for path in sorted(paths, key=lambda p: p.split(SEPARATOR))
    }


def _subtree(path: str) -> Callable[[str], bool]:
    return lambda p: p == path or p.startswith(path + SEPARATOR)


class PhaseRecord(Protocol):
    """One device's share of one phase path (``ledger.records.PhaseTotal``)."""

    @property
    def phase(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def energy_j(self) -> float: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def calls(self) -> int: ...


def _sum(phases: Iterable[PhaseRecord], include: Callable[[str], bool], named: Callable[[str], bool]) -> PhaseSum:
    energy: dict[str, float] = {}
    durations: dict[str, float] = {}  # per path: each device's record repeats the path's time
    calls: dict[str, int] = {}
    for p in phases:
        if include(p.phase):
            energy[p.device] = energy.get(p.device, 0.0) + p.energy_j
            durations[p.phase] = p.duration_s
            if named(p.phase):
                calls[p.phase] = p.calls
    return PhaseSum(energy, sum(durations.values()), sum(calls.values()), tuple(sorted(durations)))
