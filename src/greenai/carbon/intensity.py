"""Grid carbon intensity sources: a constant, a country's yearly average, a cloud region.

Intensity is in gCO2e per kWh of electricity drawn. Shipped tables (``greenai.data``):

- ``country_intensity.csv``: yearly average intensity of each country's electricity
  generation, from Our World in Data / Ember (CC BY 4.0), as compiled in CodeCarbon.
- ``cloud_regions.csv``: intensity of cloud regions as published by the providers,
  as compiled in CodeCarbon, with one correction: ``gcp,me-central1`` (Doha) was spelled
  ``me-cenrtal1`` there, so ``gcp:me-central1`` was rejected.

``tests/carbon/test_shipped_data.py`` checks every shipped table: unique keys, real ISO codes,
region names as their provider spells them, values in range, regular traces.

Tables are read on first use and cached. Time-varying intensity lives in ``trace.py``.
"""

from __future__ import annotations

import csv
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Protocol

from greenai.carbon.iso_codes import ALPHA2_TO_ALPHA3, to_alpha3
from greenai.errors import CarbonDataError

# The largest intensity accepted from a user (a constant, a trace row): no grid comes near
# (the dirtiest yearly averages are about 1,100 gCO2e/kWh); a larger value is a mistake.
MAX_INTENSITY_G_PER_KWH = 10_000.0


class IntensitySource(Protocol):
    """Where the carbon intensity of the electricity at a given time comes from."""

    def intensity_at(self, t: float) -> float:
        """Intensity in gCO2e/kWh at unix time ``t`` (seconds)."""
        ...

    def describe(self) -> str:
        """One line naming the source, e.g. ``country FRA: 56.0 gCO2e/kWh (Ember 2022)``."""
        ...


@dataclass(frozen=True)
class ConstantIntensity:
    """The same intensity at all times."""

    g_per_kwh: float
    label: str = "constant"
    source: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.g_per_kwh) and 0 <= self.g_per_kwh <= MAX_INTENSITY_G_PER_KWH):
            raise CarbonDataError(
                f"carbon intensity must be a finite number >= 0 gCO2e/kWh, got {self.g_per_kwh!r}; "
                f"the largest accepted is {MAX_INTENSITY_G_PER_KWH:g} (no grid comes near)"
            )

    def intensity_at(self, t: float) -> float:
        return self.g_per_kwh

    def describe(self) -> str:
        suffix = f" ({self.source})" if self.source else ""
        return f"{self.label}: {self.g_per_kwh:.1f} gCO2e/kWh{suffix}"


@dataclass(frozen=True)
class CountryIntensity:
    """One row of ``country_intensity.csv``."""

    iso_code: str
    country: str
    year: int
    g_co2e_per_kwh: float


@dataclass(frozen=True)
class CloudRegion:
    """One row of ``cloud_regions.csv``."""

    provider: str
    region: str
    country_iso_code: str
    city: str
    g_co2e_per_kwh: float


def _read_table(name: str) -> list[dict[str, str]]:
    from importlib import resources  # deferred: keeps `import greenai.carbon` light

    with resources.files("greenai.data").joinpath(name).open("r", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=1)
def countries() -> Mapping[str, CountryIntensity]:
    """Every country of the shipped table, by upper-case ISO 3166 alpha-3 code (read-only)."""
    table = {
        row["iso_code"]: CountryIntensity(
            row["iso_code"], row["country"], int(row["year"]), float(row["g_co2e_per_kwh"])
        )
        for row in _read_table("country_intensity.csv")
    }
    return MappingProxyType(table)


@lru_cache(maxsize=1)
def cloud_regions() -> Mapping[tuple[str, str], CloudRegion]:
    """Every cloud region of the shipped table, by (provider, region), both lower-case
    (read-only)."""
    table = {}
    for row in _read_table("cloud_regions.csv"):
        region = CloudRegion(
            row["provider"].lower(),
            row["region"].lower(),
            row["country_iso_code"],
            row["city"],
            float(row["g_co2e_per_kwh"]),
        )
        table[(region.provider, region.region)] = region
    return MappingProxyType(table)


def did_you_mean(candidates: list[str]) -> str:
    """``"did you mean A or B? "``, or nothing when there is no candidate."""
    return f"did you mean {' or '.join(candidates)}? " if candidates else ""


def suggest_countries(text: str) -> list[str]:
    """Close matches among country codes and names, as ``"FRA (France)"``: "FRX" and
    "France" both suggest FRA."""
    table = countries()
    keys = {c: c for c in table} | ALPHA2_TO_ALPHA3 | {r.country.upper(): c for c, r in table.items()}
    close = difflib.get_close_matches(text.strip().upper(), list(keys), n=3, cutoff=0.6)
    return list(dict.fromkeys(f"{keys[k]} ({table[keys[k]].country})" for k in close))


def country_intensity(code: str) -> ConstantIntensity:
    """Yearly average intensity of a country, by ISO 3166 alpha-3 ("FRA") or alpha-2 ("FR") code."""
    row = countries().get(to_alpha3(code))
    if row is None:
        raise CarbonDataError(
            f"unknown country code {code.strip()!r}; {did_you_mean(suggest_countries(code))}"
            "use an ISO 3166 code such as FRA or FR (see `greenai carbon countries`)"
        )
    return ConstantIntensity(row.g_co2e_per_kwh, label=f"country {row.iso_code}", source=f"Ember {row.year}")


def cloud_region_intensity(provider: str, region: str) -> ConstantIntensity:
    """Intensity of a cloud region as published by its provider, e.g. ("gcp", "europe-west1")."""
    table = cloud_regions()
    provider, region = provider.strip().lower(), region.strip().lower()
    providers = sorted({p for p, _ in table})
    if provider not in providers:
        raise CarbonDataError(f"unknown cloud provider {provider!r}; known providers: {', '.join(providers)}")
    row = table.get((provider, region))
    if row is None:
        known = sorted(r for p, r in table if p == provider)
        close = difflib.get_close_matches(region, known, n=3, cutoff=0.6)
        raise CarbonDataError(
            f"unknown {provider} region {region!r}; {did_you_mean(close)}known regions: {', '.join(known)} "
            "(see `greenai carbon regions`)"
        )
    return ConstantIntensity(
        row.g_co2e_per_kwh,
        label=f"{provider}:{region} ({row.city}, {row.country_iso_code})",
        source=f"{provider} published figure",
    )
