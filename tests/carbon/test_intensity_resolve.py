from __future__ import annotations

from pathlib import Path

import pytest

from greenai.carbon import TraceIntensity, country_intensity, resolve_intensity, shipped_trace
from greenai.errors import CarbonDataError

FORMS = "use a number in gCO2e/kWh ('230' or '230g')"


@pytest.mark.parametrize(("spec", "value"), [("230", 230.0), ("230g", 230.0), (" 12.5 g ", 12.5), ("0", 0.0)])
def test_numbers_are_constants(spec: str, value: float) -> None:
    source = resolve_intensity(spec)
    assert source.intensity_at(1.7e9) == value
    assert source.describe() == f"constant: {value:.1f} gCO2e/kWh (user value)"


def test_country_forms_agree() -> None:
    expected = country_intensity("FRA").intensity_at(0.0)
    for spec in ("country:FRA", "FRA", "FR", "fr", "country:fr"):
        assert resolve_intensity(spec).intensity_at(0.0) == expected
    assert resolve_intensity("GB").describe().startswith("country GBR: ")


def test_cloud_region() -> None:
    assert resolve_intensity("gcp:europe-west1").intensity_at(0.0) == 122.0
    assert resolve_intensity("GCP:europe-west9").intensity_at(0.0) == 34.0


def test_shipped_trace_is_replayed_by_time_of_year() -> None:
    source = resolve_intensity("trace:gb_2020")
    assert source is shipped_trace("gb_2020")
    assert isinstance(source, TraceIntensity) and source.align == "time-of-year"


def test_trace_file_by_prefix_or_csv_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("time,intensity\n2020-01-01T00:00Z,40\n2020-01-01T01:00Z,80\n", encoding="utf-8")
    for spec in (f"trace:{path}", str(path)):
        source = resolve_intensity(spec)
        assert isinstance(source, TraceIntensity) and source.align == "exact"
        assert source.intensity_at(1577840400.0) == 80.0  # 2020-01-01 01:00 UTC


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "cannot read intensity ''; " + FORMS),
        ("hello world", "cannot read intensity 'hello world'; " + FORMS),
        ("France", "cannot read intensity 'France'; did you mean FRA (France)"),
        (
            "aws:eu-west-3",
            "cannot read intensity 'aws:eu-west-3': 'aws' is not 'country', 'trace' "
            "or a known cloud provider (gcp); " + FORMS,
        ),
        ("trace:", "cannot read intensity 'trace:': no trace named; " + FORMS),
        ("XYZ", "unknown country code 'XYZ'"),
        ("gcp:nowhere1", "unknown gcp region 'nowhere1'"),
        ("-5", "carbon intensity must be a finite number >= 0 gCO2e/kWh, got -5.0"),
        ("nan", "carbon intensity must be a finite number >= 0 gCO2e/kWh, got nan"),
        ("missing.csv", "cannot read trace missing.csv: No such file or directory"),
    ],
)
def test_bad_specs_raise_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(CarbonDataError) as e:
        resolve_intensity(spec)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_nothing_configured_is_the_world_average_everywhere(tmp_path: Path) -> None:
    """One rule (carbon.resolve.configured_intensity) for the tracker, the estimator and reports."""
    from greenai.carbon import WORLD_INTENSITY_G_PER_KWH, configured_intensity
    from greenai.config import Config
    from greenai.estimation.api import price

    for nothing in ("", None):
        world = configured_intensity(nothing)
        assert world.intensity_at(1.7e9) == WORLD_INTENSITY_G_PER_KWH == 480.0
        assert "world average, no intensity configured" in world.describe() and "Ember" in world.describe()
    assert configured_intensity("230").intensity_at(0.0) == 230.0
    with pytest.raises(CarbonDataError):
        configured_intensity("nowhere-land")
    priced = price(3_600_000.0, 3_600_000.0, 3_600_000.0, Config(ledger=tmp_path / "l.db"))
    assert priced.intensity_g_per_kwh == 480.0 and priced.carbon_g == pytest.approx(480.0)
