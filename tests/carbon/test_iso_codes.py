from __future__ import annotations

import csv
from importlib import resources

from greenai.carbon.iso_codes import ALPHA2_TO_ALPHA3, to_alpha3


def _csv_alpha3() -> set[str]:
    path = resources.files("greenai.data").joinpath("country_intensity.csv")
    with path.open("r", encoding="utf-8", newline="") as f:
        return {row["iso_code"] for row in csv.DictReader(f)}


def test_alpha2_table_covers_exactly_the_countries_of_the_intensity_table() -> None:
    iso = {a2: a3 for a2, a3 in ALPHA2_TO_ALPHA3.items() if a2 != "UK"}
    assert set(iso.values()) == _csv_alpha3()
    assert len(set(iso.values())) == len(iso) == 213  # one alpha-2 per country


def test_to_alpha3() -> None:
    assert to_alpha3("fr") == "FRA"
    assert to_alpha3(" GB ") == "GBR"
    assert to_alpha3("uk") == "GBR"
    assert to_alpha3("deu") == "DEU"
    assert to_alpha3("XX") == "XX"
