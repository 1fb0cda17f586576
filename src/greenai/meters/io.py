"""Estimated storage and network energy from bytes moved: E = bytes x J/byte.

Storage (`disk`): bytes the process tree read from and wrote to block devices (psutil
per-process io_counters, i.e. /proc/<pid>/io read_bytes + write_bytes; page-cache hits do not
touch the disk and are not counted). Network (`network`): bytes sent + received by every
interface of the host except loopback (psutil.net_io_counters(pernic=True)). This is host-wide:
Linux keeps no per-process byte counters for sockets, so attributing them to a process would
need eBPF. Inside a container the host is the container's network namespace.

Both coefficients are order-of-magnitude figures, hence a ~95% half-width of 100%. Only the
energy of moving the bytes is charged; the idle power of the disk, NIC and switches is not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import psutil

from greenai.config import MeterName
from greenai.errors import MeterError
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance

# NVMe SSD: ~5 W active while streaming ~2 GB/s, i.e. 2.5 nJ/B (data-centre NVMe datasheets
# list 5-12 W active at 2-7 GB/s sequential). Hard disks are ~10x worse per byte; small
# random I/O and write amplification raise the per-byte cost too.
DISK_J_PER_BYTE = 2.5e-9
# Inside a data centre: the host NIC (a 100 GbE adapter draws ~20 W at 12.5 GB/s, ~1.6 nJ/B)
# plus ~3 switch hops of a leaf-spine fabric (a 32 x 100 GbE switch draws ~400 W for
# 400 GB/s, ~1 nJ/B per hop): ~5 nJ/B at line rate, a back-of-envelope figure from typical
# nameplate powers. Traffic that leaves the data centre costs far more per byte over
# wide-area networks; it is not modelled.
NETWORK_J_PER_BYTE = 5e-9
REL_UNCERTAINTY = 1.0
LOOPBACK = "lo"


class DiskUsage(Protocol):
    def io_bytes(self) -> tuple[int, int]: ...


def host_network_bytes() -> int:
    """Bytes sent + received by all interfaces but loopback, since boot."""
    nics = psutil.net_io_counters(pernic=True, nowrap=False)
    return sum(c.bytes_sent + c.bytes_recv for name, c in nics.items() if name != LOOPBACK)


class _Bytes:
    """Bytes moved since start, from a counter that may reset (a NIC removed): only
    increases are added."""

    def __init__(self, counter: Callable[[], int]) -> None:
        self._counter = counter
        self._last = 0
        self.moved = 0

    def start(self) -> None:
        self._last, self.moved = self._counter(), 0

    def update(self) -> int:
        now = self._counter()
        self.moved += max(0, now - self._last)
        self._last = now
        return self.moved


class IoMeter:
    """Estimated energy of storage I/O of a process tree (`disk`) and host network (`network`)."""

    def __init__(
        self,
        scope: DiskUsage,
        net_bytes: Callable[[], int] = host_network_bytes,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._disk = _Bytes(lambda: sum(scope.io_bytes()))
        self._net = _Bytes(net_bytes)
        # byte counters cost ~0.5 ms to read (all NICs, every process of the tree) for an
        # energy that is tiny next to CPU and GPU: they are read at most once per refresh_s
        self._refresh_s = refresh_s
        self._clock = clock
        self._next_s = -math.inf
        self._readings: list[DeviceEnergy] = []
        self._started = False

    def info(self) -> MeterInfo:
        detail = (
            f"disk {DISK_J_PER_BYTE:g} J/B x process-tree read+write bytes; "
            f"network {NETWORK_J_PER_BYTE:g} J/B x host-wide bytes (all NICs but loopback; "
            "not attributable per process without eBPF); +/-100%"
        )
        return MeterInfo(MeterName.IO, ("disk", "network"), Provenance.ESTIMATED, detail)

    def start(self) -> None:
        self._disk.start()
        self._net.start()
        self._next_s = -math.inf
        self._started = True

    def read(self) -> list[DeviceEnergy]:
        if not self._started:
            raise MeterError("io: read() before start()")
        now = self._clock()
        if now < self._next_s:
            return self._readings
        self._next_s = now + self._refresh_s
        disk_j = self._disk.update() * DISK_J_PER_BYTE
        net_j = self._net.update() * NETWORK_J_PER_BYTE
        self._readings = [
            DeviceEnergy("disk", DeviceKind.DISK, disk_j, Provenance.ESTIMATED, REL_UNCERTAINTY),
            DeviceEnergy("network", DeviceKind.NETWORK, net_j, Provenance.ESTIMATED, REL_UNCERTAINTY),
        ]
        return self._readings

    def close(self) -> None:
        self._started = False
