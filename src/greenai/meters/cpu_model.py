"""Estimated CPU energy of a process tree: idle share plus utilization-linear dynamic power.

Per logical CPU the model has an idle and a maximum power:
- bare metal with a known TDP: max = TDP / logical CPUs per package (TDP from Intel/AMD
  spec pages via CodeCarbon's table); idle = max x 0.74 / 3.5, the ratio below;
- under a hypervisor or for an unknown CPU: 0.74 W idle and 3.5 W max per vCPU, the Cloud
  Carbon Footprint averages of SPECpower results over AWS's processor fleet ("Average
  Min/Max Watts per vCPU", https://www.cloudcarbonfootprint.org/docs/methodology). A VM's
  vCPUs are a slice of a host whose socket TDP says nothing about that slice, so a 2-vCPU
  VM peaks at 7 W, never a TDP.

Over an interval dt in which the tree used c CPU-seconds, with u usable CPUs
(ProcessScope.usable_cpus: affinity and cgroup quota):

    P = u x idle + (max - idle) x min(c / dt, u)

The tree is charged the idle power of the share of the machine it holds, and dynamic power
linear in utilization, the model of Fan, Weber and Barroso, "Power provisioning for a
warehouse-sized computer", ISCA 2007. User overrides `idle_w`/`max_w` are for the whole usable
share: P = idle_w + (max_w - idle_w) x min(c / dt / u, 1).

`idle_share` (default 1) scales the idle term: the idle power of a machine's CPUs is drawn
once however many processes share them, so when several tracked processes of one job use
the same CPUs (ranks of a distributed job, greenai.distributed) one of them is charged it
(`idle_share=1`) and the others only their dynamic power (`idle_share=0`).

The cap c/dt <= u holds over a window of LATE_WINDOW_S, not per interval: CPU time can be
reported late (a short-lived child's arrives folded into its parent's counters when the parent
reaps it), so an interval is charged all the CPU time newly seen up to the capacity the tree
left unused over the last LATE_WINDOW_S (a token bucket); time beyond that is carried to the
next intervals, and what exceeds a whole window's capacity (more CPU time than the tree could
have used: a miscount) is dropped. Capping each interval instead would drop most of a child's
life when it is reported at once.

Uncertainty (~95% half-width): 40% with a known TDP (or user-given watts), 50% on the
per-vCPU defaults. TDP is a thermal design
limit, not measured power (real draw at full load ranges from well below it to above it under
turbo); linear utilization models err by tens of percent on single workloads (Fan et al.
report ~1% on aggregated clusters, far worse per machine and per workload); the per-vCPU
averages hide a wide spread across processor generations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from greenai.config import MeterName
from greenai.errors import ConfigError, MeterError
from greenai.hardware.cpu import CpuInfo, read_cpu_info
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance

VCPU_IDLE_W = 0.74  # CCF, SPECpower-derived average minimum watts per vCPU
VCPU_MAX_W = 3.5  # CCF, SPECpower-derived average maximum watts per vCPU
REL_UNCERTAINTY_WATTS_KNOWN = 0.40  # TDP known, or the user gave idle_w/max_w
REL_UNCERTAINTY_DEFAULT = 0.50
# how late CPU time may be reported: ProcessScope finds new descendants every 1 s, so a child
# that lives and is reaped in between shows up in its parent's counters up to ~1 s late
LATE_WINDOW_S = 5.0


class CpuUsage(Protocol):
    """What the model needs from a process scope (ProcessScope implements it)."""

    def cpu_seconds(self) -> float: ...

    def usable_cpus(self) -> float: ...


class CpuModelMeter:
    """Estimated CPU energy (`cpu:0`) of a process tree from its CPU time."""

    def __init__(
        self,
        scope: CpuUsage,
        idle_w: float | None = None,
        max_w: float | None = None,
        cpu_info: CpuInfo | None = None,
        clock: Callable[[], float] = time.monotonic,
        idle_share: float = 1.0,
    ) -> None:
        if not 0.0 <= idle_share <= 1.0:
            raise ConfigError(f"cpu idle share must be from 0 to 1: {idle_share}")
        self._idle_share = idle_share
        if (idle_w is None) != (max_w is None):
            raise ConfigError("cpu power override needs both idle_w and max_w")
        if idle_w is not None and max_w is not None and not 0 <= idle_w <= max_w:
            raise ConfigError(f"cpu power override needs 0 <= idle_w <= max_w: {idle_w}, {max_w}")
        self._scope = scope
        self._override = None if idle_w is None or max_w is None else (idle_w, max_w)
        self._cpu = cpu_info if cpu_info is not None else read_cpu_info()
        self._clock = clock
        tdp_w = None if self._cpu.hypervisor else self._cpu.tdp_w
        self._use_tdp = tdp_w is not None
        self._max_per_cpu = VCPU_MAX_W if tdp_w is None else tdp_w / self._cpu.logical_per_package
        self._idle_per_cpu = self._max_per_cpu * VCPU_IDLE_W / VCPU_MAX_W
        generic = self._override is None and tdp_w is None
        self._rel = REL_UNCERTAINTY_DEFAULT if generic else REL_UNCERTAINTY_WATTS_KNOWN
        self._last: tuple[float, float] | None = None  # (time, cpu seconds) of the last read
        self._energy_j = 0.0
        self._headroom_s = 0.0  # CPU-seconds the tree could have used but did not, last window
        self._late_s = 0.0  # CPU-seconds seen beyond the headroom: carried to the next intervals

    def info(self) -> MeterInfo:
        return MeterInfo(MeterName.CPU_MODEL, ("cpu:0",), Provenance.ESTIMATED, self._detail())

    def start(self) -> None:
        self._last = (self._clock(), self._scope.cpu_seconds())
        self._energy_j = self._headroom_s = self._late_s = 0.0

    def read(self) -> list[DeviceEnergy]:
        if self._last is None:
            raise MeterError("cpu_model: read() before start()")
        now, cpu_s = self._clock(), self._scope.cpu_seconds()
        dt_s = now - self._last[0]
        if dt_s > 0:
            usable = self._scope.usable_cpus()
            bucket_s = usable * max(LATE_WINDOW_S, dt_s)
            self._headroom_s = min(self._headroom_s + usable * dt_s, bucket_s)
            seen = self._late_s + max(cpu_s - self._last[1], 0.0)
            busy_s = min(seen, self._headroom_s)
            self._headroom_s -= busy_s
            self._late_s = min(seen - busy_s, bucket_s)
            self._energy_j += self._interval_energy_j(busy_s, dt_s, usable)
            self._last = (now, cpu_s)
        return [DeviceEnergy("cpu:0", DeviceKind.CPU, self._energy_j, Provenance.ESTIMATED, self._rel)]

    def close(self) -> None:
        self._last = None

    def max_power(self) -> dict[str, tuple[float, str]]:
        """The model's power at full use of the usable CPUs."""
        usable = self._scope.usable_cpus()
        if self._override is not None:
            return {"cpu:0": (self._override[1], "cpu_max_w setting")}
        if self._use_tdp:
            source = f"TDP {self._cpu.tdp_w:g} W / {self._cpu.logical_per_package} logical CPUs x {usable:g} usable"
        else:
            source = f"CPU model max {VCPU_MAX_W} W per vCPU x {usable:g} usable (CCF)"
        return {"cpu:0": (usable * self._max_per_cpu, source)}

    def _interval_energy_j(self, busy_s: float, dt_s: float, usable: float) -> float:
        """Idle share over dt plus dynamic energy linear in the CPU-seconds charged."""
        share = self._idle_share
        if self._override is None:
            return share * usable * self._idle_per_cpu * dt_s + (self._max_per_cpu - self._idle_per_cpu) * busy_s
        idle_w, max_w = self._override
        return share * idle_w * dt_s + (max_w - idle_w) * busy_s / usable

    def _detail(self) -> str:
        usable = self._scope.usable_cpus()
        if self._override is not None:
            low, high = self._override
            source = "user override"
        else:
            low, high = usable * self._idle_per_cpu, usable * self._max_per_cpu
            if self._use_tdp:
                source = f"TDP {self._cpu.tdp_w:g} W / {self._cpu.logical_per_package} logical CPUs"
            else:
                why = "hypervisor" if self._cpu.hypervisor else "TDP unknown"
                source = f"{VCPU_IDLE_W}-{VCPU_MAX_W} W per vCPU (CCF default; {why})"
        shared = "" if self._idle_share == 1.0 else f", idle power charged x{self._idle_share:g} (shared CPUs)"
        return (
            f"model '{self._cpu.model_name}', {source}, {usable:g} usable CPUs, "
            f"{low:.2f}-{high:.2f} W, utilization-linear{shared}, +/-{self._rel:.0%}"
        )
