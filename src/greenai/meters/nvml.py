"""NVIDIA GPU energy through NVML (nvidia-ml-py, imported as `pynvml`).

Volta and newer GPUs keep a total-energy counter (mJ since the driver loaded): MEASURED,
±5% (NVIDIA states board power accurate to ±5 W, at most 5% at 100 W and above). Older
boards only report power (mW), integrated here by the trapezoid rule between reads:
INTEGRATED, ±10%, because NVML power is a ~1 s average on many boards, and on A100/H100
only about a quarter of the time is sampled (Yang, Adamek, Armour, "Part-time Power
Measurements: nvidia-smi's Lack of Attention", arXiv:2312.02741, 2023).

Devices are named as the user's CUDA code sees them: `gpu:K` is the K-th entry of
CUDA_VISIBLE_DEVICES (indices, `GPU-...` or `MIG-...` UUIDs; unset means all GPUs, empty
means none). As in CUDA, an entry that matches no GPU hides itself and every later entry.
Indices are NVML's (PCI bus) order: CUDA's too with CUDA_DEVICE_ORDER=PCI_BUS_ID, or when
all GPUs are the same model.

A MIG instance has no energy or power reading of its own: its parent GPU's energy is
reported once, under the first visible entry on that GPU, and `info().detail` says so.

Faults are per GPU. `NvmlMeter` reads the visible GPUs as one meter, so a fault on any of
them fails its whole read (MeterError naming the GPU), and a tracker that drops a failing
meter would drop every GPU with it. Discovery therefore splits it with `per_device()` into
one `NvmlGpuMeter` per physical GPU, sharing one NVML session: a GPU that fails is dropped
alone, the energy it reported up to its last good reading stays in the run, and the other
GPUs are measured on. A GPU meter's error names the GPU and says when (seconds since the
meter started, and when its last good reading was); a GPU that fell off the bus
(NVML_ERROR_GPU_IS_LOST) is not called again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from greenai.config import MeterName
from greenai.errors import MeterError, NvmlError
from greenai.hardware.nvml import NvmlSession, Reason
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance, Unavailable
from greenai.units import energy_j, millijoules_to_joules, milliwatts_to_watts

MIG_NOTE = "MIG instance: energy is the whole parent GPU"
_REL_UNCERTAINTY = {Provenance.MEASURED: 0.05, Provenance.INTEGRATED: 0.10}
_UNSUPPORTED = (Reason.UNSUPPORTED,)


def trapezoid_j(start_power_w: float, end_power_w: float, duration_s: float) -> float:
    """Energy between two power samples by the trapezoid rule."""
    return energy_j((start_power_w + end_power_w) / 2, duration_s)


def _meter_error(error: NvmlError) -> MeterError:
    """NVML's failure as a meter's (raised from the vendor's error, its NvmlError's cause)."""
    return MeterError(str(error))


@dataclass(slots=True)
class _Gpu:
    """One physical GPU and its running total since `start()`."""

    device: str  # "gpu:K", K as the user's CUDA code numbers it
    label: str  # for messages: device, physical index, name, uuid
    handle: Any  # the physical GPU's NVML handle
    provenance: Provenance  # MEASURED: energy counter; INTEGRATED: power samples
    notes: list[str] = field(default_factory=list)  # for info().detail
    uuid: str = ""  # the physical GPU's NVML UUID (a MIG instance's parent's)
    base_mj: int = 0
    last_power_w: float = 0.0
    last_t: float = 0.0
    energy_j: float = 0.0

    def start(self, nvml: NvmlSession, now: float) -> None:
        if self.provenance is Provenance.MEASURED:
            self.base_mj = nvml.call("nvmlDeviceGetTotalEnergyConsumption", self.handle, device=self.label)
        else:
            self.last_power_w, self.last_t = self._power_w(nvml), now
        self.energy_j = 0.0

    def read(self, nvml: NvmlSession, now: float) -> DeviceEnergy:
        """Energy since start(); NvmlError if NVML fails, MeterError if the counter ran back."""
        if self.provenance is Provenance.MEASURED:
            mj = nvml.call("nvmlDeviceGetTotalEnergyConsumption", self.handle, device=self.label)
            if mj < self.base_mj:
                raise MeterError(f"{self.label}: energy counter went backwards (driver reloaded?)")
            self.energy_j = millijoules_to_joules(mj - self.base_mj)
        else:
            power_w = self._power_w(nvml)
            self.energy_j += trapezoid_j(self.last_power_w, power_w, now - self.last_t)
            self.last_power_w, self.last_t = power_w, now
        rel = _REL_UNCERTAINTY[self.provenance]
        return DeviceEnergy(self.device, DeviceKind.GPU, self.energy_j, self.provenance, rel)

    def max_power(self, nvml: NvmlSession) -> tuple[float, str] | None:
        """The GPU's power management limit, where NVML reports one."""
        try:
            mw = nvml.call("nvmlDeviceGetPowerManagementLimit", self.handle, absent=_UNSUPPORTED)
        except NvmlError:
            return None
        return (milliwatts_to_watts(mw), "NVML power management limit") if mw else None

    def _power_w(self, nvml: NvmlSession) -> float:
        return milliwatts_to_watts(nvml.call("nvmlDeviceGetPowerUsage", self.handle, device=self.label))


