"""Fault injection for meters: a meter that breaks mid-run, as a real counter can (a driver
reset, a sysfs file that vanishes, NVML losing the GPU)."""

from __future__ import annotations

from greenai.errors import MeterError
from greenai.meters.base import DeviceEnergy, Meter, MeterInfo


class FailingAfter:
    """Wraps a meter; its first `n_reads` reads succeed, every later one raises MeterError."""

    def __init__(self, meter: Meter, n_reads: int) -> None:
        self._meter = meter
        self._n_reads = n_reads
        self.reads = 0

    def info(self) -> MeterInfo:
        return self._meter.info()

    def start(self) -> None:
        self._meter.start()

    def read(self) -> list[DeviceEnergy]:
        if self.reads >= self._n_reads:
            raise MeterError(f"{self._meter.info().name}: injected failure after {self._n_reads} reads")
        self.reads += 1
        return self._meter.read()

    def close(self) -> None:
        self._meter.close()
