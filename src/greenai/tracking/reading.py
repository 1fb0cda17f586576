"""Meters are called off the user's thread, one call at a time, each with a deadline.

One worker thread calls the meters (`start`, `read`, `close`) one after another; whoever
asked (the tracker at start, the sampler thread afterwards) waits for each call at most
`timeout_s`, and with `total_s` for all of them together at most that: the reads of one tick
share one deadline, since one GPU is one meter and a driver-wide hang blocks every one of them
(one deadline each made a tick of K hung GPUs take K seconds). A meter that does not answer in
time (an NVML call can block for ever when a GPU falls off the bus) is given up: the worker
stays blocked inside it (a daemon thread, never joined) and a fresh worker serves the other
meters; those not called before the overall deadline are SKIPPED (called again next time, not
a fault). So no meter can hold up the sampler, or `stop()`, for longer than its deadline.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from greenai.errors import TimedOut  # defined there; re-exported here, where it is made
from greenai.meters.base import DeviceEnergy, MaxPower, Meter, MeterInfo, Provenance, max_power_of

log = logging.getLogger("greenai.tracking")

METER_TIMEOUT_S = 1.0  # one start(), read() or close() of one meter; longer: the meter is retired
MAX_CONSECUTIVE_FAULTS = 3  # faulty reads in a row (raised, or bad readings) before a meter is retired
SKIPPED = object()  # the outcome of a slot not called before the overall deadline of its call()


class MeterSlot:
    """One meter as the sampler sees it: its name and description (asked once, at start, so a
    meter whose `info()` raises cannot break a tick), its faults, and its last good readings."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        try:
            self._info = meter.info()
            if not isinstance(self._info, MeterInfo):
                raise TypeError(f"info() returned a {type(self._info).__name__}")
            self.name = str(self._info.name)
        except Exception as e:  # a meter's description must not stop the run
            self.name = type(meter).__name__
            self._info = MeterInfo(self.name, (), Provenance.ESTIMATED, f"info() failed: {e}")
            log.warning("greenai: meter %s: info() failed (%s); its readings are still used", self.name, e)
        self.faults = 0  # faulty reads in a row
        self.warned = False
        self.retired: str | None = None  # why, once retired
        self.hung = False  # retired because a call never returned: never call it again
        self.last: dict[str, tuple[float, int]] = {}  # device -> (energy_j, perf_counter_ns) of its last good reading

    # the Meter protocol, for the run's environment record (describe_environment)
    def info(self) -> MeterInfo:
        return self._info

    def max_power(self) -> MaxPower:
        try:
            return max_power_of(self.meter)
        except Exception as e:  # a figure for reports, not worth a run
            log.debug("greenai: meter %s: max_power() failed: %s", self.name, e)
            return {}

    def start(self) -> None:
        self.meter.start()

    def read(self) -> list[DeviceEnergy]:
        return self.meter.read()

    def close(self) -> None:
        self.meter.close()


class _Job:
    __slots__ = ("op", "queue", "results", "current", "done", "done_ns", "answered_ns")

    def __init__(self, op: Callable[[Meter], Any], slots: Sequence[MeterSlot]) -> None:
        self.op = op
        self.queue = list(slots)
        self.results: dict[MeterSlot, Any] = {}  # the value returned, or the exception raised
        self.current: tuple[MeterSlot, float] | None = None  # being called, since (monotonic)
        self.done = False
        self.done_ns = 0  # perf_counter_ns when the last call returned (or, if none did, the job ended)
        self.answered_ns = 0  # perf_counter_ns when the last call that returned did

    def finish(self) -> None:
        """Done: the readings are as of the last answer (not of a call given up later)."""
        self.done = True
        self.done_ns = self.answered_ns or time.perf_counter_ns()


class MeterReader:
    def __init__(self) -> None:
        self.last_done_ns = 0  # when the last call() had its last answer: the readings' time
        self._cv = threading.Condition(threading.Lock())
        self._job: _Job | None = None
        self._token: object | None = None  # identifies the worker in service; others must leave
        self._closed = False

    def call(
        self,
        op: Callable[[Meter], Any],
        slots: Sequence[MeterSlot],
        timeout_s: float = METER_TIMEOUT_S,
        *,
        total_s: float | None = None,
    ) -> dict[MeterSlot, Any]:
        """`op(meter)` for each slot, in the worker; each slot's result is what op returned,
        or the exception it raised, or a TimedOut when it took longer than `timeout_s`. With
        `total_s`, the whole call returns within it: the call under way then is given up (a
        TimedOut) and the slots not yet called are SKIPPED."""
        job = _Job(op, slots)
        if not job.queue:
            self.last_done_ns = time.perf_counter_ns()
            return job.results
        cv = self._cv
        with cv:
            if self._closed:
                raise RuntimeError("the meter reader is closed")
            if self._token is None:
                self._start_worker()
            self._job = job
            cv.notify_all()
            started = time.monotonic()
            # a worker that never picks the job up (cannot happen short of a dead thread)
            deadline = started + timeout_s * (len(job.queue) + 1)
            overall = started + total_s if total_s is not None else math.inf
            while not job.done:
                now = time.monotonic()
                if job.current is not None:
                    slot, since = job.current
                    left = min(since + timeout_s, overall) - now
                    if left <= 0:  # give it up, and its worker with it
                        if since + timeout_s <= now:
                            job.results[slot] = TimedOut(f"no answer within {timeout_s:g} s")
                        else:
                            job.results[slot] = TimedOut(f"no answer within the {total_s:g} s of all the calls")
                        job.current = None
                        slot.hung = True
                        self._start_worker()
                        if now >= overall:
                            self._skip_the_rest(job)
                        if not job.queue:
                            job.finish()
                        cv.notify_all()
                        continue
                    cv.wait(left)
                elif now >= overall:
                    self._skip_the_rest(job)
                    job.finish()
                elif now > deadline:
                    for slot in job.queue:
                        job.results[slot] = TimedOut("the meter worker did not run")
                    job.queue.clear()
                    job.finish()
                else:
                    cv.wait(min(timeout_s, deadline - now, overall - now))
            self._job = None
            self.last_done_ns = job.done_ns
        return job.results

    @staticmethod
    def _skip_the_rest(job: _Job) -> None:
        for slot in job.queue:
            job.results[slot] = SKIPPED
        job.queue.clear()

    def close(self) -> None:
        """Let the worker go (a worker blocked in a meter stays where it is)."""
        with self._cv:
            self._closed = True
            self._token = None
            self._cv.notify_all()

    def _start_worker(self) -> None:
        token = object()
        self._token = token
        threading.Thread(target=self._serve, args=(token,), name="greenai-meters", daemon=True).start()

    def _serve(self, token: object) -> None:
        cv = self._cv
        while True:
            with cv:
                while self._token is token and (self._job is None or not self._job.queue or self._job.current):
                    cv.wait()
                if self._token is not token:
                    return
                job = self._job
                assert job is not None
                slot = job.queue.pop(0)
                job.current = (slot, time.monotonic())
            try:
                result: Any = job.op(slot.meter)
            except BaseException as e:  # noqa: BLE001 - whatever a meter raises is its fault, not ours
                result = e
            with cv:
                if self._token is not token:  # given up while blocked: the answer is too late
                    return
                job.results[slot] = result
                job.current = None
                job.answered_ns = time.perf_counter_ns()
                if not job.queue:
                    job.finish()
                    cv.notify_all()
