"""A carbon trace read at exact times that ends during a run: every tick past its end used to
fail (a traceback a tick; the run kept 0 s, 0 W and 0 gCO2e). The intervals past the end are
charged at the trace's last intensity, with one warning and a note; a trace that ends before the
run starts is refused at start, before anything runs."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.helpers import assert_one_line_error, greenai

from greenai.carbon.held import HeldIntensity
from greenai.carbon.intensity import ConstantIntensity
from greenai.errors import CarbonDataError
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.tracker import Tracker
from greenai.units import joules_to_kwh


def write_trace(path: Path, first_s: float, step_s: float, values: list[float]) -> Path:
    rows = "".join(
        f"{datetime.fromtimestamp(first_s + k * step_s, UTC):%Y-%m-%dT%H:%M:%S.%f},{v}\n" for k, v in enumerate(values)
    )
    path.write_text("Time,Carbon Intensity\n" + rows)
    return path


def test_a_trace_that_ends_mid_run_is_held_at_its_last_value(make_config, tmp_path, caplog) -> None:
    # two 2 s steps from 1 s before now: the trace ends about 3 s into a 4.5 s run. The held value
    # is the last one a tick read, so the last step is wide: a busy machine's late ticks still
    # fall in it (with 0.25 s steps a tick under load missed it, and 300 was held)
    trace = write_trace(tmp_path / "short.csv", time.time() - 1.0, 2.0, [100, 400])
    config = make_config(intensity=f"trace:{trace}")
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("outlives", config=config, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)]) as run:
            time.sleep(4.5)
    result = run.result
    assert result.status == "completed" and result.duration_s > 4.4
    assert result.device_energy_j("gpu:0") == pytest.approx(100.0 * result.duration_s, rel=0.05)
    # 100 g/kWh for at most the first second, 400 after: more than 300 on average, at most 400
    kwh = joules_to_kwh(result.energy_j)
    assert 300.0 * kwh < result.snapshot.carbon_g <= 400.0 * kwh * 1.0001
    [note] = result.notes
    assert "charged at 400 gCO2e/kWh, the last intensity known" in note and str(trace) in note
    assert "held at 400 gCO2e/kWh" in result.snapshot.carbon_source
    held = [r for r in caplog.records if "the last intensity known" in r.getMessage()]
    assert len(held) == 1 and not any(r.exc_info for r in caplog.records)  # one warning, no traceback
    with Ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get_run(run.run_id)
    assert record.snapshot.carbon_g == pytest.approx(result.snapshot.carbon_g)


def test_a_trace_that_ends_before_the_run_starts_is_refused_at_start(make_config, tmp_path) -> None:
    trace = write_trace(tmp_path / "old.csv", time.time() - 7200.0, 600.0, [100, 200, 300])
    tracker = Tracker("late", config=make_config(intensity=f"trace:{trace}"), meters=[])
    with pytest.raises(CarbonDataError, match=r"is outside trace .*old\.csv"):
        tracker.start()
    assert not (tmp_path / "ledger.db").exists()  # refused before the run was recorded


def test_greenai_run_refuses_a_trace_of_the_past_before_the_program_runs(tmp_path) -> None:
    trace = write_trace(tmp_path / "old.csv", 1577836800.0, 3600.0, [100, 120, 130])  # 2020-01-01
    marker = tmp_path / "ran"
    proc = greenai(
        "run", "--simulate", "--intensity", f"trace:{trace}", "--", "touch", str(marker), ledger=tmp_path / "l.db"
    )
    # the advice is one the command line can follow (a trace covering the run); replay by time of
    # year is named as Python's, which `--intensity` cannot ask for
    assert_one_line_error(
        proc,
        1,
        "is outside trace",
        "2020-01-01 00:00 to 2020-01-01 03:00 UTC",
        "give a trace that covers the run's dates",
        "in Python, TraceIntensity(path, align='time-of-year')",
    )
    assert "use align=" not in proc.stderr
    assert not marker.exists()


class EndsAt:
    """100 g/kWh until `end_s`, then the error a trace gives past its end."""

    def __init__(self, end_s: float) -> None:
        self.end_s = end_s

    def intensity_at(self, t: float) -> float:
        if t >= self.end_s:
            raise CarbonDataError(f"time {t} is outside trace t")
        return 100.0 + t

    def describe(self) -> str:
        return "trace t"


def test_held_intensity_holds_the_last_good_value_and_raises_before_any() -> None:
    early = HeldIntensity(EndsAt(0.0))
    with pytest.raises(CarbonDataError):
        early.intensity_at(5.0)  # nothing to hold yet
    held = HeldIntensity(EndsAt(10.0))
    assert held.note() is None and held.describe() == "trace t"
    assert [held.intensity_at(t) for t in (1.0, 9.0, 10.0, 50.0)] == [101.0, 109.0, 109.0, 109.0]
    assert held.held_since == 10.0
    assert "charged at 109 gCO2e/kWh" in (held.note() or "") and "held at 109" in held.describe()
    constant = HeldIntensity(ConstantIntensity(56.0))
    assert constant.intensity_at(1e12) == 56.0 and constant.note() is None


def test_a_trace_that_ends_right_after_the_start_check_is_held_from_the_start(make_config, monkeypatch) -> None:
    """A trace that covers the start check but not the first tick's midpoint (it ends a few ms
    later, or while the meters start): the value read at start is the one held, so no tick fails."""
    import greenai.tracking.tracker as tracker_module

    class EndsAfterOneReading:
        def __init__(self) -> None:
            self.readings = 0

        def intensity_at(self, t: float) -> float:
            self.readings += 1
            if self.readings > 1:
                raise CarbonDataError(f"time {t} is outside trace t")
            return 250.0

        def describe(self) -> str:
            return "trace t"

    monkeypatch.setattr(tracker_module, "configured_intensity", lambda spec: EndsAfterOneReading())
    meter = SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)
    with Tracker("ends-at-start", config=make_config(), meters=[meter]) as run:
        time.sleep(0.5)
    result = run.result
    assert result.duration_s > 0.4 and result.device_energy_j("gpu:0") > 0
    assert result.snapshot.carbon_g == pytest.approx(250.0 * joules_to_kwh(result.energy_j))
    assert "held at 250 gCO2e/kWh" in result.snapshot.carbon_source


class Covers:
    """100 g/kWh plus the time from `start_s` to `end_s`; outside, the error a trace gives."""

    def __init__(self, start_s: float, end_s: float) -> None:
        self.start_s, self.end_s = start_s, end_s

    def intensity_at(self, t: float) -> float:
        if not self.start_s <= t < self.end_s:
            raise CarbonDataError(f"time {t} is outside trace t")
        return 100.0 + t

    def describe(self) -> str:
        return "trace t"


def test_held_intensity_holds_forward_only_whatever_the_order_of_reads(caplog) -> None:
    # reports read a run device by device (each from its start) and a batch job by job: only a
    # time after the latest one the source answered is held, at that one's value
    with caplog.at_level(logging.WARNING, logger="greenai"):
        held = HeldIntensity.started(Covers(5.0, 10.0), 5.0, warn=False)
        assert [held.intensity_at(t) for t in (9.0, 20.0, 6.0, 30.0)] == [109.0, 109.0, 106.0, 109.0]
        with pytest.raises(CarbonDataError):
            held.intensity_at(2.0)  # before the trace's start: never held backward
        assert held.held() is not None and held.held_since == 20.0
    assert caplog.records == []  # warn=False: a report says it in its note
    with pytest.raises(CarbonDataError):
        HeldIntensity.started(Covers(5.0, 10.0), 4.0)  # the start not covered: refused as the tracker does


def test_the_held_warning_prints_the_traces_path_as_text(tmp_path: Path, caplog) -> None:
    from greenai.carbon.trace import TraceIntensity

    # a folder whose name would retitle the window and clear the screen (tests/cli/test_hostile_text.py)
    folder = tmp_path / "traces\x1b]0;pwned\x07\x1b[2Jt[/x]"
    folder.mkdir(parents=True)
    start = 1_700_000_000.0
    trace = write_trace(folder / "t.csv", start, 60.0, [100, 200])
    held = HeldIntensity.started(TraceIntensity(str(trace)), start)
    with caplog.at_level(logging.WARNING, logger="greenai"):
        assert held.intensity_at(start + 3600.0) == 100.0  # the latest value read: the start's
    [record] = caplog.records
    message = record.getMessage()
    assert "\x1b" not in message and "\x07" not in message, message
    assert r"traces\x1b]0;pwned\x07\x1b[2Jt[/x]" in message and "the last intensity known" in message
    assert str(folder) in (held.note() or "")  # the run's note keeps the path as it is
