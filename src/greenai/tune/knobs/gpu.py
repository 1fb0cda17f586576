"""GPU knobs through NVML (nvidia-ml-py, imported as `pynvml`): power limit and locked clocks.

Setting either needs root (or the admin capability NVML checks); without it NVML returns
NVML_ERROR_NO_PERMISSION, which `available()` detects with a harmless probe and reports, so
the tuner skips the knob. NVML is opened and its errors translated in hardware.nvml (the
boundary the energy meter uses too); here its reasons become the knob's errors: no
permission or no support -> KnobUnavailable, an invalid value -> ConfigError.

Default candidates follow Zeus (ml-energy/zeus, `GlobalPowerLimitOptimizer`): power limits
from the maximum down to the minimum in 25 W steps; for clocks, a few of the supported
graphics clocks at the highest memory clock, plus "unlocked" (None: the driver's own
boost), as in Chung et al., "Perseus: Reducing Energy Bloat in Large Model Training",
SOSP 2024, which locks SM clocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from greenai.errors import ConfigError, KnobUnavailable, NvmlError
from greenai.hardware.nvml import NvmlSession, Reason
from greenai.tune.knobs.base import positive_ints
from greenai.units import MILLIWATTS_PER_W, milliwatts_to_watts

POWER_STEP_W = 25.0  # Zeus's default power-limit step
MAX_CLOCK_CANDIDATES = 4  # locked clocks tried by default, besides "unlocked"


class _NvmlGpu:
    """One physical GPU (NVML index), opened lazily through hardware.nvml; its NvmlError
    becomes the knob's error: no permission or no support -> KnobUnavailable, a rejected value
    -> ConfigError."""

    def __init__(self, nvml: Any, index: int, what: str) -> None:
        self._module = nvml
        self._session: NvmlSession | None = None
        self.index = index
        self.what = what
        self._handle: Any = None

    def open(self) -> tuple[NvmlSession, Any]:
        if self._session is not None:
            return self._session, self._handle
        try:
            session = NvmlSession(self._module)
        except NvmlError as e:
            raise KnobUnavailable(f"{self.what}: NVML unavailable: {e}") from e
        try:
            self._handle = session.handle_by_index(self.index)
        except NvmlError as e:
            session.close()
            raise KnobUnavailable(f"{self.what}: no GPU with NVML index {self.index} ({e})") from e
        self._session = session
        return session, self._handle

    def call(self, fn: str, *args: Any) -> Any:
        session, handle = self.open()
        try:
            return session.call(fn, handle, *args, device=f"GPU {self.index}")
        except NvmlError as e:
            if e.reason is Reason.NO_PERMISSION:
                raise KnobUnavailable(
                    f"{self.what}: NVML {fn} needs root privileges on GPU {self.index} "
                    "(run as root, or have an admin set it with nvidia-smi)"
                ) from e
            if e.reason is Reason.UNSUPPORTED:
                raise KnobUnavailable(f"{self.what}: GPU {self.index} does not support {fn}") from e
            if e.reason is Reason.INVALID_ARGUMENT:
                raise ConfigError(f"{self.what}: NVML rejected {args!r} for {fn} ({e})") from e
            raise KnobUnavailable(f"{self.what}: {e}") from e

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session, self._handle = None, None


class GpuPowerLimitKnob:
    """A GPU's power management limit, in watts."""

    def __init__(
        self, values_w: Sequence[float] | None = None, index: int = 0, nvml: Any = None, name: str | None = None
    ) -> None:
        self.name = name or f"gpu{index}_power_limit_w"
        self._gpu = _NvmlGpu(nvml, index, self.name)
        if values_w is not None and (
            not values_w or any(not (isinstance(v, (int, float)) and v > 0) for v in values_w)
        ):
            raise ConfigError(f"{self.name}: candidate limits must be positive watts")
        self._given = tuple(float(v) for v in values_w) if values_w is not None else None
        self._original_mw: int | None = None

    def _range_w(self) -> tuple[float, float]:
        low, high = self._gpu.call("nvmlDeviceGetPowerManagementLimitConstraints")
        return milliwatts_to_watts(low), milliwatts_to_watts(high)

    def available(self) -> str | None:
        try:
            now_mw = self._gpu.call("nvmlDeviceGetPowerManagementLimit")
            self._range_w()
            self._gpu.call("nvmlDeviceSetPowerManagementLimit", now_mw)  # no-op probe
        except KnobUnavailable as e:
            self._gpu.close()
            return str(e)
        return None

    def values(self) -> tuple[float, ...]:
        low, high = self._range_w()
        if self._given is not None:
            try:
                for v in self._given:
                    self._check(v, low, high)
            except ConfigError:
                self._gpu.close()  # the tuner will not use this knob
                raise
            return self._given
        out, w = [], high
        while w >= low:
            out.append(w)
            w -= POWER_STEP_W
        return tuple(out)

    def current(self) -> float:
        return milliwatts_to_watts(self._gpu.call("nvmlDeviceGetPowerManagementLimit"))

    def apply(self, value: float) -> None:
        low, high = self._range_w()
        self._check(value, low, high)
        if self._original_mw is None:
            self._original_mw = self._gpu.call("nvmlDeviceGetPowerManagementLimit")
        self._gpu.call("nvmlDeviceSetPowerManagementLimit", round(value * MILLIWATTS_PER_W))

    def restore(self) -> None:
        if self._original_mw is not None:
            self._gpu.call("nvmlDeviceSetPowerManagementLimit", self._original_mw)
            self._original_mw = None
        self._gpu.close()

    def _check(self, value: float, low: float, high: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.name}: a power limit is a number of watts (got {value!r})")
        if not low <= value <= high:
            raise ConfigError(
                f"{self.name}: {value:g} W is outside GPU {self._gpu.index}'s power-limit range {low:g}..{high:g} W"
            )


