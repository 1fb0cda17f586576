"""Pick the meters for this machine: hardware counters where they exist, labelled
estimates where they don't, and the reasons for what is missing (for `greenai env`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from greenai.config import Config
from greenai.errors import MeterError
from greenai.meters.base import Meter, Unavailable
from greenai.meters.cpu_model import CpuModelMeter, CpuUsage
from greenai.meters.dram_model import DramModelMeter, MemoryUsage
from greenai.meters.fallback import FallbackMeter
from greenai.meters.group import MeterGroup
from greenai.meters.io import DiskUsage, IoMeter
from greenai.meters.nvml import probe_nvml
from greenai.meters.rapl import probe_rapl
from greenai.meters.simulated import make_simulated_meters


class Scope(CpuUsage, MemoryUsage, DiskUsage, Protocol):
    """What the estimates measure: a process tree (meters.process.ProcessScope) or, for
    `greenai monitor`, the whole machine (monitor.machine.MachineScope)."""


@dataclass(frozen=True)
class Discovery:
    meters: list[Meter]
    unavailable: list[Unavailable] = field(default_factory=list)

    def names(self) -> set[str]:
        return {meter_name(m) for m in self.meters}


def meter_name(meter: Meter) -> str:
    return meter.info().name.split(" ")[0]


def discover(config: Config, scope: Scope, nvml: ModuleType | None = None) -> Discovery:
    """Meters for `scope`; raises MeterError if a meter named in `config.meters` is missing."""
    if config.simulate:
        simulated: list[Meter] = list(make_simulated_meters())
        found = Discovery(simulated, [Unavailable("hardware", "--simulate: simulated meters only")])
    else:
        found = _discover_hardware(config, scope, nvml)
    _check_required(config.meters, found)
    return found


def _discover_hardware(config: Config, scope: Scope, nvml: ModuleType | None) -> Discovery:
    meters: list[Meter] = []
    unavailable: list[Unavailable] = []

    def estimated_cpu() -> CpuModelMeter:
        return CpuModelMeter(scope, idle_w=config.cpu_idle_w, max_w=config.cpu_max_w)

    rapl = probe_rapl(config.rapl_root)
    if isinstance(rapl, Unavailable):
        unavailable.append(rapl)
        meters += [estimated_cpu(), DramModelMeter(scope)]
    else:
        has_dram = any(d.startswith("dram") for d in rapl.info().devices)

        def estimates() -> MeterGroup:
            # a counter that fails mid-run is replaced by estimates of the devices it covered
            return MeterGroup([estimated_cpu(), DramModelMeter(scope)] if has_dram else [estimated_cpu()])

        meters.append(FallbackMeter(rapl, estimates))
        if not has_dram:
            meters.append(DramModelMeter(scope))
    gpus = probe_nvml(nvml)
    if isinstance(gpus, Unavailable):
        unavailable.append(gpus)
    else:
        meters += gpus.per_device()  # one meter per GPU: a GPU that fails is dropped alone
    meters.append(IoMeter(scope))
    return Discovery(meters, unavailable)


def _check_required(required: tuple[str, ...], found: Discovery) -> None:
    """Explicit requests that cannot be met fail loudly at start (DESIGN.md principle 4)."""
    active = found.names()
    for name in required:
        if name in active:
            continue
        reason = next((u.reason for u in found.unavailable if u.name == name), "not in use on this machine")
        for meter in found.meters:
            meter.close()
        raise MeterError(f"meter {name!r} was requested but is not available: {reason}")
