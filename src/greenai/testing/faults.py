"""Fault injection for meters: a meter that breaks mid-run, as a real counter can (a driver
reset, a sysfs file that vanishes, NVML losing the GPU), returns garbage (NaN, inf, None, a
wrong type, an absurd value), raises from `info()`, or blocks in `read()` (an NVML call
waiting on a GPU that fell off the bus).

Every wrapper counts its reads and lets the first `after` of them through unchanged, so a
test can fault a meter mid-run; `times` bounds how many faulty reads it makes (None: every
later read is faulty)."""

from __future__ import annotations

import threading
from typing import Any

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


class _Faulty:
    """Base of the wrappers below: good reads, then `times` faulty ones (None: for ever)."""

    def __init__(self, meter: Meter, after: int = 0, times: int | None = None) -> None:
        self._meter = meter
        self._after = after
        self._times = times
        self.reads = 0  # every call of read()
        self.faults = 0  # faulty reads made
        self.closed = False

    def info(self) -> MeterInfo:
        return self._meter.info()

    def start(self) -> None:
        self._meter.start()

    def read(self) -> Any:
        self.reads += 1
        good = self._meter.read()
        if self.reads <= self._after or (self._times is not None and self.faults >= self._times):
            return good
        self.faults += 1
        return self._fault(good)

    def _fault(self, good: list[DeviceEnergy]) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
        self._meter.close()


class BadValue(_Faulty):
    """Readings whose `energy_j` is replaced by `value` (nan, inf, -1.0, 1e301, None, "12")."""

    def __init__(self, meter: Meter, value: Any, after: int = 0, times: int | None = None) -> None:
        super().__init__(meter, after, times)
        self.value = value

    def _fault(self, good: list[DeviceEnergy]) -> Any:
        # object.__setattr__ past the frozen dataclass: a meter may hand back anything
        out = []
        for r in good:
            bad = DeviceEnergy(r.device, r.kind, 0.0, r.provenance, r.rel_uncertainty)
            object.__setattr__(bad, "energy_j", self.value)
            out.append(bad)
        return out


class WrongResult(_Faulty):
    """`read()` returns `value` itself instead of a list of DeviceEnergy (None, a float, a
    dict, a list of tuples...)."""

    def __init__(self, meter: Meter, value: Any, after: int = 0, times: int | None = None) -> None:
        super().__init__(meter, after, times)
        self.value = value

    def _fault(self, good: list[DeviceEnergy]) -> Any:
        return self.value


class Raising(_Faulty):
    """`read()` raises `error` (any exception, not only MeterError)."""

    def __init__(
        self, meter: Meter, error: BaseException | None = None, after: int = 0, times: int | None = None
    ) -> None:
        super().__init__(meter, after, times)
        self.error = error if error is not None else RuntimeError("injected failure")

    def _fault(self, good: list[DeviceEnergy]) -> Any:
        raise self.error


class InfoRaising:
    """A meter whose `info()` raises (from the first call, or from call `after` + 1 on);
    its readings are good."""

    def __init__(self, meter: Meter, after: int = 0, error: BaseException | None = None) -> None:
        self._meter = meter
        self._after = after
        self.error = error if error is not None else RuntimeError("injected info() failure")
        self.info_calls = 0

    def info(self) -> MeterInfo:
        self.info_calls += 1
        if self.info_calls > self._after:
            raise self.error
        return self._meter.info()

    def start(self) -> None:
        self._meter.start()

    def read(self) -> list[DeviceEnergy]:
        return self._meter.read()

    def close(self) -> None:
        self._meter.close()


class Blocking(_Faulty):
    """`read()` blocks (until `release()`, or for ever), as an NVML call can when the GPU
    fell off the bus. `blocked` is set once a read is stuck."""

    def __init__(self, meter: Meter, after: int = 0) -> None:
        super().__init__(meter, after, None)
        self._gate = threading.Event()
        self.blocked = threading.Event()

    def _fault(self, good: list[DeviceEnergy]) -> Any:
        self.blocked.set()
        self._gate.wait()
        return good

    def release(self) -> None:
        self._gate.set()


class BlockingStart:
    """A meter whose `start()` blocks until `release()` (or for ever)."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._gate = threading.Event()

    def info(self) -> MeterInfo:
        return self._meter.info()

    def start(self) -> None:
        self._gate.wait()
        self._meter.start()

    def read(self) -> list[DeviceEnergy]:
        return self._meter.read()

    def close(self) -> None:
        self._meter.close()

    def release(self) -> None:
        self._gate.set()
