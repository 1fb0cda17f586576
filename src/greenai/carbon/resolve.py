"""Turn a user's intensity spec (a CLI flag or config value) into an ``IntensitySource``, and
the rule for when there is none: the world average."""

from __future__ import annotations

from greenai.carbon.intensity import (
    ConstantIntensity,
    IntensitySource,
    cloud_region_intensity,
    cloud_regions,
    country_intensity,
    did_you_mean,
    suggest_countries,
)
from greenai.carbon.trace import SHIPPED_TRACES, TraceIntensity, shipped_trace
from greenai.errors import CarbonDataError

# Ember, Global Electricity Review 2024: world average 480 gCO2e/kWh in 2023. Used only when
# the user names no country, region or trace; every report says so (the source's label).
WORLD_INTENSITY_G_PER_KWH = 480.0

FORMS = (
    "use a number in gCO2e/kWh ('230' or '230g'), a country ('FRA', 'FR' or 'country:FRA'), "
    "a cloud region ('gcp:europe-west1') or a trace ('trace:gb_2020', 'trace:PATH' or PATH.csv)"
)


def _number(text: str) -> float | None:
    try:
        return float(text.removesuffix("g").removesuffix("G"))
    except ValueError:
        return None


def _trace(target: str, spec: str) -> IntensitySource:
    if not target:
        raise CarbonDataError(f"cannot read intensity {spec!r}: no trace named; {FORMS}")
    if target in SHIPPED_TRACES:
        return shipped_trace(target)
    return TraceIntensity(target)


def configured_intensity(spec: str | None) -> IntensitySource:
    """The intensity a run is charged with: `spec` (``Config.intensity``, ``--intensity``, a
    run's recorded config) resolved, or the world average when nothing is configured (``""``
    or None). The one home of that rule: the tracker, the estimator and reports call it."""
    if spec:
        return resolve_intensity(spec)
    return ConstantIntensity(
        WORLD_INTENSITY_G_PER_KWH, "world average, no intensity configured", "Ember, Global Electricity Review 2024"
    )


def resolve_intensity(spec: str) -> IntensitySource:
    """Parse a spec such as ``"230"``, ``"FR"``, ``"gcp:europe-west1"`` or ``"trace:gb_2020"``.

    A number is a constant; a 2- or 3-letter code (optionally ``country:``) is a country's
    yearly average; ``PROVIDER:REGION`` is a cloud region; ``trace:NAME`` is a shipped trace
    replayed by time of year; ``trace:PATH`` or a path ending in ``.csv`` is a trace file
    read at exact times.
    """
    text = spec.strip()
    number = _number(text)
    if number is not None:
        return ConstantIntensity(number, label="constant", source="user value")
    prefix, colon, rest = text.partition(":")
    key = prefix.strip().lower()
    if colon and key == "country":
        return country_intensity(rest)
    if colon and key == "trace":
        return _trace(rest.strip(), spec)
    if text.lower().endswith(".csv"):
        return TraceIntensity(text)
    if colon and key in {provider for provider, _ in cloud_regions()}:
        return cloud_region_intensity(key, rest)
    if colon and key.isalpha() and len(key) > 1:
        providers = sorted({provider for provider, _ in cloud_regions()})
        raise CarbonDataError(
            f"cannot read intensity {spec!r}: {key!r} is not 'country', 'trace' or a known "
            f"cloud provider ({', '.join(providers)}); {FORMS}"
        )
    if text.isalpha() and len(text) in (2, 3):
        return country_intensity(text)
    hint = did_you_mean(suggest_countries(text)) if text.replace(" ", "").isalpha() else ""
    raise CarbonDataError(f"cannot read intensity {spec!r}; {hint}{FORMS}")
