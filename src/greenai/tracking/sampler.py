"""Background sampler: reads the meters at a fixed rate, off the training thread.

Each tick reads every meter once (through a `MeterReader`: in a worker thread, all the
meters' reads within one deadline, METER_TIMEOUT_S), checks the readings, hands the good ones to the accumulator, and every
`flush_interval_s` writes the new samples and a totals snapshot to the sink (the ledger); the
first flush follows the first tick, FIRST_TICK_S after the start, so a run killed early
still keeps its energy.

Nothing here raises into the tracked program:
- a reading that is not a DeviceEnergy, or whose energy is NaN, inf, negative, absurd
  (> MAX_ENERGY_J) or implies more than MAX_DEVICE_POWER_W since the device's last reading,
  is dropped (one warning per meter); a meter whose reads fail (raise, or bring bad readings)
  MAX_CONSECUTIVE_FAULTS times in a row is retired, and one that does not answer within
  the tick's METER_TIMEOUT_S is retired at once (the meters not read by then are read at
  the next tick). Their devices keep the energy measured until then.
  (Hardware meters are wrapped in FallbackMeter by discovery, so a failing counter is
  normally replaced by an estimate before it gets here.)
- a sink that fails is logged and retried at the next flush with the samples kept (thinned
  beyond MAX_PENDING_ROWS, so memory stays bounded however long the ledger is unwritable).
- once stop() is asked for, the thread flushes no more: the final write is the tracker's,
  and a thread stop() gave up on must not write after it (the ledger ignores a flush of an
  ended run too).
With no sink (store=False) no sample rows are kept at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from greenai.ledger.records import RunSnapshot, SampleRow
from greenai.meters.base import MAX_DEVICE_POWER_W, DeviceEnergy, Meter, reading_problem
from greenai.text import visible
from greenai.tracking.accumulator import MAX_PENDING_ROWS, RunAccumulator, thin_rows
from greenai.tracking.phases import PhaseTimeline
from greenai.tracking.reading import (
    MAX_CONSECUTIVE_FAULTS,
    METER_TIMEOUT_S,
    SKIPPED,
    MeterReader,
    MeterSlot,
    TimedOut,
)

log = logging.getLogger("greenai.tracking")

FlushSink = Callable[[RunSnapshot, list[SampleRow]], None]
T = TypeVar("T")

FIRST_TICK_S = 0.2  # the first reading (and, with a ledger, the first flush) at most this late
STOP_TIMEOUT_S = 3.0  # stop() waits this long at most for the sampler's last reading


class TickObserver(Protocol):
    """Told about every tick, in the sampler thread (the forecast trace, budget checks)."""

    def observe(self, elapsed_s: float, accumulator: RunAccumulator) -> None:
        """Called under the sampler's lock, right after the accumulator's tick: keep it cheap."""

    def after_tick(self, elapsed_s: float) -> None:
        """Called after the lock is released (may take a millisecond, e.g. a forecast)."""


class ObserverGroup:
    """Several observers told about every tick, in order (the run's forecast trace and
    budgets, its co-load): one failing does not keep the others from being told."""

    def __init__(self, *observers: TickObserver) -> None:
        self.observers = observers

    def observe(self, elapsed_s: float, accumulator: RunAccumulator) -> None:
        for observer in self.observers:
            try:
                observer.observe(elapsed_s, accumulator)
            except Exception:
                log.exception("greenai: tick observer failed (tracking continues)")

    def after_tick(self, elapsed_s: float) -> None:
        for observer in self.observers:
            try:
                observer.after_tick(elapsed_s)
            except Exception:
                log.exception("greenai: tick observer failed (tracking continues)")


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
        meter_timeout_s: float = METER_TIMEOUT_S,
    ) -> None:
        self.slots = [m if isinstance(m, MeterSlot) else MeterSlot(m) for m in meters]
        self._active = [s for s in self.slots if s.retired is None]
        self._reader = MeterReader()
        self._meter_timeout_s = meter_timeout_s
        self._timeline = timeline
        self._acc = accumulator
        if sink is None:
            accumulator.keep_rows = False  # nobody would ever take them
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
        self._flush_tried = False  # the first flush follows the first tick
        self._flush_failing = False
        self._unflushed: list[SampleRow] = []
        self._in_flight = 0  # rows being written by a flush under way
        self.notes: list[str] = []  # what went wrong with the meters, for the run's result

    def add_observer(self, observer: TickObserver, first: bool = False) -> None:
        """Tell `observer` about every tick too (before the others if `first`); before start()."""
        existing = self._observer
        if existing is None:
            self._observer = observer
        else:
            self._observer = ObserverGroup(observer, existing) if first else ObserverGroup(existing, observer)

    def start(self) -> None:
        """Start the meters (in the reader's worker, each within its deadline; one that
        raises or does not answer is retired with a warning) and the sampling thread."""
        outcomes = self._reader.call(lambda m: m.start(), self._active, self._meter_timeout_s)
        for slot, outcome in outcomes.items():
            if isinstance(outcome, BaseException):
                self._retire(slot, f"start() failed: {_describe(outcome)}")
        self._start_ns = self._last_ns = self._last_flush_ns = time.perf_counter_ns()
        self._last_wall = time.time()
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> RunSnapshot:
        """Stop the thread, which takes a last reading and closes the meters, and return the
        final snapshot. Waits `timeout_s` at most: past that (a flush stuck on the ledger),
        the run ends with the readings taken so far. Never raises."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            note = f"the sampler did not finish within {timeout_s:g} s; the run ends with its readings until then"
            log.warning("greenai: %s", note)
            self.notes.append(note)
        return self.snapshot(timeout_s=0.5)

    def take_unflushed(self) -> list[SampleRow]:
        with self._lock:
            rows = self._unflushed + self._acc.take_samples()
            self._unflushed = []
            return rows

    def locked(self, read: Callable[[], T]) -> T:
        """Run `read` under the lock that guards the accumulator and the observer's state."""
        with self._lock:
            return read()

    def snapshot(self, timeout_s: float | None = None) -> RunSnapshot:
        """Totals so far. With `timeout_s`, taken without the lock if it cannot be had in
        that time (only the sampler thread writes, and it is then stuck elsewhere)."""
        locked = self._lock.acquire(timeout=-1 if timeout_s is None else timeout_s)
        try:
            duration_s = (self._last_ns - self._start_ns) / 1e9
            return self._acc.snapshot(duration_s, self._counters())
        finally:
            if locked:
                self._lock.release()

    def detach(self) -> None:
        """In a forked child: a fresh lock (the parent's may be held by a thread not copied)."""
        self._lock = threading.Lock()

    def pending_rows(self) -> int:
        """Sample rows held in memory, waiting for the ledger (for tests and benchmarks)."""
        with self._lock:
            return len(self._unflushed) + len(self._acc.pending_samples) + self._in_flight

    # -- the sampling thread ---------------------------------------------------------
    def _loop(self) -> None:
        wait_s = min(self._interval_s, FIRST_TICK_S)
        while not self._stop.wait(wait_s):
            wait_s = self._interval_s
            try:
                self._tick()
                if self._stop.is_set():  # the end is the tracker's to write, not a late flush's
                    break
                # flush at the last tick before flush_interval_s would be exceeded, and right
                # after the first tick: the ledger is never more than that behind
                due_ns = self._last_flush_ns + self._flush_interval_s * 1e9 - self._interval_s * 1e9
                if not self._flush_tried or time.perf_counter_ns() >= due_ns:
                    self._flush()
            except Exception:  # the tracker never breaks the user's program
                log.exception("greenai sampler error (tracking continues)")
        self._finish()

    def _finish(self) -> None:
        """After stop(): the last reading, the last rows, the meters closed."""
        try:
            self._tick()
            with self._lock:
                self._acc.close_rows(self._last_wall)
        except Exception:
            log.exception("greenai: the last reading failed; the run ends with the readings before it")
        closable = [s for s in self.slots if not s.hung]
        try:
            outcomes = self._reader.call(
                lambda m: m.close(), closable, self._meter_timeout_s, total_s=self._meter_timeout_s
            )
            for slot, outcome in outcomes.items():
                if isinstance(outcome, BaseException):  # closing must not mask the run's result
                    log.debug("closing meter %s failed: %s", slot.name, _describe(outcome))
        except Exception:
            log.debug("closing the meters failed", exc_info=True)
        self._reader.close()

    def _read_all(self) -> tuple[list[DeviceEnergy], int]:
        """The good readings of the active meters, and when they were taken (when the last
        meter answered, not when this thread woke up to collect them). All within one
        deadline: a read under way then is given up, the meters not read yet are left to the
        next tick."""
        outcomes = self._reader.call(
            lambda m: m.read(), list(self._active), self._meter_timeout_s, total_s=self._meter_timeout_s
        )
        t_ns = self._reader.last_done_ns
        readings: list[DeviceEnergy] = []
        for slot, outcome in outcomes.items():
            if outcome is SKIPPED:  # not reached this tick: its counter carries the energy over
                continue
            if isinstance(outcome, TimedOut):
                self._retire(slot, f"read() did not answer ({outcome})")
                continue
            if isinstance(outcome, BaseException):
                self._fault(slot, f"read() failed: {_describe(outcome)}")
                continue
            good, problem = self._check(slot, outcome, t_ns)
            readings.extend(good)
            if problem is None:
                slot.faults = 0
            else:
                self._fault(slot, f"bad reading dropped: {problem}")
        return readings, t_ns

    def _check(self, slot: MeterSlot, outcome: Any, t_ns: int) -> tuple[list[DeviceEnergy], str | None]:
        """The usable readings of one read, and what was wrong with the others."""
        if not isinstance(outcome, (list, tuple)):
            return [], f"read() returned a {type(outcome).__name__}, not a list of readings"
        good: list[DeviceEnergy] = []
        problem: str | None = None
        for reading in outcome:
            why = reading_problem(reading)
            if why is None:
                last_j, last_ns = slot.last.get(reading.device, (0.0, self._start_ns))
                rate_w = (reading.energy_j - last_j) / max((t_ns - last_ns) / 1e9, 1e-3)
                if rate_w > MAX_DEVICE_POWER_W:
                    why = f"{reading.device}: {reading.energy_j:.6g} J means {rate_w:.3g} W since its last reading"
            if why is not None:
                problem = problem or why
                continue
            slot.last[reading.device] = (reading.energy_j, t_ns)
            good.append(reading)
        return good, problem

    def _fault(self, slot: MeterSlot, why: str) -> None:
        slot.faults += 1
        if slot.faults >= MAX_CONSECUTIVE_FAULTS:
            self._retire(slot, f"{slot.faults} faulty reads in a row, the last: {why}")
        elif not slot.warned:
            slot.warned = True
            log.warning(
                "greenai: meter %s: %s (a meter is retired after %d faulty reads in a row)",
                slot.name,
                why,
                MAX_CONSECUTIVE_FAULTS,
            )
        else:
            log.debug("greenai: meter %s: %s", slot.name, why)

    def _retire(self, slot: MeterSlot, why: str) -> None:
        if slot.retired is not None:
            return
        slot.retired = why
        if slot in self._active:
            self._active.remove(slot)
        at_s = max(time.perf_counter_ns() - self._start_ns, 0) / 1e9 if self._start_ns else 0.0
        note = f"meter {slot.name} failed and was dropped at {at_s:.1f} s ({why})"
        if slot.last:
            note += "; its devices keep the energy measured until then"
        log.warning("greenai: %s", note)
        self.notes.append(note)

    def _tick(self) -> None:
        readings, now_ns = self._read_all()
        wall = time.time() - (time.perf_counter_ns() - now_ns) / 1e9
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
        self._flush_tried = True
        if self._sink is None:
            return
        rows = self.take_unflushed()
        self._in_flight = len(rows)
        try:
            self._sink(self.snapshot(), rows)
            self._flush_failing = False
        except Exception as e:
            if not self._flush_failing:  # once per streak of failures
                log.warning("greenai: could not write to the ledger (will retry): %s", visible(e))
            self._flush_failing = True
            with self._lock:
                rows = rows + self._unflushed
                if len(rows) > MAX_PENDING_ROWS:
                    rows = thin_rows(rows, MAX_PENDING_ROWS // 2)
                self._unflushed = rows
        finally:
            self._in_flight = 0


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
