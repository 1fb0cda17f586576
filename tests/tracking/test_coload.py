"""Co-load: the reader and its summaries, the tracker recording it (on a fake machine whose
/proc/stat a thread advances, so the figures are exact), the ledger keeping it, and the
forecast widening (or withholding itself) while the run is disturbed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.hardware import coload
from greenai.hardware.coload import (
    CLK_TCK,
    DISTURBED_CORES,
    CoLoadLog,
    CoLoadWindow,
    CpuSample,
    machine_cpu_s,
)
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.fake_machine import FakeMachine
from greenai.tracking.forecast import NotYet, Plan, make_forecast
from greenai.tracking.progress import ProgressSeries, TracePoint
from greenai.tracking.tracker import Tracker


def summarise(windows: list[CoLoadWindow], threshold_cores: float = DISTURBED_CORES):
    """The summary a CoLoadLog gives of these windows, added in order."""
    log = CoLoadLog(threshold_cores)
    for w in windows:
        log.add(w)
    return log.summary()


# -- the reader -------------------------------------------------------------------------------


def test_proc_stat_is_read_as_busy_and_steal_seconds(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal
    stat.write_text(f"cpu  {CLK_TCK * 10} {CLK_TCK} {CLK_TCK * 4} 999999 55 {CLK_TCK} {CLK_TCK} {CLK_TCK * 3} 0 0\n")
    busy, steal = machine_cpu_s(stat)
    assert busy == pytest.approx(10 + 1 + 4 + 1 + 1) and steal == pytest.approx(3)
    stat.write_text("not a stat file\n")
    assert machine_cpu_s(stat) is None
    assert machine_cpu_s(tmp_path / "missing") is None  # Linux: no psutil detour to the same file


def test_others_cores_are_the_machines_busy_time_minus_ours_plus_steal() -> None:
    before = CpuSample(wall_s=10.0, busy_s=100.0, steal_s=5.0, own_s=20.0)
    after = CpuSample(wall_s=12.0, busy_s=103.0, steal_s=5.5, own_s=21.0)
    assert after.others_cores(before) == pytest.approx(1.25)
    assert after.others_cores(before, steal=False) == pytest.approx(1.0)
    assert after.steal_cores(before) == pytest.approx(0.25)


def test_a_summary_is_time_weighted_and_flags_a_tenth_of_the_time_over_the_threshold() -> None:
    quiet = [CoLoadWindow(float(t), 1.0, 0.05, 0.0) for t in range(18)]
    burst = [CoLoadWindow(18.0, 1.0, 1.8, 0.1), CoLoadWindow(19.0, 1.0, 1.9, 0.0)]
    s = summarise(quiet + burst, threshold_cores=0.5)
    assert s is not None
    assert s.median_cores == pytest.approx(0.05) and s.max_cores == pytest.approx(1.9)
    assert s.steal_max_cores == pytest.approx(0.1) and s.seconds == pytest.approx(20.0)
    assert s.busy_share == pytest.approx(0.1) and s.disturbed  # 2 s of 20
    assert "disturbed" in s.describe() and "10% of the run" in s.describe() and "max 1.90" in s.describe()
    one_burst = summarise(quiet + burst[:1], threshold_cores=0.5)
    assert one_burst is not None and not one_burst.disturbed  # 1 s of 19
    assert one_burst.describe().startswith("quiet: other processes kept 0.05 CPUs busy")
    # a long window weighs more than a short one
    weighted = summarise([CoLoadWindow(0.0, 3.0, 1.0, 0.0), CoLoadWindow(1.0, 1.0, 0.0, 0.0)], 0.5)
    assert weighted is not None and weighted.median_cores == pytest.approx(1.0)
    assert CoLoadLog().summary() is None


# -- a fake machine -------------------------------------------------------------------------


@pytest.fixture
def busy_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMachine]:
    path = tmp_path / "proc-stat"
    with FakeMachine(path, cores=1.5) as machine:
        monkeypatch.setattr(coload, "PROC_STAT", path)
        yield machine


def meter() -> SimulatedMeter:
    return SimulatedMeter("cpu:0", DeviceKind.CPU, power_w=50.0)


def test_a_run_on_a_busy_machine_is_recorded_disturbed_with_its_figure(busy_machine, tmp_path: Path) -> None:
    config = Config(ledger=tmp_path / "l.db", sample_hz=20)
    with Tracker("busy", config=config, meters=[meter()]) as run:
        time.sleep(2.3)
        during = run.coload()
    result = run.result
    assert result is not None
    c = result.snapshot.coload
    assert c is not None and during is not None  # known while the run goes on, too
    assert c.median_cores == pytest.approx(1.5, abs=0.1) and c.max_cores == pytest.approx(1.5, abs=0.15)
    assert c.disturbed and c.busy_share == 1.0 and c.threshold_cores == DISTURBED_CORES
    assert c.seconds == pytest.approx(result.snapshot.duration_s, abs=0.3)
    with Ledger(tmp_path / "l.db") as ledger:
        record = ledger.get_run(result.run_id)
        windows = ledger.coload(result.run_id)
    assert record.snapshot.coload == c
    assert len(windows) >= 2 and all(w.others_cores == pytest.approx(1.5, abs=0.15) for w in windows)
    assert sum(w.span_s for w in windows) == pytest.approx(c.seconds)
    assert windows == sorted(windows, key=lambda w: w.t)


def test_the_threshold_is_a_setting(busy_machine, tmp_path: Path) -> None:
    config = Config(ledger=tmp_path / "l.db", sample_hz=20, coload_threshold_cores=2.0)
    with Tracker("busy", config=config, meters=[meter()], store=False) as run:
        time.sleep(1.3)
    c = run.result.snapshot.coload if run.result else None
    assert c is not None and not c.disturbed and c.threshold_cores == 2.0


def test_a_quiet_machine_is_recorded_quiet(tmp_path: Path) -> None:
    """The suite's quiet machine (conftest's frozen /proc/stat): nothing flagged."""
    with Tracker("quiet", config=Config(ledger=tmp_path / "l.db"), meters=[meter()]) as run:
        time.sleep(1.2)
    c = run.result.snapshot.coload if run.result else None
    assert c is not None and c.median_cores == 0.0 and not c.disturbed


def test_a_machine_that_cannot_be_read_records_no_coload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coload, "PROC_STAT", tmp_path / "missing")
    with Tracker("blind", config=Config(ledger=tmp_path / "l.db"), meters=[meter()]) as run:
        time.sleep(0.3)
        assert run.coload() is None and run.coload_since(run.coload_mark()) is None
    assert run.result is not None and run.result.snapshot.coload is None
    with Ledger(tmp_path / "l.db") as ledger:
        assert ledger.get_run(run.run_id).snapshot.coload is None and ledger.coload(run.run_id) == []


def test_coload_since_a_mark_measures_a_stretch_of_the_run(busy_machine, tmp_path: Path) -> None:
    with Tracker("stretch", config=Config(sample_hz=50), meters=[meter()], store=False) as run:
        time.sleep(0.2)
        mark = run.coload_mark()
        time.sleep(0.6)
        assert run.coload_since(mark) == pytest.approx(1.5, abs=0.2)


# -- the forecast while the machine is busy ------------------------------------------------


def trace(loaded: set[int], n: int = 100, quiet_j: float = 10.0, loaded_j: float = 30.0) -> list[TracePoint]:
    """Steps of 1 s; steps in `loaded` cost `loaded_j` with 1.5 CPUs busy elsewhere, the others
    `quiet_j` on a quiet machine. Four samples per step."""
    points, e, t, core_s = [], 0.0, 0.0, 0.0
    for k in range(n):
        joules, cores = (loaded_j, 1.5) if k in loaded else (quiet_j, 0.0)
        for q in range(1, 5):
            points.append(
                TracePoint(t + q / 4, k + (q == 4), 0.0, e + joules * q / 4, 0, 0, 0, 0, core_s + cores * q / 4)
            )
        e, t, core_s = e + joules, t + 1.0, core_s + cores
    return points


def series(points: list[TracePoint], threshold: float | None = 0.5, rel: float = 0.0) -> ProgressSeries:
    return ProgressSeries(
        tuple(points), rel_uncertainty=rel, provenance=Provenance.SIMULATED, coload_threshold_cores=threshold
    )


def test_the_band_widens_to_either_rate_while_part_of_the_run_was_disturbed() -> None:
    points = trace(loaded=set(range(60, 100)))  # quiet, then busy from step 60 on
    plan = Plan(steps=400)
    quiet_view = make_forecast(series(points, threshold=None), plan)  # co-load unknown: as before
    busy_view = make_forecast(series(points), plan)
    assert not isinstance(quiet_view, NotYet) and not isinstance(busy_view, NotYet)
    assert busy_view.energy_j == quiet_view.energy_j  # the point estimate is the same
    spent = points[-1].energy_j
    # the rest of the run (300 steps) at 10 J (quiet again) or 30 J (still busy): both inside
    assert busy_view.energy_low_j <= spent + 300 * 10.0 and busy_view.energy_high_j >= spent + 300 * 30.0
    assert busy_view.energy_high_j - busy_view.energy_low_j > quiet_view.energy_high_j - quiet_view.energy_low_j
    assert busy_view.disturbed_share > 0 and quiet_view.disturbed_share == 0
    assert any("busy machine now" in n and "1.50 CPUs" in n for n in busy_view.notes)


def test_the_forecast_withholds_itself_while_the_whole_run_is_disturbed() -> None:
    points = trace(loaded=set(range(100)))
    outcome = make_forecast(series(points), Plan(steps=400))
    assert isinstance(outcome, NotYet)
    assert "busy through the whole run so far" in outcome.reason and "1.50 CPUs" in outcome.reason
    assert not isinstance(make_forecast(series(points, threshold=2.0), Plan(steps=400)), NotYet)


def test_the_lower_bound_is_never_below_the_energy_already_spent() -> None:
    """Late in a run, with wide meter bands: the band's low end used to fall to spent x (1 -
    the meters' band), below what the run had already used."""
    points = trace(loaded=set(), n=95)
    f = make_forecast(series(points, threshold=None, rel=0.5), Plan(steps=100))
    assert not isinstance(f, NotYet)
    assert f.energy_low_j >= f.energy_spent_j == points[-1].energy_j
    assert f.duration_low_s >= points[-1].t_s
