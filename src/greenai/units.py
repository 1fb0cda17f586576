"""Unit conversions. Joules, watts and seconds inside; kWh, gCO2e and currency at the edges.

Constants are exact: 1 kWh = 1000 W x 3600 s = 3_600_000 J (SI definition of the watt-hour).
"""

from __future__ import annotations

import math
import re

from greenai.errors import DurationError

J_PER_KWH = 3_600_000.0
J_PER_WH = 3_600.0
MICROJOULES_PER_J = 1_000_000.0  # RAPL reports energy in uJ
MILLIJOULES_PER_J = 1_000.0  # NVML reports energy in mJ
NANOJOULES_PER_J = 1_000_000_000.0
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


def format_energy_per_unit(energy_j: float) -> str:
    """An energy per sample, token or step (or any small energy) to 3 significant digits, in
    the largest of J, mJ, µJ, nJ that keeps it at 1 or more once rounded (0.99961 J is
    "1 J", not "1e+03 mJ"); "0 J" for zero."""
    if not math.isfinite(energy_j):
        return f"{energy_j} J"
    rounded = float(f"{energy_j:.3g}")
    if rounded == 0:
        return "0 J"
    for unit, per_j in (("J", 1.0), ("mJ", MILLIJOULES_PER_J), ("µJ", MICROJOULES_PER_J)):
        if abs(rounded) * per_j >= 1:
            return f"{rounded * per_j:.3g} {unit}"
    return f"{rounded * NANOJOULES_PER_J:.3g} nJ"


# -- durations ------------------------------------------------------------------------

S_PER_MINUTE = 60.0
S_PER_HOUR = 3_600.0
S_PER_DAY = 86_400.0
DURATION_UNITS_S = {"s": 1.0, "sec": 1.0, "m": S_PER_MINUTE, "min": S_PER_MINUTE, "h": S_PER_HOUR, "d": S_PER_DAY}
DURATION_FORMS = "seconds (90) or numbers with s, min (or m), h, d: 90s, 3min, 1.5h, 1h30m, 1d"
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(min|sec|[smhd])\s*", re.IGNORECASE)


def format_duration(seconds: float) -> str:
    """Short human duration in its largest whole unit: ``2 d``, ``1.5 h``, ``45 min``, ``30 s``."""
    for unit, size in (("d", S_PER_DAY), ("h", S_PER_HOUR), ("min", S_PER_MINUTE)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def format_duration_rounded(seconds: float) -> str:
    """Rounded human duration, for a wait or a time left: whole seconds below 90 s, whole
    minutes below 90 min, then hours to a tenth: ``45 s``, ``12 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * S_PER_MINUTE:
        return f"{seconds / S_PER_MINUTE:.0f} min"
    return f"{seconds / S_PER_HOUR:.1f} h"


def format_duration_precise(seconds: float | None) -> str:
    """A measured duration as reports and the dashboard show it: hundredths of a second below
    2 min, then whole minutes and seconds below 2 h, then hours and minutes: ``12.34 s``,
    ``5 min 03 s``, ``2 h 05 min``; ``—`` for one not known (None, NaN, inf)."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return "—"
    if round(seconds, 2) < 2 * S_PER_MINUTE:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 2 * 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(round(seconds / S_PER_MINUTE), 60)
    return f"{hours} h {minutes:02d} min"


def parse_duration_s(value: str | float, what: str | None = None) -> float:
    """Seconds of a duration: a number of seconds (``90``, ``"90"``, ``"1.5"``), or numbers
    with units s (sec), m (min), h, d in any case, alone or combined (``"90s"``, ``"3min"``,
    ``"1.5h"``, ``"1h30m"``, ``"2d 4h"``).

    Anything else (empty, negative, inf, nan, a bool, an unknown unit) raises DurationError,
    a ConfigError (and ValueError) that names `what` (e.g. "--delay") and says what is
    accepted. This is the one duration parser: job files, `schedule` options and the rest."""
    seconds = _duration_s(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        label = f"{what} {value!r}" if what else repr(value)
        raise DurationError(f"{label} is not a duration: use {DURATION_FORMS} (finite, >= 0)")
    return seconds + 0.0  # -0.0 -> 0.0


def _duration_s(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return float(text)  # plain seconds ("inf" and "nan" are refused by the caller)
    except ValueError:
        pass
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        seconds += float(match.group(1)) * DURATION_UNITS_S[match.group(2).lower()]
        pos = match.end()
    return seconds if text and pos == len(text) else None
