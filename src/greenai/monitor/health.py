"""Each meter's health, for `greenai_meter_up` and `greenai_meter_errors_total`.

The exporter hands the tracker its meters wrapped in `WatchedMeter`: the tracker calls them as
it calls any meter (in its reader thread, with a deadline, retiring a meter that fails), and
the wrapper notes, as the calls go by, when the meter last gave good readings and how many of
its reads failed. A meter is up while its last read gave good readings and that read is
recent: a meter the tracker retired (it failed three reads in a row, or did not answer within
its deadline) is no longer called, so its last good read grows old and it goes down.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from greenai.meters.base import DeviceEnergy, MaxPower, Meter, MeterInfo, max_power_of, reading_problem


@dataclass(frozen=True, slots=True)
class MeterHealth:
    meter: str  # the meter's name (rapl, nvml, cpu_model, ...)
    devices: str  # the devices it covers, comma-separated: with the name, one series per meter
    up: bool
    errors: int  # failed reads since the exporter started


class WatchedMeter:
    """`meter`, passed through, with the outcome of each read noted."""

    def __init__(self, meter: Meter, clock: Callable[[], float] = time.monotonic) -> None:
        self.meter = meter
        self._clock = clock
        try:
            info = meter.info()
            self.name, self.devices = str(info.name), ",".join(info.devices)
        except Exception:  # the tracker's MeterSlot reports it; the exporter still needs a label
            self.name, self.devices = type(meter).__name__, ""
        self._lock = threading.Lock()
        self._errors = 0
        self._last_good = -math.inf  # clock() of the last read that gave only good readings
        self._last_failed = False

    # -- the Meter protocol, as the tracker calls it ------------------------------------
    def info(self) -> MeterInfo:
        return self.meter.info()

    def max_power(self) -> MaxPower:
        return max_power_of(self.meter)

    def start(self) -> None:
        self.meter.start()
        with self._lock:
            self._last_good = self._clock()  # started: up until its first read says otherwise

    def read(self) -> list[DeviceEnergy]:
        try:
            readings = self.meter.read()
        except BaseException:
            self._noted(good=False)
            raise
        good = isinstance(readings, (list, tuple)) and all(reading_problem(r) is None for r in readings)
        self._noted(good)
        return readings

    def close(self) -> None:
        self.meter.close()

    # -- health ------------------------------------------------------------------------
    def _noted(self, good: bool) -> None:
        with self._lock:
            if good:
                self._last_good = self._clock()
            else:
                self._errors += 1
            self._last_failed = not good

    def health(self, stale_after_s: float) -> MeterHealth:
        """Up: the last read was good and no older than `stale_after_s`."""
        with self._lock:
            fresh = self._clock() - self._last_good <= stale_after_s
            return MeterHealth(self.name, self.devices, fresh and not self._last_failed, self._errors)
