"""Unit conversions. Joules, watts and seconds inside; kWh, gCO2e and currency at the edges.

Constants are exact: 1 kWh = 1000 W x 3600 s = 3_600_000 J (SI definition of the watt-hour).
"""

from __future__ import annotations

J_PER_KWH = 3_600_000.0
J_PER_WH = 3_600.0
MICROJOULES_PER_J = 1_000_000.0  # RAPL reports energy in uJ
MILLIJOULES_PER_J = 1_000.0  # NVML reports energy in mJ
MICROWATTS_PER_W = 1_000_000.0  # RAPL power limits are in uW
MILLIWATTS_PER_W = 1_000.0  # NVML reports power and power limits in mW
BYTES_PER_GB = 1_000_000_000.0  # decimal gigabyte, as energy-per-GB coefficients are quoted


def joules_to_kwh(energy_j: float) -> float:
    return energy_j / J_PER_KWH


def kwh_to_joules(energy_kwh: float) -> float:
    return energy_kwh * J_PER_KWH


def joules_to_wh(energy_j: float) -> float:
    return energy_j / J_PER_WH


def microjoules_to_joules(energy_uj: float) -> float:
    return energy_uj / MICROJOULES_PER_J


def millijoules_to_joules(energy_mj: float) -> float:
    return energy_mj / MILLIJOULES_PER_J


def milliwatts_to_watts(power_mw: float) -> float:
    return power_mw / MILLIWATTS_PER_W


def microwatts_to_watts(power_uw: float) -> float:
    return power_uw / MICROWATTS_PER_W


def energy_j(power_w: float, duration_s: float) -> float:
    """E = P x t: energy in joules of a constant power over a duration."""
    return power_w * duration_s


def carbon_g(energy_j: float, intensity_g_per_kwh: float) -> float:
    """Carbon in gCO2e of an energy drawn from a grid of the given intensity."""
    return joules_to_kwh(energy_j) * intensity_g_per_kwh


def cost(energy_j: float, price_per_kwh: float) -> float:
    """Electricity cost of an energy at a price per kWh (currency of the price)."""
    return joules_to_kwh(energy_j) * price_per_kwh


def format_energy(energy_j: float) -> str:
    """Human-readable energy: J below 10 kJ, then Wh, then kWh."""
    if abs(energy_j) < 10_000:
        return f"{energy_j:,.1f} J"
    if abs(energy_j) < J_PER_KWH:
        return f"{joules_to_wh(energy_j):,.2f} Wh"
    return f"{joules_to_kwh(energy_j):,.3f} kWh"
