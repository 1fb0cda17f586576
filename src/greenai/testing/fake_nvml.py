"""A fake NVML module: the functions of nvidia-ml-py (`pynvml`) that greenai calls, with
the same names, parameters, units (mJ, mW) and error codes, over scripted GPUs.

Use it where the real module would go, at pynvml's own boundary (greenai.hardware.nvml imports
and calls pynvml; nothing of greenai is faked): `NvmlMeter(nvml=fake, clock=fake.clock)`,
`GpuPowerLimitKnob(nvml=fake)`, `NvmlSession(fake)`. Time is the fake's own:
`advance(seconds)` runs every GPU at its current power, feeding its energy counter, so
counter and power readings agree exactly; `lose(index)` makes a GPU fall off the bus.

Power limits (mW, within `nvmlDeviceGetPowerManagementLimitConstraints`) and locked graphics
clocks (MHz, from the supported list) can be read and set; on a GPU with `privileged=False`
every setter raises `NVMLError_NoPermission`, as NVML does for a user without root.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import ClassVar

# Values as in pynvml.py (nvidia-ml-py 13), so code written against either module agrees.
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
}


class NVMLError(Exception):
    """Like pynvml.NVMLError: `.value` is the NVML return code, and `NVMLError(code)`
    builds the code's subclass (e.g. `NVMLError_NoPermission`), as pynvml's `__new__` does."""

    _subclasses: ClassVar[dict[int, type[NVMLError]]] = {}

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._subclasses.get(value, cls)
        return super().__new__(cls, value)

    def __init__(self, value: int):
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_NoPermission(NVMLError):  # pynvml's class name
    """Raised by setters on a GPU the caller may not configure (pynvml's class name)."""

    def __new__(cls, value: int = NVML_ERROR_NO_PERMISSION) -> NVMLError_NoPermission:
        error = super().__new__(cls, value)
        assert isinstance(error, NVMLError_NoPermission)  # cls is a subclass: no code lookup
        return error

    def __init__(self, value: int = NVML_ERROR_NO_PERMISSION):
        super().__init__(value)


NVMLError._subclasses[NVML_ERROR_NO_PERMISSION] = NVMLError_NoPermission


_gpu_numbers = itertools.count()


def _next_uuid() -> str:
    """A UUID of its own for each fake GPU, as real GPUs have (greenai counts a GPU once by it)."""
    return f"GPU-00000000-0000-0000-0000-{next(_gpu_numbers):012d}"


@dataclass
class FakeGpu:
    """One scripted GPU. `mig_uuids` non-empty means MIG mode is on, with those instances."""

    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = field(default_factory=_next_uuid)
    power_w: float = 100.0
    energy_counter: bool = True  # nvmlDeviceGetTotalEnergyConsumption supported (Volta+)
    energy_mj: int = 0  # counter value: mJ since driver load
    mig_uuids: tuple[str, ...] = ()
    lost: bool = False
    # power management (mW) and clocks (MHz); `privileged=False`: setters raise NoPermission
    power_limit_mw: int = 400_000
    power_limit_constraints_mw: tuple[int, int] = (100_000, 400_000)
    default_power_limit_mw: int = 400_000
    memory_clocks_mhz: tuple[int, ...] = (1215,)
    graphics_clocks_mhz: tuple[int, ...] = (1410, 1305, 1200, 1095, 990, 885, 780, 675, 570)
    locked_clocks_mhz: tuple[int, int] | None = None  # (min, max) while locked
    privileged: bool = True


@dataclass(frozen=True)
class _Handle:
    gpu: FakeGpu
    index: int  # physical (NVML) index
    mig_uuid: str | None = None


@dataclass
class FakeNvml:
    """The fake module. Set `library_missing` to make nvmlInit fail as without a driver."""

    gpus: list[FakeGpu] = field(default_factory=list)
    library_missing: bool = False
    now_s: float = 0.0
    init_count: int = 0
    NVMLError: ClassVar[type[NVMLError]] = NVMLError
    NVMLError_NoPermission: ClassVar[type[NVMLError_NoPermission]] = NVMLError_NoPermission

    # --- driving the fake --------------------------------------------------------------
    def clock(self) -> float:
        return self.now_s

    def advance(self, duration_s: float) -> None:
        """Let `duration_s` pass with every GPU at its current `power_w`."""
        self.now_s += duration_s
        for gpu in self.gpus:
            gpu.energy_mj += round(gpu.power_w * duration_s * 1000)

    def lose(self, index: int) -> None:
        """The GPU falls off the bus: every later call on it raises GPU_IS_LOST."""
        self.gpus[index].lost = True

    # --- the NVML API ------------------------------------------------------------------
    def nvmlInit(self) -> None:
        if self.library_missing:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._check_init()
        self.init_count -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._check_init()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(self.gpus[index], index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._check_init()
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for index, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return _Handle(gpu, index)
            if uuid in gpu.mig_uuids:
                return _Handle(gpu, index, mig_uuid=uuid)
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        return handle.mig_uuid or self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        self._gpu(handle)
        return handle.index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._gpu(handle)
        if not gpu.energy_counter or handle.mig_uuid:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu = self._gpu(handle)
        if handle.mig_uuid:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return round(gpu.power_w * 1000)

    def nvmlDeviceGetMigMode(self, device: _Handle) -> list[int]:
        gpu = self._gpu(device)
        if not gpu.mig_uuids:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)  # as on GPUs without MIG
        return [NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE]

    def nvmlDeviceIsMigDeviceHandle(self, device: _Handle) -> int:
        self._gpu(device)
        return int(device.mig_uuid is not None)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice: _Handle) -> _Handle:
        self._gpu(migDevice)
        if migDevice.mig_uuid is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(migDevice.gpu, migDevice.index)

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        return self._gpu(handle, whole=True).power_limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: _Handle) -> list[int]:
        return list(self._gpu(handle, whole=True).power_limit_constraints_mw)

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: _Handle) -> int:
        return self._gpu(handle, whole=True).default_power_limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, handle: _Handle, limit: int) -> None:
        gpu = self._settable(handle)
        low, high = gpu.power_limit_constraints_mw
        if not low <= limit <= high:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        gpu.power_limit_mw = int(limit)

    def nvmlDeviceGetSupportedMemoryClocks(self, handle: _Handle) -> list[int]:
        return list(self._gpu(handle, whole=True).memory_clocks_mhz)

    def nvmlDeviceGetSupportedGraphicsClocks(self, handle: _Handle, memoryClockMHz: int) -> list[int]:
        gpu = self._gpu(handle, whole=True)
        if memoryClockMHz not in gpu.memory_clocks_mhz:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return list(gpu.graphics_clocks_mhz)

    def nvmlDeviceSetGpuLockedClocks(self, handle: _Handle, minGpuClockMHz: int, maxGpuClockMHz: int) -> None:
        gpu = self._settable(handle)
        if minGpuClockMHz > maxGpuClockMHz:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        gpu.locked_clocks_mhz = (int(minGpuClockMHz), int(maxGpuClockMHz))

    def nvmlDeviceResetGpuLockedClocks(self, handle: _Handle) -> None:
        self._settable(handle).locked_clocks_mhz = None

    def _settable(self, handle: _Handle) -> FakeGpu:
        gpu = self._gpu(handle, whole=True)
        if not gpu.privileged:
            raise NVMLError_NoPermission()
        return gpu

    def _check_init(self) -> None:
        if self.init_count <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: _Handle, whole: bool = False) -> FakeGpu:
        """The GPU behind a handle; `whole`: a call MIG instances do not support."""
        self._check_init()
        if handle.gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if whole and handle.mig_uuid:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return handle.gpu


for _name, _value in list(globals().items()):  # the module's NVML_* constants, as pynvml has
    if _name.startswith("NVML_"):
        setattr(FakeNvml, _name, _value)
del _name, _value
