"""The one NVML boundary: nvidia-ml-py (imported as `pynvml`) is imported, initialised, shut
down and called here, and only here.

`NvmlSession` pairs `nvmlInit` with one `nvmlShutdown` (NVML counts them; a session shared by
several users, `share()`, shuts down when the last one closes), looks up device handles by
index and UUID, and makes every call through `call`, where pynvml's NVMLError becomes
greenai.errors.NvmlError, once. The error carries a `Reason` its callers branch on: the
energy meter (meters.nvml) turns any reason into MeterError and treats codes that mean "this
GPU lacks the feature" as absent; the GPU knobs (tune.knobs.gpu) turn missing privileges or
support into KnobUnavailable and a rejected value into ConfigError.

`module` may be anything with pynvml's functions, `NVML_*` constants and `NVMLError`
(greenai.testing.fake_nvml fakes NVML at exactly that boundary).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Collection
from typing import Any

from greenai.errors import NvmlError


class Reason(enum.StrEnum):
    """Why an NVML call failed (NvmlError.reason)."""

    NOT_INSTALLED = "not installed"  # nvidia-ml-py is missing
    NO_DRIVER = "no driver"  # the NVML library is not found or the driver is not loaded
    UNSUPPORTED = "unsupported"  # this GPU or driver lacks the function
    NO_PERMISSION = "no permission"  # setters need root (or the admin capability)
    INVALID_ARGUMENT = "invalid argument"  # a value NVML rejects, or no such device index
    NOT_FOUND = "not found"  # no device with that UUID, or no such value
    LOST = "lost"  # the GPU fell off the bus: every later call on it fails
    FAILED = "failed"  # anything else


_REASONS = {
    "NVML_ERROR_NOT_SUPPORTED": Reason.UNSUPPORTED,
    "NVML_ERROR_FUNCTION_NOT_FOUND": Reason.UNSUPPORTED,
    "NVML_ERROR_NO_PERMISSION": Reason.NO_PERMISSION,
    "NVML_ERROR_INVALID_ARGUMENT": Reason.INVALID_ARGUMENT,
    "NVML_ERROR_NOT_FOUND": Reason.NOT_FOUND,
    "NVML_ERROR_GPU_IS_LOST": Reason.LOST,
    "NVML_ERROR_LIBRARY_NOT_FOUND": Reason.NO_DRIVER,
    "NVML_ERROR_DRIVER_NOT_LOADED": Reason.NO_DRIVER,
}
_INIT_MESSAGES = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": "NVML library not found: no NVIDIA driver",
    "NVML_ERROR_DRIVER_NOT_LOADED": "NVIDIA driver not loaded",
}


def reason_codes(module: Any) -> dict[int, Reason]:
    """The module's NVML return codes that have a Reason (the others are FAILED)."""
    return {code: reason for name, reason in _REASONS.items() if (code := getattr(module, name, None)) is not None}


def import_pynvml() -> Any:
    """The pynvml module, or NvmlError(NOT_INSTALLED)."""
    try:
        import pynvml
    except ImportError as e:
        raise NvmlError("nvidia-ml-py is not installed: pip install nvidia-ml-py", Reason.NOT_INSTALLED) from e
    return pynvml


class NvmlSession:
    """NVML, initialised. `module` is pynvml (the default) or a fake of it; raises NvmlError
    (NOT_INSTALLED, NO_DRIVER or FAILED) when NVML cannot be used here."""

    def __init__(self, module: Any = None) -> None:
        self.module = module if module is not None else import_pynvml()
        self._error: type[BaseException] = self.module.NVMLError
        self._reasons = reason_codes(self.module)
        try:
            self.module.nvmlInit()
        except self._error as e:
            messages = {getattr(self.module, name, None): text for name, text in _INIT_MESSAGES.items()}
            code = getattr(e, "value", None)
            raise NvmlError(messages.get(code, f"NVML init failed: {e}"), self.reason(e)) from e
        self._users = 1

    @property
    def closed(self) -> bool:
        return self._users == 0

    def share(self) -> NvmlSession:
        """One more user of this session: each calls `close()` once; the last one shuts NVML down."""
        if self.closed:
            raise NvmlError("NVML session already shut down", Reason.FAILED)
        self._users += 1
        return self

    def close(self) -> None:
        if self._users == 0:
            return
        self._users -= 1
        if self._users == 0:
            with contextlib.suppress(self._error):
                self.module.nvmlShutdown()

    def reason(self, error: BaseException) -> Reason:
        """The Reason of one of the module's NVMLErrors (its `.value` is the return code)."""
        code = getattr(error, "value", None)
        return self._reasons.get(code, Reason.FAILED) if isinstance(code, int) else Reason.FAILED

    def call(self, fn: str, *args: Any, device: str = "", absent: Collection[Reason] = ()) -> Any:
        """`pynvml.<fn>(*args)`. An NVMLError becomes NvmlError("<device>: NVML <fn> failed: ...")
        whose cause is the vendor's error, or None when its reason is in `absent` (e.g.
        UNSUPPORTED for "this GPU lacks the feature")."""
        try:
            return getattr(self.module, fn)(*args)
        except self._error as e:
            reason = self.reason(e)
            if reason in absent:
                return None
            where = f"{device}: " if device else ""
            raise NvmlError(f"{where}NVML {fn} failed: {e}", reason) from e

    def device_count(self) -> int:
        return int(self.call("nvmlDeviceGetCount"))

    def handle_by_index(self, index: int, device: str = "") -> Any:
        """The handle of the GPU with this NVML (PCI bus order) index; NvmlError if none."""
        return self.call("nvmlDeviceGetHandleByIndex", index, device=device)

    def handle_by_uuid(self, uuid: str) -> Any | None:
        """The handle of a `GPU-...` or `MIG-...` UUID, or None if no device has it."""
        return self.call("nvmlDeviceGetHandleByUUID", uuid, absent=(Reason.NOT_FOUND, Reason.INVALID_ARGUMENT))
