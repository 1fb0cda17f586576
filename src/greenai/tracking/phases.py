"""Phase timeline: the user's thread records boundaries, the sampler apportions energy.

A phase boundary only appends `(perf_counter_ns, path)` to a deque (thread-safe append and
popleft), so entering and leaving a phase costs about a microsecond and never touches a
meter. The sampler later splits each sampling interval's energy between the phases that were
active in it, in proportion to the time each was active (power assumed constant within one
interval, 100 ms by default). Energy goes to the innermost active phase ("exclusive");
parents are rolled up when reported.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

NO_PHASE = "(no phase)"
SEPARATOR = "/"


class PhaseTimeline:
    """Records phase transitions from the tracked code (one phase stack per run)."""

    def __init__(self) -> None:
        self._events: deque[tuple[int, str | None, bool]] = deque()  # (t_ns, active path, entered)
        self._stack: list[str] = []
        self._lock = threading.Lock()  # guards the stack if phases come from several threads

    @property
    def depth(self) -> int:
        """How many phases are open now (0 outside any phase)."""
        return len(self._stack)

    def enter(self, name: str) -> None:
        with self._lock:
            self._stack.append(name)
            self._events.append((time.perf_counter_ns(), SEPARATOR.join(self._stack), True))

    def exit(self) -> None:
        with self._lock:
            self._stack.pop()
            path = SEPARATOR.join(self._stack) if self._stack else None
            self._events.append((time.perf_counter_ns(), path, False))

    def drain_until(self, t_ns: int) -> list[tuple[int, str | None, bool]]:
        """Remove and return the events that happened before `t_ns` (sampler side)."""
        out = []
        events = self._events
        while events and events[0][0] < t_ns:
            out.append(events.popleft())
        return out


@dataclass
class PhaseApportioner:
    """Sampler-side state: which phase is active, time and calls per phase, energy shares."""

    current: str | None = None
    duration_s: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    energy_j: dict[tuple[str, str], float] = field(default_factory=dict)  # (phase, device)

    def apportion(
        self,
        t0_ns: int,
        t1_ns: int,
        events: list[tuple[int, str | None, bool]],
        device_energy_j: dict[str, float],
    ) -> str | None:
        """Split the energy of interval [t0, t1) over the phases active in it; return the
        phase that held most of the interval (None if that was time outside any phase)."""
        span_ns = max(t1_ns - t0_ns, 1)
        seconds: dict[str, float] = {}
        cursor = t0_ns
        for t_ns, path, entered in events:
            t_ns = min(max(t_ns, cursor), t1_ns)
            self._add(seconds, self.current, (t_ns - cursor) / 1e9)
            cursor = t_ns
            self.current = path
            if entered and path is not None:
                self.calls[path] = self.calls.get(path, 0) + 1
        self._add(seconds, self.current, (t1_ns - cursor) / 1e9)
        span_s = span_ns / 1e9
        for phase, secs in seconds.items():
            self.duration_s[phase] = self.duration_s.get(phase, 0.0) + secs
            share = secs / span_s
            for device, joules in device_energy_j.items():
                key = (phase, device)
                self.energy_j[key] = self.energy_j.get(key, 0.0) + joules * share
        dominant = max(seconds.items(), key=lambda item: item[1], default=(NO_PHASE, 0.0))[0]
        return None if dominant == NO_PHASE else dominant

    @staticmethod
    def _add(seconds: dict[str, float], path: str | None, secs: float) -> None:
        if secs > 0:
            key = path if path is not None else NO_PHASE
            seconds[key] = seconds.get(key, 0.0) + secs
