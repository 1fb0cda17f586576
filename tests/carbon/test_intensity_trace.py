from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from greenai.carbon import TraceIntensity, shipped_trace
from greenai.errors import CarbonDataError, ConfigError


def _utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def _write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


THREE_ROWS = "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:30:00,200\n2020-01-01 01:00:00,300\n"


def test_step_function_lookup(tmp_path: Path) -> None:
    trace = TraceIntensity(_write(tmp_path, THREE_ROWS))
    assert len(trace) == 3
    assert trace.start_s == _utc(2020, 1, 1, 0, 0)
    assert trace.end_s == _utc(2020, 1, 1, 1, 30)  # the last row holds for one more step
    assert trace.intensity_at(_utc(2020, 1, 1, 0, 0)) == 100.0
    assert trace.intensity_at(_utc(2020, 1, 1, 0, 29, 59)) == 100.0
    assert trace.intensity_at(_utc(2020, 1, 1, 0, 30)) == 200.0
    assert trace.intensity_at(_utc(2020, 1, 1, 1, 29, 59)) == 300.0


def test_exact_alignment_outside_the_range_says_the_range(tmp_path: Path) -> None:
    trace = TraceIntensity(_write(tmp_path, THREE_ROWS))
    for t in (_utc(2019, 12, 31, 23, 59), _utc(2020, 1, 1, 1, 30)):
        with pytest.raises(CarbonDataError) as e:
            trace.intensity_at(t)
        assert "2020-01-01 00:00 to 2020-01-01 01:30 UTC" in str(e.value)
        assert "a trace that covers the run's dates" in str(e.value)
        assert "in Python, TraceIntensity(path, align='time-of-year')" in str(e.value)


@pytest.mark.parametrize("header", ["timestamp,intensity", "datetime,g_co2e_per_kwh", "TIME , CARBON INTENSITY"])
def test_columns_are_detected_by_name(tmp_path: Path, header: str) -> None:
    body = "2020-01-01T00:00:00Z,10\n2020-01-01T01:00:00Z,20\n"
    trace = TraceIntensity(_write(tmp_path, f"{header}\n{body}"))
    assert trace.intensity_at(_utc(2020, 1, 1, 1, 15)) == 20.0


def test_named_columns_and_extra_columns(tmp_path: Path) -> None:
    text = "zone,when,co2\nFR,2020-01-01 00:00,7\nFR,2020-01-01 00:15,9\n"
    trace = TraceIntensity(_write(tmp_path, text), time_column="when", intensity_column="co2")
    assert trace.intensity_at(_utc(2020, 1, 1, 0, 20)) == 9.0


def test_missing_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(CarbonDataError, match="no intensity column 'carbon intensity' or"):
        TraceIntensity(_write(tmp_path, "time,co2\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n"))


def test_naive_times_are_read_in_the_given_time_zone(tmp_path: Path) -> None:
    text = "time,intensity\n2020-07-01 02:00,50\n2020-07-01 03:00,60\n"
    trace = TraceIntensity(_write(tmp_path, text), timezone="Europe/Paris")
    assert trace.start_s == _utc(2020, 7, 1, 0, 0)  # CEST is UTC+2
    assert trace.intensity_at(_utc(2020, 7, 1, 1, 0)) == 60.0
    assert "Europe/Paris" in trace.describe()


def test_times_with_an_offset_keep_it(tmp_path: Path) -> None:
    text = "time,intensity\n2020-01-01T01:00:00+01:00,50\n2020-01-01T02:00:00+01:00,60\n"
    assert TraceIntensity(_write(tmp_path, text)).start_s == _utc(2020, 1, 1, 0, 0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "00:00,1\n00:30,2\n00:20,3\n",
            "line 4: time '2020-01-01 00:20' goes back before the time on line 3",
        ),
        (
            "00:00,1\n00:30,2\n00:30,3\n",
            "line 4: time '2020-01-01 00:30' repeats the time on line 3",
        ),
        ("00:00,1\n00:30,abc\n", "line 3: intensity 'abc' is not a number"),
        ("00:00,1\n00:30,-4\n", "line 3: intensity '-4' must be a finite number >= 0"),
        ("00:00,1\n00:30,nan\n", "line 3: intensity 'nan' must be a finite number >= 0"),
        ("00:00,1\n00:30\n", "line 3: expected 2 columns, found 1"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path: Path, rows: str, message: str) -> None:
    body = "".join(f"2020-01-01 {line}\n" for line in rows.splitlines())
    with pytest.raises(CarbonDataError) as e:
        TraceIntensity(_write(tmp_path, "time,intensity\n" + body))
    assert str(e.value).startswith(f"trace {tmp_path / 'trace.csv'} {message}")


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(CarbonDataError, match=r"line 3: cannot read time 'yesterday' as ISO 8601"):
        TraceIntensity(_write(tmp_path, "time,intensity\n2020-01-01 00:00,1\nyesterday,2\n"))


