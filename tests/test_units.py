"""Exact unit conversions (1 kWh = 1000 W x 3600 s = 3_600_000 J)."""

from __future__ import annotations

import pytest

from greenai import units


def test_kwh_is_exactly_3_6_megajoules() -> None:
    assert units.J_PER_KWH == 3_600_000
    assert units.joules_to_kwh(3_600_000) == 1.0
    assert units.kwh_to_joules(2.5) == 9_000_000.0
    assert units.joules_to_wh(3_600) == 1.0


def test_device_counter_units() -> None:
    assert units.microjoules_to_joules(1_500_000) == 1.5  # RAPL energy_uj
    assert units.millijoules_to_joules(2_500) == 2.5  # NVML total energy, mJ
    assert units.milliwatts_to_watts(250_000) == 250.0  # NVML power, mW


def test_energy_of_constant_power() -> None:
    assert units.energy_j(300.0, 3_600.0) == 1_080_000.0


def test_carbon_and_cost_of_energy() -> None:
    assert units.carbon_g(3_600_000, 100.0) == 100.0  # 1 kWh at 100 g/kWh
    assert units.carbon_g(1_800_000, 56.0) == 28.0
    assert units.cost(7_200_000, 0.25) == 0.5


def test_format_energy_switches_unit_at_10_kj_and_1_kwh() -> None:
    assert units.format_energy(9_999.9) == "9,999.9 J"
    assert units.format_energy(10_000) == "2.78 Wh"
    assert units.format_energy(3_600_000) == "1.000 kWh"
    assert units.format_energy(-5) == "-5.0 J"


# -- durations: the one parser (job files, `schedule` options) --------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("90sec", 90.0),
        ("3min", 180.0),
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("1h30min", 5400.0),
        ("2h", 7200.0),
        ("1d", 86_400.0),
        ("1.5h", 5400.0),
        (".5h", 1800.0),
        ("2d 4h", 187_200.0),
        (" 2H 5M ", 7500.0),
        ("0", 0.0),
        ("1e3", 1000.0),
        (45, 45.0),
        (1.5, 1.5),
    ],
)
def test_parse_duration_s_accepts(text: object, seconds: float) -> None:
    assert units.parse_duration_s(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", ["", "  ", "h", "soon", "2x", "1h-5m", "-5", "-1h", -1, "inf", "nan", float("nan"), True, None, "1h 30"]
)
def test_parse_duration_s_rejects_saying_what_is_accepted(bad: object) -> None:
    from greenai.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        units.parse_duration_s(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)  # callers reading any value may catch ValueError
    message = str(info.value)
    assert "not a duration" in message and "1h30m" in message and "min" in message, message


def test_parse_duration_s_names_what_it_reads() -> None:
    from greenai.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--delay 'soon' is not a duration: use seconds"):
        units.parse_duration_s("soon", "--delay")


def test_seconds_per_minute_hour_day_are_named_once() -> None:
    from greenai.carbon.trace_csv import format_duration as trace_format_duration
    from greenai.units import DURATION_UNITS_S, S_PER_DAY, S_PER_HOUR, S_PER_MINUTE, format_duration

    assert (S_PER_MINUTE, S_PER_HOUR, S_PER_DAY) == (60.0, 3600.0, 86400.0)
    assert (DURATION_UNITS_S["min"], DURATION_UNITS_S["h"], DURATION_UNITS_S["d"]) == (
        S_PER_MINUTE,
        S_PER_HOUR,
        S_PER_DAY,
    )
    assert units.parse_duration_s("1d") == S_PER_DAY and units.J_PER_WH == S_PER_HOUR  # 1 Wh = 1 W for an hour
    assert [format_duration(s) for s in (30, 2700, 5400, 2 * S_PER_DAY)] == ["30 s", "45 min", "1.5 h", "2 d"]
    assert trace_format_duration is format_duration  # the trace reader's messages use the one formatter


def test_rounded_durations_for_waits_and_time_left() -> None:
    from greenai.units import format_duration_rounded

    assert [format_duration_rounded(s) for s in (0, 89.4, 90, 5399, 5400, 9000)] == [
        "0 s",
        "89 s",
        "2 min",
        "90 min",
        "1.5 h",
        "2.5 h",
    ]


def test_format_duration_precise_is_what_reports_and_the_dashboard_show() -> None:
    from greenai.units import format_duration_precise

    shown = [format_duration_precise(s) for s in (0.0, 12.345, 119.99, 119.996, 303.0, 359.6, 7259.0)]
    assert shown == ["0.00 s", "12.35 s", "119.99 s", "2 min 00 s", "5 min 03 s", "6 min 00 s", "2 h 01 min"]
    assert [format_duration_precise(v) for v in (None, float("nan"), float("inf"))] == ["—", "—", "—"]


def test_an_energy_per_unit_is_said_in_one_way_everywhere() -> None:
    from greenai.units import format_energy_per_unit

    assert format_energy_per_unit(2.5) == "2.5 J"
    assert format_energy_per_unit(0.0123) == "12.3 mJ"
    assert format_energy_per_unit(4.56e-5) == "45.6 µJ"
    assert format_energy_per_unit(0.001) == "1 mJ"
    assert format_energy_per_unit(0.99961) == "1 J" and format_energy_per_unit(0.00099961) == "1 mJ"  # rounded first
    assert format_energy_per_unit(0.0) == format_energy_per_unit(-0.0) == "0 J"
    assert format_energy_per_unit(-0.002) == "-2 mJ" and format_energy_per_unit(3.2e-8) == "32 nJ"
    assert format_energy_per_unit(float("nan")) == "nan J"
