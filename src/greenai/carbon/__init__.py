"""Carbon intensity of electricity (constant, country, cloud region, trace), PUE and price."""

from __future__ import annotations

from greenai.carbon.accounting import CarbonAccount, Charge
from greenai.carbon.intensity import (
    CloudRegion,
    ConstantIntensity,
    CountryIntensity,
    IntensitySource,
    cloud_region_intensity,
    cloud_regions,
    countries,
    country_intensity,
)
from greenai.carbon.resolve import WORLD_INTENSITY_G_PER_KWH, configured_intensity, resolve_intensity
from greenai.carbon.trace import SHIPPED_TRACES, TraceIntensity, shipped_trace

__all__ = [
    "SHIPPED_TRACES",
    "WORLD_INTENSITY_G_PER_KWH",
    "CarbonAccount",
    "Charge",
    "CloudRegion",
    "ConstantIntensity",
    "CountryIntensity",
    "IntensitySource",
    "TraceIntensity",
    "cloud_region_intensity",
    "cloud_regions",
    "configured_intensity",
    "countries",
    "country_intensity",
    "resolve_intensity",
    "shipped_trace",
]
