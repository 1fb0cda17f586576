"""Which devices a rank reads: node-wide devices once per job, its own process tree always.

Every device a meter reports is named here by what it is on its machine (`physical`) and
given a scope:
- node (`NODE`): RAPL packages and their DRAM (a kernel's counters: `<node>/rapl/cpu:0`),
  GPUs (by NVML UUID, which a MIG instance's parent GPU also gives), the host's network
  (`<node>/network`), simulated devices. Whoever reads one reads the whole machine's, so one
  rank of the job reads each: the lowest rank of the node that sees it.
- process (`PROCESS`): the CPU and DRAM models and disk bytes, which follow the rank's own
  process tree (`<node>/pid <pid>/cpu:0`): every rank reads its own. The CPU model's idle
  power is the node's, though (every process on the same CPUs would charge it again): it is
  a node device of its own (`<node>/cpu idle`), and the CPU models of the other ranks charge
  only their dynamic power (meters.cpu_model's `idle_share=0`).
A meter whose devices are of both scopes (the I/O meter: disk per process, network per host)
is kept with only the devices this rank reads (`DeviceFilter`).
"""

from __future__ import annotations

from dataclasses import dataclass

from greenai.config import Config, MeterName
from greenai.ledger.distributed import NODE, PROCESS
from greenai.meters.base import DeviceEnergy, MaxPower, Meter, MeterInfo, max_power_of
from greenai.meters.cpu_model import CpuModelMeter, CpuUsage


@dataclass(frozen=True)
class Placement:
    physical: str
    scope: str


def cpu_idle_id(node: str) -> str:
    return f"{node}/cpu idle"


def meter_kind(meter: Meter) -> str:
    try:
        return meter.info().name.split(" ")[0]
    except Exception:  # noqa: BLE001 - a meter whose description fails is read as its own process's
        return ""


def gpu_uuid(meter: Meter, device: str) -> str:
    """The NVML UUID of the physical GPU behind `device` (a MIG instance's parent's), as the
    NVML meters give it (`uuids`); "" when the meter does not say. Not the device's name: a
    rank's `gpu:0` is the first entry of its own CUDA_VISIBLE_DEVICES, another GPU on another
    rank."""
    try:
        uuid = getattr(meter, "uuids", {}).get(device, "")
    except Exception:  # noqa: BLE001 - a meter that cannot say is named by its device
        return ""
    return uuid if isinstance(uuid, str) else ""


def placements(meter: Meter, node: str, pid: int) -> dict[str, Placement]:
    """Each device of `meter` (as its `info()` lists them), named and scoped."""
    try:
        devices = meter.info().devices
    except Exception:  # noqa: BLE001
        return {}
    kind = meter_kind(meter)
    out: dict[str, Placement] = {}
    for device in devices:
        if kind == MeterName.RAPL:
            out[device] = Placement(f"{node}/rapl/{device}", NODE)
        elif kind == MeterName.NVML:
            out[device] = Placement(gpu_uuid(meter, device) or f"{node}/nvml/{device}", NODE)
        elif kind == MeterName.SIMULATED:
            out[device] = Placement(f"{node}/simulated/{device}", NODE)
        elif kind == MeterName.IO and device == "network":
            out[device] = Placement(f"{node}/network", NODE)
        else:  # CPU and DRAM models, disk bytes, meters greenai does not know: the rank's own
            out[device] = Placement(f"{node}/pid {pid}/{device}", PROCESS)
    return out


class DeviceFilter:
    """`meter` with only the devices in `keep` (the others are some other rank's)."""

    def __init__(self, meter: Meter, keep: set[str]) -> None:
        self._meter = meter
        self._keep = set(keep)

    def info(self) -> MeterInfo:
        info = self._meter.info()
        left = tuple(d for d in info.devices if d in self._keep)
        dropped = [d for d in info.devices if d not in self._keep]
        detail = f"{info.detail}; {', '.join(dropped)} read by another rank of the job" if dropped else info.detail
        return MeterInfo(info.name, left, info.provenance, detail)

    def start(self) -> None:
        self._meter.start()

    def read(self) -> list[DeviceEnergy]:
        return [r for r in self._meter.read() if getattr(r, "device", None) in self._keep]

    def max_power(self) -> MaxPower:
        return {d: v for d, v in max_power_of(self._meter).items() if d in self._keep}

    def close(self) -> None:
        self._meter.close()


@dataclass
class Selection:
    meters: list[Meter]
    reads: dict[str, Placement]  # device (as the run names it) -> what it is
    node_ids: list[str]  # every node device this rank could read, before the choice
    dropped: list[str]  # node devices left to other ranks


def node_ids_of(meters: list[Meter], node: str, pid: int) -> list[str]:
    """The node devices these meters could read (with the CPU model's idle power)."""
    ids: list[str] = []
    for meter in meters:
        ids += [p.physical for p in placements(meter, node, pid).values() if p.scope == NODE]
        if isinstance(meter, CpuModelMeter):
            ids.append(cpu_idle_id(node))
    return sorted(set(ids))


def select(meters: list[Meter], owned: set[str], node: str, pid: int, scope: CpuUsage, config: Config) -> Selection:
    """Keep the process devices and the node devices in `owned`; close meters left with no
    device; a CPU model whose node's idle power another rank charges charges none."""
    kept: list[Meter] = []
    reads: dict[str, Placement] = {}
    dropped: list[str] = []
    all_ids = node_ids_of(meters, node, pid)
    for meter in meters:
        where = placements(meter, node, pid)
        if isinstance(meter, CpuModelMeter) and cpu_idle_id(node) not in owned:
            meter.close()
            meter = CpuModelMeter(scope, idle_w=config.cpu_idle_w, max_w=config.cpu_max_w, idle_share=0.0)
            dropped.append(cpu_idle_id(node))
        keep = {d for d, p in where.items() if p.scope != NODE or p.physical in owned}
        dropped += [p.physical for d, p in where.items() if d not in keep]
        reads.update({d: where[d] for d in keep})
        if keep == set(where):
            kept.append(meter)
        elif keep:
            kept.append(DeviceFilter(meter, keep))
        else:
            try:
                meter.close()
            except Exception:  # noqa: BLE001 - a meter that will not be read
                pass
    return Selection(kept, reads, all_ids, sorted(set(dropped)))
