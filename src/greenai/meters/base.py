"""The meter protocol and the readings every meter returns.

A meter reports, for each device it covers, the energy in joules used since its `start()`.
Counter meters (RAPL, NVML total energy) difference a hardware counter; power meters
integrate sampled power; model meters estimate from utilization. Each reading says which,
and carries a relative uncertainty: the half-width of a ~95% band as a fraction of the value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class Provenance(str, enum.Enum):
    """How an energy figure was obtained (DESIGN.md principle 1)."""

    MEASURED = "measured"  # a hardware energy counter
    INTEGRATED = "integrated"  # hardware power samples integrated over time
    ESTIMATED = "estimated"  # a model (TDP, utilization, bytes x J/byte)
    SIMULATED = "simulated"  # a deterministic synthetic trace (tests, --simulate)

    @property
    def rank(self) -> int:
        """Lower is stronger evidence; a total is only as strong as its weakest part."""
        return _RANK[self]


_RANK = {
    Provenance.MEASURED: 0,
    Provenance.INTEGRATED: 1,
    Provenance.ESTIMATED: 2,
    Provenance.SIMULATED: 3,
}


class DeviceKind(str, enum.Enum):
    CPU = "cpu"
    DRAM = "dram"
    GPU = "gpu"
    DISK = "disk"
    NETWORK = "network"


@dataclass(frozen=True, slots=True)
class DeviceEnergy:
    """Cumulative energy of one device since the meter started."""

    device: str  # stable id, e.g. "cpu:0", "dram:0", "gpu:1", "disk", "network"
    kind: DeviceKind
    energy_j: float
    provenance: Provenance
    rel_uncertainty: float  # half-width of a ~95% band, as a fraction of energy_j


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """What a meter is, for `greenai env` and the ledger's environment record."""

    name: str  # e.g. "rapl", "nvml", "cpu_model"
    devices: tuple[str, ...]
    provenance: Provenance
    detail: str  # one line: source, model, coefficients


@runtime_checkable
class Meter(Protocol):
    """One source of energy readings. Implementations must be cheap to `read()` (the
    sampler calls it at 10 Hz by default) and must not be shared between threads."""

    def info(self) -> MeterInfo: ...

    def start(self) -> None:
        """Set the baseline: later readings are energy since now."""

    def read(self) -> list[DeviceEnergy]:
        """Cumulative energy per device since `start()`. Raises MeterError on failure."""

    def close(self) -> None: ...


MaxPower = dict[str, tuple[float, str]]  # device -> (watts, where that figure comes from)


def max_power_of(meter: Meter) -> MaxPower:
    """Each device's maximum power as its meter knows it (TDP, power limit, the CPU model's
    max), for utilization ratios; meters may implement `max_power()`, most estimates do not."""
    known = getattr(meter, "max_power", None)
    return dict(known()) if callable(known) else {}


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A meter that discovery looked for and could not use, and why (for `greenai env`)."""

    name: str
    reason: str


# A reading beyond these is not a measurement: 1e15 J is 278 GWh (a 1 MW device for 30
# years); no single device draws 1 MW (a whole 8-GPU node draws ~10 kW).
MAX_ENERGY_J = 1e15
MAX_DEVICE_POWER_W = 1e6
MAX_REL_UNCERTAINTY = 100.0


def reading_problem(reading: object) -> str | None:
    """Why `reading` is not a usable DeviceEnergy (wrong type, a field of the wrong type,
    NaN, inf, negative or absurd energy), or None if it is one."""
    if not isinstance(reading, DeviceEnergy):
        return f"a {type(reading).__name__} instead of a DeviceEnergy"
    if not isinstance(reading.device, str) or not reading.device:
        return f"device id {reading.device!r}"
    if not isinstance(reading.kind, DeviceKind):
        return f"{reading.device}: kind {reading.kind!r}"
    if not isinstance(reading.provenance, Provenance):
        return f"{reading.device}: provenance {reading.provenance!r}"
    for field, value, upper in (
        ("energy_j", reading.energy_j, MAX_ENERGY_J),
        ("rel_uncertainty", reading.rel_uncertainty, MAX_REL_UNCERTAINTY),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{reading.device}: {field} {value!r} is a {type(value).__name__}, not a number"
        if not (0.0 <= value <= upper):  # also false for NaN
            return f"{reading.device}: {field} {value!r} out of range [0, {upper:g}]"
    return None