class NvmlMeter:
    """Energy of the visible NVIDIA GPUs, as one meter (a fault on any GPU fails the read;
    `per_device()` gives one meter per GPU instead). `nvml` is the pynvml module (or a fake
    with the same functions); `visible_devices` defaults to $CUDA_VISIBLE_DEVICES."""

    def __init__(
        self,
        nvml: Any = None,
        visible_devices: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._clock = clock
        if visible_devices is None:
            visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        try:
            self._session = NvmlSession(nvml)
        except NvmlError as e:
            raise _meter_error(e) from (e.__cause__ or e)
        self._open = True
        self._started = False
        self._notes: list[str] = []  # about the visible list as a whole
        try:
            self._gpus = self._resolve(visible_devices)
            if not self._gpus:
                shown = (
                    "NVML reports none" if visible_devices is None else (f"CUDA_VISIBLE_DEVICES={visible_devices!r}")
                )
                raise MeterError(f"no NVIDIA GPU visible ({shown})")
        except NvmlError as e:
            self.close()
            raise _meter_error(e) from (e.__cause__ or e)
        except MeterError:
            self.close()
            raise

    def info(self) -> MeterInfo:
        notes = self._notes + [note for gpu in self._gpus for note in gpu.notes]
        return MeterInfo(
            name=MeterName.NVML,
            devices=tuple(gpu.device for gpu in self._gpus),
            provenance=max((gpu.provenance for gpu in self._gpus), key=lambda p: p.rank, default=Provenance.MEASURED),
            detail="NVML: " + "; ".join(notes),
        )

    def start(self) -> None:
        now = self._clock()
        try:
            for gpu in self._gpus:
                gpu.start(self._session, now)
        except NvmlError as e:
            raise _meter_error(e) from (e.__cause__ or e)
        self._started = True

    def read(self) -> list[DeviceEnergy]:
        if not self._started:
            raise MeterError("NvmlMeter.read() called before start()")
        now = self._clock()
        try:
            return [gpu.read(self._session, now) for gpu in self._gpus]
        except NvmlError as e:
            raise _meter_error(e) from (e.__cause__ or e)

    @property
    def uuids(self) -> dict[str, str]:
        """Each device's physical GPU by its NVML UUID (a MIG instance's parent's): what names
        it on its machine whichever process reads it and whatever CUDA_VISIBLE_DEVICES it
        has (greenai.distributed counts each GPU of a job once by it)."""
        return {gpu.device: gpu.uuid for gpu in self._gpus}

    def max_power(self) -> dict[str, tuple[float, str]]:
        """Each GPU's power management limit (where NVML reports one)."""
        found = ((gpu.device, gpu.max_power(self._session)) for gpu in self._gpus)
        return {device: limit for device, limit in found if limit is not None}

    def per_device(self) -> list[NvmlGpuMeter]:
        """One meter per physical GPU, sharing this meter's NVML session, so that a fault
        drops one GPU only. Notes about the visible list as a whole go with the first. This
        meter is closed by the split (before `start()`)."""
        if self._started or not self._open:
            raise MeterError("NvmlMeter.per_device() must be called before start() and close()")
        meters = [
            NvmlGpuMeter(self._session.share(), gpu, (self._notes if n == 0 else []) + gpu.notes, self._clock)
            for n, gpu in enumerate(self._gpus)
        ]
        self.close()
        self._gpus = []
        return meters

    def close(self) -> None:
        if self._open:
            self._open = False
            self._session.close()

    def _resolve(self, visible_devices: str | None) -> list[_Gpu]:
        """One _Gpu per physical GPU behind the visible entries, in CUDA's order."""
        nvml = self._session
        gpus: dict[int, _Gpu] = {}  # physical index -> the GPU it is reported under
        for position, (entry, handle) in enumerate(self._visible(visible_devices)):
            device = f"gpu:{position}"
            is_mig = entry.startswith("MIG-") or bool(
                nvml.call("nvmlDeviceIsMigDeviceHandle", handle, absent=_UNSUPPORTED)
            )
            parent = (
                handle
                if not is_mig
                else nvml.call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle, device=device)
            )
            index = nvml.call("nvmlDeviceGetIndex", parent, device=device)
            if index in gpus:
                counted = gpus[index]
                counted.notes.append(
                    f"{device}={entry} is on physical GPU {index}, already counted under {counted.device}"
                )
                continue
            name = nvml.call("nvmlDeviceGetName", parent, device=device)
            uuid = nvml.call("nvmlDeviceGetUUID", parent, device=device)
            label = f"{device} (physical {index}, {name}, {uuid})"
            gpu = gpus[index] = _Gpu(device, label, parent, self._provenance(parent, label), uuid=str(uuid))
            how = "energy counter" if gpu.provenance is Provenance.MEASURED else "power integrated"
            note = f"{label}: {how}"
            mig_mode = nvml.call("nvmlDeviceGetMigMode", parent, device=device, absent=_UNSUPPORTED)
            if is_mig:
                note += f"; {entry}: {MIG_NOTE}"
            elif mig_mode and mig_mode[0] == nvml.module.NVML_DEVICE_MIG_ENABLE:
                note += "; MIG mode on: energy is the whole GPU, shared by all its MIG instances"
            gpu.notes.append(note)
        return list(gpus.values())

    def _visible(self, spec: str | None) -> list[tuple[str, Any]]:
        """(entry, handle) for each GPU the user's CUDA code sees, in its order."""
        count = self._session.device_count()
        if spec is None:
            return [(str(i), self._session.handle_by_index(i)) for i in range(count)]
        found = []
        for entry in (e.strip() for e in spec.split(",")) if spec.strip() else ():
            handle = self._lookup(entry, count)
            if handle is None:
                self._notes.append(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no GPU: CUDA hides it and every later entry"
                )
                break
            found.append((entry, handle))
        return found

    def _lookup(self, entry: str, count: int) -> Any:
        """The handle for one CUDA_VISIBLE_DEVICES entry, or None if CUDA would reject it."""
        if entry.isascii() and entry.isdigit():
            index = int(entry)
            return self._session.handle_by_index(index) if index < count else None
        if entry.startswith(("GPU-", "MIG-")):
            return self._session.handle_by_uuid(entry)
        return None

    def _provenance(self, handle: Any, label: str) -> Provenance:
        """MEASURED if the GPU has an energy counter, else INTEGRATED if it reports power."""
        nvml = self._session
        if nvml.call("nvmlDeviceGetTotalEnergyConsumption", handle, device=label, absent=_UNSUPPORTED) is not None:
            return Provenance.MEASURED
        if nvml.call("nvmlDeviceGetPowerUsage", handle, device=label, absent=_UNSUPPORTED) is not None:
            return Provenance.INTEGRATED
        raise MeterError(f"{label}: NVML reports neither energy nor power for this GPU")


