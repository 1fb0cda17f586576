"""The co-load a run runs under, recorded by the sampler thread (a `TickObserver`).

At every tick (at most every MIN_READ_INTERVAL_S, 0.1 s, whatever the sampling rate: about
20 µs of CPU each, 0.02 % of a CPU), in the sampler thread (never the user's), the machine's
CPU counters are read (`hardware/coload.py`: one read of /proc/stat) together with the tracked
process tree's CPU time (its own `ProcessScope`, as the CPU model's): the CPUs other processes kept busy, plus
hypervisor steal, are integrated into a cumulative count of core-seconds (the forecast's trace
reads it, `tracking/progress.py`), and closed into a window once a window has lasted
`WINDOW_S` (1 s; at 10 Hz a single interval is quantised to ~0.1 CPU per CPU by the kernel's
10 ms ticks). Windows become the ledger's `coload` rows and the run's summary (median, max,
share over the threshold: `CoLoadSummary`), which every snapshot carries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from greenai.hardware.coload import (
    DISTURBED_CORES,
    MAX_PENDING_WINDOWS,
    MIN_LAST_WINDOW_S,
    MIN_READ_INTERVAL_S,
    WINDOW_S,
    CoLoadLog,
    CoLoadSummary,
    CoLoadWindow,
    CpuSample,
    machine_cpu_s,
)
from greenai.tracking.accumulator import RunAccumulator

log = logging.getLogger("greenai.tracking")


class CoLoadRecorder:
    """Sampler-thread side: reads the machine and the tree at each tick (`observe`), keeps the
    windows for the ledger (`take_windows`) and the summary (`summary`). Thread-safe."""

    def __init__(
        self,
        tree_cpu_s: Callable[[], float],
        threshold_cores: float = DISTURBED_CORES,
        *,
        window_s: float = WINDOW_S,
        keep_windows: bool = True,
        stat_path: Path | None = None,
    ) -> None:
        self._tree_cpu_s = tree_cpu_s
        self._window_s = window_s
        self._keep = keep_windows
        self._stat_path = stat_path
        self._lock = threading.Lock()
        self._log = CoLoadLog(threshold_cores)
        self._first: CpuSample | None = None
        self._window_start: CpuSample | None = None
        self._last: CpuSample | None = None
        self._pending: list[CoLoadWindow] = []
        self._summary: CoLoadSummary | None = None
        # CPU-seconds other processes (and steal) took since the start; not clamped at 0 (a
        # stretch's mean is: see cores_since), so the kernel's 10 ms ticks do not bias it up
        self.core_s = 0.0
        self.available = True
        self.failed = False

    @property
    def threshold_cores(self) -> float:
        return self._log.threshold_cores

    def start(self) -> None:
        """The first reading (at the run's start); without one, co-load is not measured."""
        with self._lock:
            self._first = self._window_start = self._last = self._read()
            self.available = self._first is not None

    def observe(self, elapsed_s: float, accumulator: RunAccumulator) -> None:
        """After each tick, under the sampler's lock: one reading; hand the cumulative figure
        and the summary to the accumulator (so snapshots carry them)."""
        if not self.available:
            return
        with self._lock:
            if self._last is None or time.perf_counter() - self._last.wall_s >= MIN_READ_INTERVAL_S:
                self._step(close_at_end=False)
            accumulator.coload_core_s = self.core_s
            accumulator.coload = self._summary

    def after_tick(self, elapsed_s: float) -> None:
        """Nothing: the reading is taken in `observe`."""

    def finish(self) -> CoLoadSummary | None:
        """At the end of the run (the sampler stopped): a last reading closes the last window."""
        if not self.available:
            return None
        with self._lock:
            self._step(close_at_end=True)
            return self._summary

    def summary(self) -> CoLoadSummary | None:
        with self._lock:
            return self._summary

    def cores_since(self, mark: tuple[float, float]) -> float | None:
        """Mean co-load (CPUs) since `mark()`, up to the latest reading; None before one."""
        with self._lock:
            if self._last is None:
                return None
            t0, core_s0 = mark
            dt = self._last.wall_s - t0
            return max(0.0, (self.core_s - core_s0) / dt) if dt > 0 else None

    def mark(self) -> tuple[float, float]:
        """(time, core-seconds) of the latest reading, for `cores_since`."""
        with self._lock:
            return (self._last.wall_s if self._last else time.perf_counter(), self.core_s)

    def take_windows(self) -> list[CoLoadWindow]:
        with self._lock:
            rows, self._pending = self._pending, []
            return rows

    def put_back(self, rows: list[CoLoadWindow]) -> None:
        """Windows a failed flush took: kept for the next one (bounded)."""
        with self._lock:
            self._pending = (rows + self._pending)[-MAX_PENDING_WINDOWS:]

    # -- internals ----------------------------------------------------------------------
    def _read(self) -> CpuSample | None:
        machine = machine_cpu_s(self._stat_path)
        if machine is None:
            return None
        try:
            own = self._tree_cpu_s()
        except Exception as e:  # the tree is gone, or psutil failed: co-load stops here
            if not self.failed:
                log.debug("greenai: co-load: the tree's CPU time could not be read: %s", e)
            self.failed = True
            return None
        return CpuSample(time.perf_counter(), machine[0], machine[1], own)

    def _step(self, close_at_end: bool) -> None:
        now = self._read()
        if now is None or self._first is None or self._window_start is None:
            return
        first = self._first  # cumulative, not clamped per tick (the kernel's ticks would bias it up)
        self.core_s = (now.busy_s - first.busy_s) - (now.own_s - first.own_s) + (now.steal_s - first.steal_s)
        self._last = now
        span = now.wall_s - self._window_start.wall_s
        last_piece = close_at_end and span > 0 and (span >= MIN_LAST_WINDOW_S or self._summary is None)
        if span >= self._window_s or last_piece:
            window = CoLoadWindow(
                t=time.time(),
                span_s=span,
                others_cores=now.others_cores(self._window_start, steal=False),
                steal_cores=now.steal_cores(self._window_start),
            )
            self._log.add(window)
            self._summary = self._log.summary()
            if self._keep:
                self._pending.append(window)
                if len(self._pending) > MAX_PENDING_WINDOWS:
                    del self._pending[: len(self._pending) - MAX_PENDING_WINDOWS]
            self._window_start = now
