"""Estimated DRAM energy of a process tree from its resident memory.

P = 0.375 W per GB of RSS: 3 W per 8 GB DDR4 module, CodeCarbon's RAM methodology
(https://mlco2.github.io/codecarbon/methodology.html); Micron's DDR4 system power
calculator gives a few watts per module, depending on load. Energy is the right-rectangle integral:
each read charges the RSS it sees for the time since the previous read (10 Hz by default).

Uncertainty (~95% half-width) 50%: module power depends on generation, rank count and access
rate more than on capacity, and RSS counts pages shared between processes once per process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from greenai.config import MeterName
from greenai.errors import MeterError
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance

W_PER_GB = 3.0 / 8.0  # one 8 GB DDR4 module ~3 W (CodeCarbon)
BYTES_PER_DIMM_GB = 2**30  # module capacities are binary gigabytes
REL_UNCERTAINTY = 0.50


class MemoryUsage(Protocol):
    def rss_bytes(self) -> int: ...


def dram_power_w(rss_bytes: float, w_per_gb: float = W_PER_GB) -> float:
    return w_per_gb * rss_bytes / BYTES_PER_DIMM_GB


class DramModelMeter:
    """Estimated DRAM energy (`dram:0`) of a process tree from its RSS."""

    def __init__(
        self,
        scope: MemoryUsage,
        w_per_gb: float = W_PER_GB,
        clock: Callable[[], float] = time.monotonic,
        rss_refresh_s: float = 1.0,
    ) -> None:
        self._scope = scope
        self._w_per_gb = w_per_gb
        self._clock = clock
        # RSS changes slowly and reading it costs ~100 us of /proc parsing per process: at
        # 10 Hz it is re-read once a second and the last value integrated in between.
        self._rss_refresh_s = rss_refresh_s
        self._power_w = 0.0
        self._power_until = -math.inf
        self._last_s: float | None = None
        self._energy_j = 0.0

    def info(self) -> MeterInfo:
        detail = f"{self._w_per_gb:g} W per GB of process-tree RSS (CodeCarbon, 3 W / 8 GB), +/-50%"
        return MeterInfo(MeterName.DRAM_MODEL, ("dram:0",), Provenance.ESTIMATED, detail)

    def start(self) -> None:
        self._last_s = self._clock()
        self._energy_j = 0.0
        self._power_until = -math.inf

    def read(self) -> list[DeviceEnergy]:
        if self._last_s is None:
            raise MeterError("dram_model: read() before start()")
        now = self._clock()
        if now > self._last_s:
            if now >= self._power_until:
                self._power_w = dram_power_w(self._scope.rss_bytes(), self._w_per_gb)
                self._power_until = now + self._rss_refresh_s
            self._energy_j += self._power_w * (now - self._last_s)
            self._last_s = now
        return [DeviceEnergy("dram:0", DeviceKind.DRAM, self._energy_j, Provenance.ESTIMATED, REL_UNCERTAINTY)]

    def close(self) -> None:
        self._last_s = None
