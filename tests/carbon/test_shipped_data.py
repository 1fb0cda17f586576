"""The shipped tables (greenai/data) are checked row by row: keys are unique, codes are real,
names are spelled as their provider spells them, values are in range, traces are regular.

`gcp:me-central1` was rejected because cloud_regions.csv spelled it `me-cenrtal1`.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from datetime import datetime, timedelta
from importlib import resources

import pytest

from greenai.carbon import SHIPPED_TRACES, cloud_region_intensity, cloud_regions, countries
from greenai.carbon.iso_codes import ALPHA2_TO_ALPHA3

# How each provider names its regions: an area, a compass direction and a number
# (https://cloud.google.com/compute/docs/regions-zones). A provider added to the table
# needs a pattern here.
_DIRECTIONS = "central|east|west|north|south|northeast|northwest|southeast|southwest"
REGION_PATTERNS = {
    "gcp": re.compile(rf"^(africa|asia|australia|europe|me|northamerica|southamerica|us)-({_DIRECTIONS})[0-9]+$"),
}
# no yearly average of a grid comes near these (the dirtiest are about 1,300 gCO2e/kWh)
MAX_GRID_G_PER_KWH = 1500.0


def _rows(name: str) -> list[dict[str, str]]:
    with resources.files("greenai.data").joinpath(name).open("r", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _duplicates(keys: list[object]) -> list[object]:
    return [k for k, n in Counter(keys).items() if n > 1]


def test_cloud_regions_are_spelled_as_their_provider_spells_them() -> None:
    rows = _rows("cloud_regions.csv")
    assert rows
    for row in rows:
        pattern = REGION_PATTERNS.get(row["provider"])
        assert pattern is not None, f"unknown provider {row['provider']!r}: add its region pattern here"
        assert pattern.match(row["region"]), f"{row['provider']}:{row['region']} is not a region name"
    assert not _duplicates([(r["provider"], r["region"]) for r in rows])


def test_cloud_regions_have_real_countries_cities_and_plausible_values() -> None:
    alpha3 = set(ALPHA2_TO_ALPHA3.values())
    for row in _rows("cloud_regions.csv"):
        where = f"{row['provider']}:{row['region']}"
        assert row["country_iso_code"] in alpha3, f"{where}: {row['country_iso_code']!r} is not an ISO alpha-3 code"
        assert row["country_iso_code"] in countries(), where
        assert row["city"].strip() == row["city"] and row["city"], where
        value = float(row["g_co2e_per_kwh"])
        assert math.isfinite(value) and 0 <= value <= MAX_GRID_G_PER_KWH, where


def test_gcp_me_central1_is_doha() -> None:
    assert ("gcp", "me-central1") in cloud_regions()
    assert "Doha, QAT" in cloud_region_intensity("gcp", "me-central1").describe()


def test_country_table_codes_names_years_and_values() -> None:
    rows = _rows("country_intensity.csv")
    assert not _duplicates([r["iso_code"] for r in rows])
    assert not _duplicates([r["country"] for r in rows])
    alpha3 = set(ALPHA2_TO_ALPHA3.values())
    for row in rows:
        code = row["iso_code"]
        assert re.fullmatch(r"[A-Z]{3}", code) and code in alpha3, code
        assert row["country"].strip() == row["country"] and row["country"], code
        assert 2000 <= int(row["year"]) <= 2030, code
        value = float(row["g_co2e_per_kwh"])
        assert math.isfinite(value) and 0 <= value <= MAX_GRID_G_PER_KWH, code


def test_cpu_tdp_table() -> None:
    rows = _rows("cpu_tdp.csv")
    unreadable = []
    for row in rows:
        assert row["cpu_name"].strip(), row
        try:
            tdp_w = float(row["tdp_w"])
        except ValueError:
            unreadable.append(row["cpu_name"])
            continue
        assert 0 <= tdp_w <= 500, row
    # as compiled upstream: ranges mangled into "27.29.5" (hardware.cpu skips them); no new ones
    assert sorted(unreadable) == [
        "Intel Celeron 1000A",
        "Intel Celeron 1100A",
        "Intel Celeron 1200",
        "Intel Celeron 1400",
    ]
    assert not _duplicates([r["cpu_name"].strip().lower() for r in rows])


@pytest.mark.parametrize("name", SHIPPED_TRACES)
def test_shipped_traces_are_regular(name: str) -> None:
    rows = _rows(f"traces/{name}.csv")
    times = [datetime.fromisoformat(r["Time"]) for r in rows]
    values = [float(r["Carbon Intensity"]) for r in rows]
    steps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert steps <= {timedelta(minutes=15), timedelta(minutes=30)}, steps  # increasing, no gaps
    assert times[0] == datetime(2019, 12, 20) and times[-1].date() == datetime(2021, 1, 9).date()
    assert all(math.isfinite(v) and 0 < v <= MAX_GRID_G_PER_KWH for v in values)
