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
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from greenai.errors import MeterError
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance, Unavailable
from greenai.units import energy_j, millijoules_to_joules, milliwatts_to_watts

MIG_NOTE = "MIG instance: energy is the whole parent GPU"
_REL_UNCERTAINTY = {Provenance.MEASURED: 0.05, Provenance.INTEGRATED: 0.10}


def trapezoid_j(start_power_w: float, end_power_w: float, duration_s: float) -> float:
    """Energy between two power samples by the trapezoid rule."""
    return energy_j((start_power_w + end_power_w) / 2, duration_s)


@dataclass(slots=True)
class _Gpu:
    """One physical GPU and its running total since `start()`."""

    device: str  # "gpu:K", K as the user's CUDA code numbers it
    label: str  # for messages: device, physical index, name, uuid
    handle: Any  # the physical GPU's NVML handle
    provenance: Provenance  # MEASURED: energy counter; INTEGRATED: power samples
    base_mj: int = 0
    last_power_w: float = 0.0
    last_t: float = 0.0
    energy_j: float = 0.0


class NvmlMeter:
    """Energy of the visible NVIDIA GPUs. `nvml` is the pynvml module (or a fake with the
    same functions); `visible_devices` defaults to $CUDA_VISIBLE_DEVICES."""

    def __init__(
        self,
        nvml: Any = None,
        visible_devices: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._nvml = nvml if nvml is not None else _import_pynvml()
        self._clock = clock
        self._unsupported = frozenset({self._nvml.NVML_ERROR_NOT_SUPPORTED, self._nvml.NVML_ERROR_FUNCTION_NOT_FOUND})
        if visible_devices is None:
            visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        self._init()
        self._started = False
        self._detail: list[str] = []
        try:
            self._gpus = self._resolve(visible_devices)
            if not self._gpus:
                shown = (
                    "NVML reports none" if visible_devices is None else (f"CUDA_VISIBLE_DEVICES={visible_devices!r}")
                )
                raise MeterError(f"no NVIDIA GPU visible ({shown})")
        except MeterError:
            self.close()
            raise

    def info(self) -> MeterInfo:
        return MeterInfo(
            name="nvml",
            devices=tuple(gpu.device for gpu in self._gpus),
            provenance=max((gpu.provenance for gpu in self._gpus), key=lambda p: p.rank),
            detail="NVML: " + "; ".join(self._detail),
        )

    def start(self) -> None:
        now = self._clock()
        for gpu in self._gpus:
            if gpu.provenance is Provenance.MEASURED:
                gpu.base_mj = self._call("nvmlDeviceGetTotalEnergyConsumption", gpu.handle, device=gpu.label)
            else:
                gpu.last_power_w = self._power_w(gpu)
                gpu.last_t = now
            gpu.energy_j = 0.0
        self._started = True

    def read(self) -> list[DeviceEnergy]:
        if not self._started:
            raise MeterError("NvmlMeter.read() called before start()")
        now = self._clock()
        for gpu in self._gpus:
            if gpu.provenance is Provenance.MEASURED:
                mj = self._call("nvmlDeviceGetTotalEnergyConsumption", gpu.handle, device=gpu.label)
                if mj < gpu.base_mj:
                    raise MeterError(f"{gpu.label}: energy counter went backwards (driver reloaded?)")
                gpu.energy_j = millijoules_to_joules(mj - gpu.base_mj)
            else:
                power_w = self._power_w(gpu)
                gpu.energy_j += trapezoid_j(gpu.last_power_w, power_w, now - gpu.last_t)
                gpu.last_power_w, gpu.last_t = power_w, now
        return [
            DeviceEnergy(gpu.device, DeviceKind.GPU, gpu.energy_j, gpu.provenance, _REL_UNCERTAINTY[gpu.provenance])
            for gpu in self._gpus
        ]

    def max_power(self) -> dict[str, tuple[float, str]]:
        """Each GPU's power management limit (where NVML reports one)."""
        out: dict[str, tuple[float, str]] = {}
        for gpu in self._gpus:
            try:
                mw = self._call("nvmlDeviceGetPowerManagementLimit", gpu.handle, absent=self._unsupported)
            except MeterError:
                continue
            if mw:
                out[gpu.device] = (milliwatts_to_watts(mw), "NVML power management limit")
        return out

    def close(self) -> None:
        if self._initialized:
            self._initialized = False
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()

    def _init(self) -> None:
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as e:
            reasons = {
                self._nvml.NVML_ERROR_LIBRARY_NOT_FOUND: "NVML library not found: no NVIDIA driver",
                self._nvml.NVML_ERROR_DRIVER_NOT_LOADED: "NVIDIA driver not loaded",
            }
            raise MeterError(reasons.get(e.value, f"NVML init failed: {e}")) from e
        self._initialized = True

    def _resolve(self, visible_devices: str | None) -> list[_Gpu]:
        """One _Gpu per physical GPU behind the visible entries, in CUDA's order."""
        gpus: list[_Gpu] = []
        counted: dict[int, str] = {}  # physical index -> device it is reported under
        for position, (entry, handle) in enumerate(self._visible(visible_devices)):
            device = f"gpu:{position}"
            is_mig = entry.startswith("MIG-") or bool(
                self._call("nvmlDeviceIsMigDeviceHandle", handle, absent=self._unsupported)
            )
            parent = (
                handle
                if not is_mig
                else self._call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle, device=device)
            )
            index = self._call("nvmlDeviceGetIndex", parent, device=device)
            if index in counted:
                self._detail.append(
                    f"{device}={entry} is on physical GPU {index}, already counted under {counted[index]}"
                )
                continue
            counted[index] = device
            name = self._call("nvmlDeviceGetName", parent, device=device)
            uuid = self._call("nvmlDeviceGetUUID", parent, device=device)
            label = f"{device} (physical {index}, {name}, {uuid})"
            gpu = _Gpu(device, label, parent, self._provenance(parent, label))
            gpus.append(gpu)
            how = "energy counter" if gpu.provenance is Provenance.MEASURED else "power integrated"
            note = f"{label}: {how}"
            mig_mode = self._call("nvmlDeviceGetMigMode", parent, device=device, absent=self._unsupported)
            if is_mig:
                note += f"; {entry}: {MIG_NOTE}"
            elif mig_mode and mig_mode[0] == self._nvml.NVML_DEVICE_MIG_ENABLE:
                note += "; MIG mode on: energy is the whole GPU, shared by all its MIG instances"
            self._detail.append(note)
        return gpus

    def _visible(self, spec: str | None) -> list[tuple[str, Any]]:
        """(entry, handle) for each GPU the user's CUDA code sees, in its order."""
        count = self._call("nvmlDeviceGetCount")
        if spec is None:
            return [(str(i), self._call("nvmlDeviceGetHandleByIndex", i)) for i in range(count)]
        found = []
        for entry in (e.strip() for e in spec.split(",")) if spec.strip() else ():
            handle = self._lookup(entry, count)
            if handle is None:
                self._detail.append(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no GPU: CUDA hides it and every later entry"
                )
                break
            found.append((entry, handle))
        return found

    def _lookup(self, entry: str, count: int) -> Any:
        """The handle for one CUDA_VISIBLE_DEVICES entry, or None if CUDA would reject it."""
        if entry.isascii() and entry.isdigit():
            index = int(entry)
            return self._call("nvmlDeviceGetHandleByIndex", index) if index < count else None
        if entry.startswith(("GPU-", "MIG-")):
            not_found = {self._nvml.NVML_ERROR_NOT_FOUND, self._nvml.NVML_ERROR_INVALID_ARGUMENT}
            return self._call("nvmlDeviceGetHandleByUUID", entry, absent=frozenset(not_found))
        return None

    def _provenance(self, handle: Any, label: str) -> Provenance:
        """MEASURED if the GPU has an energy counter, else INTEGRATED if it reports power."""
        fn = "nvmlDeviceGetTotalEnergyConsumption"
        if self._call(fn, handle, device=label, absent=self._unsupported) is not None:
            return Provenance.MEASURED
        if self._call("nvmlDeviceGetPowerUsage", handle, device=label, absent=self._unsupported) is not None:
            return Provenance.INTEGRATED
        raise MeterError(f"{label}: NVML reports neither energy nor power for this GPU")

    def _power_w(self, gpu: _Gpu) -> float:
        return milliwatts_to_watts(self._call("nvmlDeviceGetPowerUsage", gpu.handle, device=gpu.label))

    def _call(self, fn: str, *args: Any, device: str = "", absent: frozenset[int] = frozenset()) -> Any:
        """Call NVML: the one place NVMLError becomes MeterError (or None, for codes in
        `absent` that mean "this GPU lacks the feature")."""
        try:
            return getattr(self._nvml, fn)(*args)
        except self._nvml.NVMLError as e:
            if e.value in absent:
                return None
            where = f"{device}: " if device else ""
            raise MeterError(f"{where}NVML {fn} failed: {e}") from e


def probe_nvml(nvml: Any = None, visible_devices: str | None = None) -> NvmlMeter | Unavailable:
    """A ready NvmlMeter, or Unavailable with the reason (for discovery and `greenai env`)."""
    try:
        return NvmlMeter(nvml, visible_devices)
    except MeterError as e:
        return Unavailable("nvml", str(e))


def _import_pynvml() -> Any:
    try:
        import pynvml
    except ImportError as e:
        raise MeterError("nvidia-ml-py is not installed: pip install nvidia-ml-py") from e
    return pynvml
