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


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A meter that discovery looked for and could not use, and why (for `greenai env`)."""

    name: str
    reason: str
