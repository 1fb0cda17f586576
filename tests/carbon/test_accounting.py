from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenai.carbon import CarbonAccount, Charge, ConstantIntensity, TraceIntensity
from greenai.errors import ConfigError

T0 = datetime(2020, 1, 1, tzinfo=UTC).timestamp()


def test_one_kwh_at_100_g_per_kwh_is_100_g() -> None:
    account = CarbonAccount(ConstantIntensity(100.0), price_per_kwh=0.25)
    charge = account.charge(3_600_000.0, T0, T0 + 60)
    assert charge == Charge(3_600_000.0, 3_600_000.0, 100.0, 0.25, "EUR")
    assert charge.intensity_g_per_kwh == 100.0


def test_pue_multiplies_facility_energy_carbon_and_cost() -> None:
    account = CarbonAccount(ConstantIntensity(100.0), pue=1.5, price_per_kwh=0.25, currency="GBP")
    charge = account.charge(3_600_000.0, T0, T0 + 60)
    assert charge.energy_j == 3_600_000.0
    assert charge.facility_energy_j == 5_400_000.0
    assert charge.carbon_g == 150.0
    assert charge.cost == 0.375
    assert charge.currency == "GBP"


def _two_step_trace(tmp_path: Path) -> TraceIntensity:
    path = tmp_path / "two.csv"
    path.write_text("time,intensity\n2020-01-01T00:00Z,100\n2020-01-01T00:30Z,300\n", encoding="utf-8")
    return TraceIntensity(path)


def test_sample_by_sample_follows_an_intensity_change_mid_run(tmp_path: Path) -> None:
    account = CarbonAccount(_two_step_trace(tmp_path), price_per_kwh=0.2)
    first = account.charge(3_600_000.0, T0, T0 + 1800)  # midpoint 00:15 -> 100 g/kWh
    second = account.charge(7_200_000.0, T0 + 1800, T0 + 3600)  # midpoint 00:45 -> 300 g/kWh
    assert (first.carbon_g, second.carbon_g) == (100.0, 600.0)
    total = first + second
    assert total == Charge(10_800_000.0, 10_800_000.0, 700.0, pytest.approx(0.6), "EUR")
    assert sum([first, second]) == total
    assert total.intensity_g_per_kwh == pytest.approx(700.0 / 3.0)


def test_intensity_is_sampled_at_the_interval_midpoint(tmp_path: Path) -> None:
    account = CarbonAccount(_two_step_trace(tmp_path))
    assert account.charge(3_600_000.0, T0 + 1200, T0 + 3000).carbon_g == 300.0  # midpoint 00:35
    assert account.charge(3_600_000.0, T0 + 1200, T0 + 2400).carbon_g == 300.0  # midpoint 00:30
    assert account.charge(3_600_000.0, T0 + 1200, T0 + 2398).carbon_g == 100.0  # midpoint 00:29:59


@pytest.mark.parametrize("pue", [0.99, 0.0, math.nan, math.inf])
def test_pue_below_one_or_non_finite_is_rejected(pue: float) -> None:
    with pytest.raises(ConfigError, match=r"PUE must be a finite number >= 1\.0"):
        CarbonAccount(ConstantIntensity(1.0), pue=pue)


def test_price_and_currency_are_validated() -> None:
    with pytest.raises(ConfigError, match="electricity price must be a finite number >= 0"):
        CarbonAccount(ConstantIntensity(1.0), price_per_kwh=-0.1)
    with pytest.raises(ConfigError, match="currency must not be empty"):
        CarbonAccount(ConstantIntensity(1.0), currency=" ")


def test_bad_intervals_are_rejected() -> None:
    account = CarbonAccount(ConstantIntensity(1.0))
    with pytest.raises(ValueError, match="energy_j must be a finite number >= 0"):
        account.charge(-1.0, T0, T0 + 1)
    with pytest.raises(ValueError, match="interval ends before it starts"):
        account.charge(1.0, T0 + 1, T0)


def test_charges_in_different_currencies_do_not_add() -> None:
    eur = Charge(1.0, 1.0, 1.0, 1.0, "EUR")
    with pytest.raises(ValueError, match="cannot add a USD charge to a EUR charge"):
        eur + Charge(1.0, 1.0, 1.0, 1.0, "USD")


def test_zero_energy_has_zero_intensity_and_describe() -> None:
    account = CarbonAccount(ConstantIntensity(56.0, label="country FRA"), pue=1.2, price_per_kwh=0.3)
    assert account.charge(0.0, T0, T0).intensity_g_per_kwh == 0.0
    assert account.describe() == "country FRA: 56.0 gCO2e/kWh; PUE 1.2; 0.3 EUR/kWh"
    assert "EUR" not in CarbonAccount(account.intensity, pue=1.2).describe()  # no price set
