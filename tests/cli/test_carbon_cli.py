"""`greenai carbon countries | regions | traces`: the errors of --intensity point to them, so
they exist and list what --intensity accepts."""

from __future__ import annotations

import json

from tests.helpers import as_json, assert_one_line_error, greenai

from greenai.carbon import resolve_intensity


def test_the_unknown_country_error_names_a_command_that_lists_countries():
    proc = greenai("run", "--intensity", "XX", "--", "true")
    assert_one_line_error(proc, 1, "greenai carbon countries")
    listed = greenai("carbon", "countries")
    assert listed.returncode == 0, listed.stderr
    assert "FRA" in listed.stdout and "France" in listed.stdout and "FR " in listed.stdout


def test_every_listed_spec_is_accepted_by_intensity():
    countries = as_json(greenai("carbon", "countries", "--json"))
    regions = as_json(greenai("carbon", "regions", "--json"))
    traces = as_json(greenai("carbon", "traces", "--json"))
    assert len(countries) == 213 and {"FRA", "GBR"} <= {c["iso_code"] for c in countries}
    assert "gcp:me-central1" in {r["intensity"] for r in regions}
    assert {t["name"] for t in traces} == {"gb_2020", "fr_2020"}
    for row in [*countries, *regions, *traces]:
        resolve_intensity(row["intensity"])  # raises if --intensity would refuse it
    france = next(c for c in countries if c["iso_code"] == "FRA")
    assert france["alpha2"] == "FR" and 0 < france["g_co2e_per_kwh"] < 200
    gb = next(t for t in traces if t["name"] == "gb_2020")
    assert gb["steps"] > 17_000 and 100 < gb["mean_g_co2e_per_kwh"] < 300


def test_search_filters_and_a_miss_is_an_error():
    proc = greenai("carbon", "regions", "europe-west", "--json")
    rows = json.loads(proc.stdout)
    assert rows and all("europe-west" in r["region"] for r in rows)
    assert [c["iso_code"] for c in as_json(greenai("carbon", "countries", "france", "--json"))] == ["FRA"]
    assert_one_line_error(greenai("carbon", "countries", "atlantis"), 1, "no country matches 'atlantis'")
    traces = greenai("carbon", "traces")
    assert traces.returncode == 0 and "trace:gb_2020" in traces.stdout
