"""Background sampler: reads the meters at a fixed rate, off the training thread.

Each tick reads every meter once, hands the readings to the accumulator, and every
`flush_interval_s` writes the new samples and a totals snapshot to the sink (the ledger).
Nothing here raises into the tracked program: a meter that fails is logged once and
dropped (hardware meters are wrapped in FallbackMeter by discovery, so a failing counter is
normally replaced by an estimate before it gets here); a sink that fails is logged and
retried at the next flush with the samples kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from greenai.ledger.records import RunSnapshot, SampleRow
from greenai.meters.base import DeviceEnergy, Meter
from greenai.tracking.accumulator import RunAccumulator
from greenai.tracking.phases import PhaseTimeline

log = logging.getLogger("greenai.tracking")

FlushSink = Callable[[RunSnapshot, list[SampleRow]], None]
T = TypeVar("T")


class TickObserver(Protocol):
    """Told about every tick, in the sampler thread (the forecast trace, budget checks)."""

    def observe(self, elapsed_s: float, accumulator: RunAccumulator) -> None:
        """Called under the sampler's lock, right after the accumulator's tick: keep it cheap."""

    def after_tick(self, elapsed_s: float) -> None:
        """Called after the lock is released (may take a millisecond, e.g. a forecast)."""


class Sampler:
    def __init__(
        self,
        meters: Sequence[Meter],
        timeline: PhaseTimeline,
        accumulator: RunAccumulator,
        counters: Callable[[], dict[str, float]],
        sink: FlushSink | None,
        interval_s: float,
        flush_interval_s: float,
        observer: TickObserver | None = None,
    ) -> None:
        self._meters = list(meters)
        self._timeline = timeline
        self._acc = accumulator
        self._counters = counters
        self._sink = sink
        self._interval_s = interval_s
        self._flush_interval_s = flush_interval_s
        self._observer = observer
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards the accumulator against snapshot() readers
        self._thread = threading.Thread(target=self._loop, name="greenai-sampler", daemon=True)
        self._start_ns = 0
        self._last_ns = 0
        self._last_wall = 0.0
        self._last_flush_ns = 0
        self._unflushed: list[SampleRow] = []

    def start(self) -> None:
        for meter in self._meters:
            meter.start()
        self._start_ns = self._last_ns = self._last_flush_ns = time.perf_counter_ns()
        self._last_wall = time.time()
        self._thread.start()

    def stop(self) -> RunSnapshot:
        """Stop the thread, take a last reading, flush, and return the final snapshot."""
        self._stop.set()
        self._thread.join()
        self._tick()
        with self._lock:
            self._acc.close_rows(self._last_wall)
        snapshot = self.snapshot()
        for meter in self._meters:
            try:
                meter.close()
            except Exception:  # closing must not mask the run's result
                log.debug("closing %r failed", meter, exc_info=True)
        return snapshot

    def take_unflushed(self) -> list[SampleRow]:
        with self._lock:
            rows = self._unflushed + self._acc.take_samples()
            self._unflushed = []
            return rows

    def locked(self, read: Callable[[], T]) -> T:
        """Run `read` under the lock that guards the accumulator and the observer's state."""
        with self._lock:
            return read()

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            duration_s = (self._last_ns - self._start_ns) / 1e9
            return self._acc.snapshot(duration_s, self._counters())

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._tick()
                if time.perf_counter_ns() - self._last_flush_ns >= self._flush_interval_s * 1e9:
                    self._flush()
            except Exception:  # the tracker never breaks the user's program
                log.exception("greenai sampler error (tracking continues)")

    def _read_all(self) -> list[DeviceEnergy]:
        readings: list[DeviceEnergy] = []
        for meter in list(self._meters):
            try:
                readings.extend(meter.read())
            except Exception as e:
                log.warning("greenai: meter %s failed and was dropped: %s", meter.info().name, e)
                self._meters.remove(meter)
        return readings

    def _tick(self) -> None:
        readings = self._read_all()
        now_ns = time.perf_counter_ns()
        wall = time.time()
        events = self._timeline.drain_until(now_ns)
        elapsed_s = (now_ns - self._start_ns) / 1e9
        with self._lock:
            self._acc.tick(readings, self._last_ns, now_ns, self._last_wall, wall, events)
            self._last_ns, self._last_wall = now_ns, wall
            if self._observer is not None:
                try:
                    self._observer.observe(elapsed_s, self._acc)
                except Exception:  # never lose a tick (or break the run) over the forecast
                    log.exception("greenai: tick observer failed (tracking continues)")
        if self._observer is not None:
            try:
                self._observer.after_tick(elapsed_s)
            except Exception:
                log.exception("greenai: tick observer failed (tracking continues)")

    def _flush(self) -> None:
        self._last_flush_ns = time.perf_counter_ns()
        if self._sink is None:
            return
        rows = self.take_unflushed()
        try:
            self._sink(self.snapshot(), rows)
        except Exception as e:
            log.warning("greenai: could not write to the ledger (will retry): %s", e)
            with self._lock:
                self._unflushed = rows + self._unflushed
