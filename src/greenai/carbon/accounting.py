"""Turn metered IT energy into facility energy, carbon and electricity cost.

Formulas, applied to each metered interval (sample by sample, so an intensity that changes
during a run is followed):

- facility energy = IT energy x PUE. Power Usage Effectiveness is total facility energy over
  IT equipment energy (The Green Grid, White Paper #49, "PUE: A Comprehensive Examination of
  the Metric", 2012; ISO/IEC 30134-2:2016), so it is >= 1 by definition.
- carbon (gCO2e) = facility energy (kWh) x grid intensity (gCO2e/kWh) at the interval's
  midpoint: the location-based method of the GHG Protocol Scope 2 Guidance (2015).
- cost = facility energy (kWh) x price per kWh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from greenai.carbon.intensity import IntensitySource
from greenai.errors import ConfigError
from greenai.units import carbon_g, cost, joules_to_kwh


@dataclass(frozen=True)
class Charge:
    """Energy, carbon and cost of one or more intervals; ``+`` and ``sum()`` add them up."""

    energy_j: float
    facility_energy_j: float
    carbon_g: float
    cost: float
    currency: str

    @property
    def intensity_g_per_kwh(self) -> float:
        """Energy-weighted mean intensity over the charged intervals (0 if no energy)."""
        kwh = joules_to_kwh(self.facility_energy_j)
        return self.carbon_g / kwh if kwh else 0.0

    def __add__(self, other: Charge) -> Charge:
        if not isinstance(other, Charge):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add a {other.currency} charge to a {self.currency} charge")
        return Charge(
            self.energy_j + other.energy_j,
            self.facility_energy_j + other.facility_energy_j,
            self.carbon_g + other.carbon_g,
            self.cost + other.cost,
            self.currency,
        )

    def __radd__(self, other: object) -> Charge:
        if other == 0:  # the start value of sum()
            return self
        return NotImplemented


@dataclass(frozen=True)
class CarbonAccount:
    """How metered energy is charged: grid intensity, the data centre's PUE, the price."""

    intensity: IntensitySource
    pue: float = 1.0
    price_per_kwh: float = 0.0
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pue) and self.pue >= 1.0):
            raise ConfigError(f"PUE must be a finite number >= 1.0 (facility energy / IT energy), got {self.pue!r}")
        if not (math.isfinite(self.price_per_kwh) and self.price_per_kwh >= 0):
            raise ConfigError(f"electricity price must be a finite number >= 0 per kWh, got {self.price_per_kwh!r}")
        if not self.currency.strip():
            raise ConfigError("currency must not be empty, e.g. 'EUR'")

    def charge(self, energy_j: float, t0: float, t1: float) -> Charge:
        """Charge ``energy_j`` of IT energy drawn between unix times ``t0`` and ``t1`` (s)."""
        if not (math.isfinite(energy_j) and energy_j >= 0):
            raise ValueError(f"energy_j must be a finite number >= 0, got {energy_j!r}")
        if t1 < t0:
            raise ValueError(f"interval ends before it starts: t0={t0!r}, t1={t1!r}")
        facility_j = energy_j * self.pue
        intensity = self.intensity.intensity_at((t0 + t1) / 2)
        return Charge(
            energy_j=energy_j,
            facility_energy_j=facility_j,
            carbon_g=carbon_g(facility_j, intensity),
            cost=cost(facility_j, self.price_per_kwh),
            currency=self.currency,
        )

    def describe(self) -> str:
        """One line: intensity source, PUE and price (omitted when no price is set)."""
        price = f"; {self.price_per_kwh:g} {self.currency}/kWh" if self.price_per_kwh else ""
        return f"{self.intensity.describe()}; PUE {self.pue:g}{price}"