def test_gap_larger_than_twice_the_median_step_is_rejected(tmp_path: Path) -> None:
    text = "time,intensity\n" + "".join(
        f"2020-01-01 {hhmm},{i}\n" for i, hhmm in enumerate(["00:00", "00:30", "01:00", "01:30", "03:30"])
    )
    path = _write(tmp_path, text)
    with pytest.raises(CarbonDataError) as e:
        TraceIntensity(path)
    assert str(e.value) == (
        f"trace {path}: gap of 2 h between line 5 and line 6 exceeds 1 h "
        "(2x the median step of 30 min); fill it or pass a larger max_gap_s"
    )
    trace = TraceIntensity(path, max_gap_s=7200)
    assert trace.intensity_at(_utc(2020, 1, 1, 3, 0)) == 3.0  # the step before the gap holds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("time,intensity\n", "no data rows; a trace needs at least two rows"),
        ("time,intensity\n2020-01-01 00:00,1\n\n", "one data row; a trace needs at least two rows"),
    ],
)
def test_empty_traces_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CarbonDataError, match=message):
        TraceIntensity(_write(tmp_path, text))


def test_missing_file_and_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(CarbonDataError, match=r"cannot read trace .*nope\.csv: No such file"):
        TraceIntensity(tmp_path / "nope.csv")
    path = _write(tmp_path, THREE_ROWS)
    with pytest.raises(ConfigError, match="unknown trace alignment 'nearest'"):
        TraceIntensity(path, align="nearest")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        TraceIntensity(path, timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="max_gap_s must be > 0"):
        TraceIntensity(path, max_gap_s=0)


def _gb_row(stamp: str) -> float:
    path = resources.files("greenai.data").joinpath("traces").joinpath("gb_2020.csv")
    with path.open("r", encoding="utf-8", newline="") as f:
        return next(float(r["Carbon Intensity"]) for r in csv.DictReader(f) if r["Time"] == stamp)


def test_shipped_gb_trace_replays_a_run_today_by_time_of_year() -> None:
    trace = shipped_trace("gb_2020")
    assert trace is shipped_trace("gb_2020")  # loaded once
    assert trace.align == "time-of-year"
    assert trace.intensity_at(_utc(2025, 6, 15, 12, 10)) == _gb_row("2020-06-15 12:00:00")
    # December maps into 2020 (the trace's main year), not into its 2019 lead-in.
    assert trace.intensity_at(_utc(2026, 12, 25, 6, 0)) == _gb_row("2020-12-25 06:00:00")
    assert trace.intensity_at(_utc(2028, 2, 29, 23, 59)) == _gb_row("2020-02-29 23:30:00")
    assert trace.describe() == (
        "trace gb_2020: 21980 steps, 2019-12-20 00:00 to 2021-01-10 00:00 UTC, replayed by "
        "time of year (ENTSO-E via Let's Wait Awhile, Wiesner et al. 2021)"
    )


def test_shipped_fr_trace_and_unknown_name() -> None:
    assert shipped_trace("fr_2020").intensity_at(_utc(2024, 1, 1, 0, 0)) == 56.033470564629994
    with pytest.raises(CarbonDataError, match="unknown shipped trace 'de_2020'; shipped traces: gb_2020, fr_2020"):
        shipped_trace("de_2020")


def test_time_of_year_maps_29_february_into_a_non_leap_year(tmp_path: Path) -> None:
    start = datetime(2021, 1, 1, tzinfo=UTC)
    rows = "".join(f"{(start + timedelta(days=d)).isoformat()},{d}\n" for d in range(365))
    trace = TraceIntensity(_write(tmp_path, "time,intensity\n" + rows), align="time-of-year")
    assert trace.intensity_at(_utc(2024, 2, 29, 12, 0)) == 58.0  # 2021-02-28 is day 58
    assert trace.intensity_at(_utc(2024, 3, 1, 0, 0)) == 59.0


def test_time_of_year_needs_the_date_in_the_trace(tmp_path: Path) -> None:
    trace = TraceIntensity(_write(tmp_path, THREE_ROWS), align="time-of-year")
    assert trace.intensity_at(_utc(2023, 1, 1, 0, 45)) == 200.0
    with pytest.raises(CarbonDataError, match="has no 15 Jun 12:00 to replay 2023-06-15 12:00 on"):
        trace.intensity_at(_utc(2023, 6, 15, 12, 0))