class GpuLockedClocksKnob:
    """Locks a GPU's graphics (SM) clock to one frequency in MHz; None means unlocked."""

    def __init__(
        self, values_mhz: Sequence[int | None] | None = None, index: int = 0, nvml: Any = None, name: str | None = None
    ) -> None:
        self.name = name or f"gpu{index}_sm_clock_mhz"
        self._gpu = _NvmlGpu(nvml, index, self.name)
        if values_mhz is not None:
            if not values_mhz:
                raise ConfigError(f"{self.name}: needs at least one candidate value")
            positive_ints(self.name, [v for v in values_mhz if v is not None] or [1])
        self._given = tuple(values_mhz) if values_mhz is not None else None
        self._locked: int | None = None
        self._touched = False

    def _supported(self) -> list[int]:
        memory = max(self._gpu.call("nvmlDeviceGetSupportedMemoryClocks"))
        return sorted(self._gpu.call("nvmlDeviceGetSupportedGraphicsClocks", memory))

    def available(self) -> str | None:
        try:
            if not self._supported():
                return f"{self.name}: GPU {self._gpu.index} lists no supported graphics clocks"
            # the probe: unlocking is what restore() would do anyway
            self._gpu.call("nvmlDeviceResetGpuLockedClocks")
        except KnobUnavailable as e:
            self._gpu.close()
            return str(e)
        return None

    def values(self) -> tuple[int | None, ...]:
        supported = self._supported()
        if self._given is not None:
            try:
                for v in self._given:
                    self._check(v, supported)
            except ConfigError:
                self._gpu.close()  # the tuner will not use this knob
                raise
            return self._given
        n = min(MAX_CLOCK_CANDIDATES, len(supported))
        picks = {supported[round(k * (len(supported) - 1) / max(n - 1, 1))] for k in range(n)}
        return (None, *sorted(picks, reverse=True))

    def current(self) -> int | None:
        return self._locked

    def apply(self, value: int | None) -> None:
        self._check(value, self._supported())
        self._touched = True
        if value is None:
            self._gpu.call("nvmlDeviceResetGpuLockedClocks")
        else:
            self._gpu.call("nvmlDeviceSetGpuLockedClocks", value, value)
        self._locked = value

    def restore(self) -> None:
        if self._touched:
            self._gpu.call("nvmlDeviceResetGpuLockedClocks")
            self._locked, self._touched = None, False
        self._gpu.close()

    def _check(self, value: int | None, supported: list[int]) -> None:
        if value is not None and value not in supported:
            raise ConfigError(
                f"{self.name}: {value!r} MHz is not a supported graphics clock of "
                f"GPU {self._gpu.index} ({min(supported)}..{max(supported)} MHz)"
            )
