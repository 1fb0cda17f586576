"""The seed metrics a report prints, each with its formula and the inputs it was computed from.

- E = P x t, per device: the device's energy is its mean power times the run's duration (the
  meters measure E; the mean power is E / t).
- RUR, resource utilization ratio = P_used / P_total: a device's mean power over its maximum
  (TDP, the power limit, or the CPU model's maximum, as its meter knows it).
- EER, energy efficiency ratio = P_out / P_in: here the power reaching the IT equipment over
  the power the facility draws, = E_IT / E_facility = 1 / PUE.
- PUE, power usage effectiveness = E_facility / E_IT (The Green Grid, White Paper #49, 2012;
  ISO/IEC 30134-2:2016).
- ERF, energy reuse factor = E_reused / E_facility, and ERE, energy reuse effectiveness =
  (E_facility - E_reused) / E_IT = (1 - ERF) x PUE (The Green Grid, White Paper #29, "ERE: A
  Metric for Measuring the Benefit of Reuse Energy from a Data Center", 2010; ISO/IEC
  30134-6:2021), from the configured `heat_reuse_fraction` (the share of facility energy
  reused); only where it is configured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # e.g. "RUR cpu:0"
    formula: str
    inputs: str  # the figures put into the formula, with units and sources
    value: str  # the result, formatted; "—" when it cannot be computed
    note: str = ""


def _fmt(value: float, unit: str = "", digits: int = 4) -> str:
    if not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}g}"
    return f"{text} {unit}".rstrip()


def seed_metrics(
    *,
    devices: Sequence[tuple[str, float, float, float | None, str]],  # device, E, mean P, max P, max source
    duration_s: float,
    energy_j: float,
    facility_energy_j: float,
    pue: float,
    heat_reuse_fraction: float | None,
) -> tuple[Metric, ...]:
    out: list[Metric] = []
    for device, e, p, _, _ in devices:
        out.append(
            Metric(
                f"E {device}",
                "E = P × t",
                f"P = {_fmt(p, 'W')} (mean power), t = {_fmt(duration_s, 's')}",
                _fmt(e, "J"),
            )
        )
    for device, _, p, peak, source in devices:
        if peak is None or not peak > 0:
            out.append(Metric(f"RUR {device}", "RUR = P_used / P_total", f"P_used = {_fmt(p, 'W')}", "—", source))
            continue
        out.append(
            Metric(
                f"RUR {device}",
                "RUR = P_used / P_total",
                f"P_used = {_fmt(p, 'W')} (mean power), P_total = {_fmt(peak, 'W')} ({source})",
                _fmt(p / peak, "", 3),
            )
        )
    ok = energy_j > 0 and facility_energy_j > 0
    out.append(
        Metric(
            "EER",
            "EER = P_out / P_in = E_IT / E_facility = 1 / PUE",
            f"E_IT = {_fmt(energy_j, 'J')}, E_facility = {_fmt(facility_energy_j, 'J')}",
            _fmt(energy_j / facility_energy_j, "", 3) if ok else _fmt(1 / pue if pue > 0 else math.nan, "", 3),
            "power out is the power that reaches the IT equipment; the rest is cooling and power distribution",
        )
    )
    out.append(
        Metric(
            "PUE",
            "PUE = E_facility / E_IT",
            f"configured PUE {_fmt(pue, '', 3)}" + (" (1 = no data-centre overhead configured)" if pue == 1 else ""),
            _fmt(pue, "", 3),
            "The Green Grid WP#49; set `pue` in the config",
        )
    )
    if heat_reuse_fraction is None:
        out.append(
            Metric(
                "ERF / ERE",
                "ERF = E_reused / E_facility; ERE = (E_facility − E_reused) / E_IT",
                "heat reuse not configured",
                "—",
                "set `heat_reuse_fraction` (0..1, the share of facility energy reused as heat) to report them",
            )
        )
    else:
        reused = heat_reuse_fraction * facility_energy_j
        ere = (facility_energy_j - reused) / energy_j if energy_j > 0 else (1 - heat_reuse_fraction) * pue
        out.append(
            Metric(
                "ERF",
                "ERF = E_reused / E_facility",
                f"E_reused = {_fmt(reused, 'J')} ({heat_reuse_fraction:g} of facility energy, configured), "
                f"E_facility = {_fmt(facility_energy_j, 'J')}",
                _fmt(heat_reuse_fraction, "", 3),
                "The Green Grid WP#29; ISO/IEC 30134-6",
            )
        )
        out.append(
            Metric(
                "ERE",
                "ERE = (E_facility − E_reused) / E_IT = (1 − ERF) × PUE",
                f"E_facility = {_fmt(facility_energy_j, 'J')}, E_reused = {_fmt(reused, 'J')}, "
                f"E_IT = {_fmt(energy_j, 'J')}",
                _fmt(ere, "", 3),
                "below PUE when heat is reused; below 1 when more is reused than the overhead",
            )
        )
    return tuple(out)
