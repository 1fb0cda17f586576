from __future__ import annotations

import csv
import math
from importlib import resources

import pytest

from greenai.carbon import (
    ConstantIntensity,
    cloud_region_intensity,
    cloud_regions,
    countries,
    country_intensity,
)
from greenai.errors import CarbonDataError


def _csv_rows(name: str) -> list[dict[str, str]]:
    with resources.files("greenai.data").joinpath(name).open("r", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _country_row(iso: str) -> dict[str, str]:
    return next(r for r in _csv_rows("country_intensity.csv") if r["iso_code"] == iso)


def test_constant_intensity() -> None:
    source = ConstantIntensity(230.0, label="constant", source="user value")
    assert source.intensity_at(0.0) == 230.0
    assert source.intensity_at(1.7e9) == 230.0
    assert source.describe() == "constant: 230.0 gCO2e/kWh (user value)"
    assert ConstantIntensity(0.0).intensity_at(5.0) == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_constant_intensity_rejects_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(CarbonDataError, match="finite number >= 0"):
        ConstantIntensity(bad)


def test_country_by_alpha3_and_alpha2_read_from_the_csv_row() -> None:
    row = _country_row("FRA")
    expected = float(row["g_co2e_per_kwh"])
    assert country_intensity("FRA").intensity_at(0.0) == expected
    assert country_intensity("FR").intensity_at(0.0) == expected
    assert country_intensity("fra").intensity_at(0.0) == expected
    assert country_intensity("FRA").describe() == (f"country FRA: {expected:.1f} gCO2e/kWh (Ember {row['year']})")


def test_country_gb_and_uk_are_great_britain() -> None:
    expected = float(_country_row("GBR")["g_co2e_per_kwh"])
    assert country_intensity("gb").intensity_at(0.0) == expected
    assert country_intensity("UK").intensity_at(0.0) == expected
    assert country_intensity("GBR").describe().startswith("country GBR: ")


def test_country_table_has_every_row() -> None:
    table = countries()
    assert len(table) == len(_csv_rows("country_intensity.csv")) == 213
    assert table["DEU"].country == "Germany"


def test_unknown_country_code_suggests_close_matches() -> None:
    with pytest.raises(CarbonDataError) as e:
        country_intensity("FRX")
    message = str(e.value)
    assert message.startswith("unknown country code 'FRX'; did you mean FRA (France)")
    assert "use an ISO 3166 code such as FRA or FR (see `greenai carbon countries`)" in message


def test_country_name_suggests_its_code() -> None:
    with pytest.raises(CarbonDataError, match=r"did you mean GBR \(United Kingdom\)"):
        country_intensity("United Kingdom")


def test_unknown_country_without_close_match() -> None:
    with pytest.raises(CarbonDataError) as e:
        country_intensity("QQ")
    assert str(e.value) == (
        "unknown country code 'QQ'; use an ISO 3166 code such as FRA or FR (see `greenai carbon countries`)"
    )


def test_cloud_region_read_from_the_csv_row() -> None:
    row = next(r for r in _csv_rows("cloud_regions.csv") if r["region"] == "europe-west1")
    source = cloud_region_intensity("gcp", "europe-west1")
    assert source.intensity_at(0.0) == float(row["g_co2e_per_kwh"]) == 122.0
    assert cloud_region_intensity("GCP", " Europe-West1 ").intensity_at(0.0) == 122.0
    assert source.describe() == ("gcp:europe-west1 (St. Ghislain, BEL): 122.0 gCO2e/kWh (gcp published figure)")
    assert len(cloud_regions()) == len(_csv_rows("cloud_regions.csv"))


def test_unknown_region_lists_the_providers_regions() -> None:
    with pytest.raises(CarbonDataError) as e:
        cloud_region_intensity("gcp", "europe-west99")
    message = str(e.value)
    assert message.startswith("unknown gcp region 'europe-west99'; did you mean europe-west9")
    assert "known regions: africa-south1, asia-east1," in message
    assert "us-west4" in message


def test_unknown_provider_lists_known_providers() -> None:
    with pytest.raises(CarbonDataError) as e:
        cloud_region_intensity("aws", "eu-west-3")
    assert str(e.value) == "unknown cloud provider 'aws'; known providers: gcp"
