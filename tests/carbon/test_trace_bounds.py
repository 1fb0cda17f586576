"""Trace files a user names are bounded and checked (issue 16, items 12 and 16): a byte-order
mark is accepted, a gap in a short file is refused, only regular files of bounded size are
read, and intensities are finite and in range."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from greenai.carbon import TraceIntensity, resolve_intensity
from greenai.carbon.grid_forecast import IntensitySeries, load_intensity_series
from greenai.carbon.step import MAX_STEP_S, find_gap
from greenai.carbon.trace_csv import MAX_TRACE_BYTES, MAX_TRACE_ROWS, read_trace
from greenai.errors import CarbonDataError

HEADER = "Time,Carbon Intensity\n"


def _utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def _write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_utf8_byte_order_mark_before_the_header_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "2020-01-01T00:00,100\r\n2020-01-01T01:00,200\r\n").encode())
    trace = TraceIntensity(path)
    assert trace.intensity_at(_utc(2020, 1, 1, 1, 30)) == 200.0
    series = load_intensity_series(path)  # the scheduler's reader too
    assert list(series.values) == [100.0, 200.0]


def test_a_two_day_gap_in_a_short_file_is_refused(tmp_path: Path) -> None:
    # steps of 1 h and 48 h: the median of the two (24.5 h) hid the gap
    path = _write(tmp_path, HEADER + "2020-01-01T00:00,100\n2020-01-01T01:00,200\n2020-01-03T01:00,300\n")
    with pytest.raises(CarbonDataError) as e:
        TraceIntensity(path)
    assert "gap of 2 d between line 3 and line 4 exceeds 2 h (2x the median step of 1 h)" in str(e.value)
    with pytest.raises(CarbonDataError, match="gap of 2 d"):
        load_intensity_series(path)
    assert TraceIntensity(path, max_gap_s=3 * 86_400).intensity_at(_utc(2020, 1, 2)) == 200.0


def test_two_rows_two_days_apart_are_a_gap_but_daily_rows_are_not(tmp_path: Path) -> None:
    two = _write(tmp_path, HEADER + "2020-01-01T00:00,100\n2020-01-03T00:00,200\n")
    with pytest.raises(CarbonDataError, match="exceeds 1.5 d"):
        TraceIntensity(two)
    # daily data with a 25 h daylight-saving day, and an evening-out 23 h day
    daily = HEADER + "".join(
        f"{day},{i}\n"
        for i, day in enumerate(("2020-10-24T00:00", "2020-10-25T00:00", "2020-10-26T01:00", "2020-10-27T00:00"))
    )
    assert len(TraceIntensity(_write(tmp_path, daily, "daily.csv"))) == 4
    missing_day = HEADER + "2020-01-01T00:00,1\n2020-01-02T00:00,2\n2020-01-04T00:00,3\n2020-01-05T00:00,4\n"
    with pytest.raises(CarbonDataError, match="gap of 2 d"):
        TraceIntensity(_write(tmp_path, missing_day, "missing.csv"))


def test_gap_rule_on_arrays() -> None:
    hour = 3600.0
    assert find_gap([0.0, hour, 49 * hour]) is not None
    assert find_gap([0.0, hour, 2 * hour, 3 * hour]) is None
    assert find_gap([0.0, 2 * 86_400.0]).limit_s == MAX_STEP_S
    assert find_gap([0.0, 2 * 86_400.0], max_gap_s=3 * 86_400.0) is None
    with pytest.raises(CarbonDataError, match="gap"):
        IntensitySeries(np.array([0.0, hour, 49 * hour]), np.ones(3))


@pytest.mark.parametrize("device", ["/dev/null"])  # /dev/zero: tests/cli, in a memory-capped process
def test_a_device_is_refused_before_it_is_read(device: str) -> None:
    started = time.monotonic()
    with pytest.raises(CarbonDataError, match=f"trace {device} is a device, not a regular file"):
        resolve_intensity(f"trace:{device}")
    assert time.monotonic() - started < 5


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            TraceIntensity(fifo)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 — handed to the test's thread
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader so the test run ends
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], CarbonDataError)
    assert "is a named pipe (FIFO), not a regular file" in str(outcome[0])


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(CarbonDataError, match="is a directory, not a regular file"):
        TraceIntensity(tmp_path / "dir.csv")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:  # sparse: nothing is written but the header
        f.write(HEADER.encode())
        f.truncate(MAX_TRACE_BYTES + 1)
    with pytest.raises(CarbonDataError, match="over the maximum of 64 MiB"):
        TraceIntensity(big)


def test_more_rows_than_the_maximum_are_refused() -> None:
    assert MAX_TRACE_ROWS == 1_000_000  # the documented bound; a small one is given below
    rows = [HEADER] + [f"2020-01-01T{h:02d}:00,1\n" for h in range(12)]
    assert len(read_trace(rows, "ok", UTC, max_rows=12)[0]) == 12
    with pytest.raises(CarbonDataError, match="trace huge: more than 11 data rows"):
        read_trace(rows, "huge", UTC, max_rows=11)


@pytest.mark.parametrize("value", ["1e301", "10001", "inf"])
def test_intensities_are_bounded(tmp_path: Path, value: str) -> None:
    with pytest.raises(CarbonDataError, match="finite number >= 0"):
        resolve_intensity(value)
    path = _write(tmp_path, HEADER + f"2020-01-01T00:00,100\n2020-01-01T01:00,{value}\n")
    with pytest.raises(CarbonDataError, match=r"line 3: intensity .* must be a finite number >= 0 and <= 10000"):
        TraceIntensity(path)