class NvmlGpuMeter:
    """One physical GPU's energy (made by `NvmlMeter.per_device()`). When NVML fails on it,
    `read()` raises MeterError naming the GPU and saying when: seconds since `start()` and
    when its last good reading was (the energy up to then is what the run keeps). A GPU lost
    from the bus is not called again: later reads raise the same error at once."""

    def __init__(self, session: NvmlSession, gpu: _Gpu, notes: list[str], clock: Callable[[], float]) -> None:
        self._session = session
        self._gpu = gpu
        self._notes = list(notes)
        self._clock = clock
        self._open = True
        self._started = False
        self._t0 = self._last_good_t = 0.0
        self._fault: str | None = None  # the last failure, for info()
        self._lost: MeterError | None = None  # set when the GPU fell off the bus

    @property
    def device(self) -> str:
        return self._gpu.device

    @property
    def uuids(self) -> dict[str, str]:
        """Its device's physical GPU by its NVML UUID, as `NvmlMeter.uuids`."""
        return {self._gpu.device: self._gpu.uuid}

    def info(self) -> MeterInfo:
        notes = self._notes + ([f"failed: {self._fault}"] if self._fault else [])
        return MeterInfo(MeterName.NVML, (self._gpu.device,), self._gpu.provenance, "NVML: " + "; ".join(notes))

    def start(self) -> None:
        now = self._clock()
        try:
            self._gpu.start(self._session, now)
        except NvmlError as e:
            raise _meter_error(e) from (e.__cause__ or e)
        self._t0 = self._last_good_t = now
        self._started = True

    def read(self) -> list[DeviceEnergy]:
        if not self._started:
            raise MeterError(f"{self._gpu.label}: read() called before start()")
        if self._lost is not None:
            raise self._lost
        now = self._clock()
        try:
            reading = self._gpu.read(self._session, now)
        except (NvmlError, MeterError) as e:
            self._fault = (
                f"{e}, {now - self._t0:.1f} s after start (last good reading at "
                f"{self._last_good_t - self._t0:.1f} s, {self._gpu.energy_j:.1f} J)"
            )
            error = MeterError(self._fault)
            if isinstance(e, NvmlError) and e.reason is Reason.LOST:
                self._lost = error
            raise error from (e.__cause__ if isinstance(e, NvmlError) else e)
        self._last_good_t = now
        return [reading]

    def max_power(self) -> dict[str, tuple[float, str]]:
        limit = self._gpu.max_power(self._session) if self._lost is None else None
        return {self._gpu.device: limit} if limit is not None else {}

    def close(self) -> None:
        if self._open:
            self._open = False
            self._session.close()


def probe_nvml(nvml: Any = None, visible_devices: str | None = None) -> NvmlMeter | Unavailable:
    """A ready NvmlMeter, or Unavailable with the reason (for discovery and `greenai env`)."""
    try:
        return NvmlMeter(nvml, visible_devices)
    except MeterError as e:
        return Unavailable(MeterName.NVML, str(e))
