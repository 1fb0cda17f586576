"""Carbon-aware timing of a real batch: `greenai schedule run --policy carbon --forecast ...`
with a forecast file or a provider; a failing or stale forecast never loses a job."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from greenai.carbon.grid_forecast_source import (
    FileForecaster,
    ResilientForecaster,
    forecaster_from_spec,
)
from greenai.errors import CarbonDataError, ConfigError
from greenai.ledger.jobs import batch_jobs
from greenai.ledger.store import Ledger

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def job_callables_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


def write_forecast(path: Path, start_s: float, values: list[float], step_s: float = 1.0) -> Path:
    rows = [f"{datetime.fromtimestamp(start_s + i * step_s, UTC):%Y-%m-%d %H:%M:%S},{v}" for i, v in enumerate(values)]
    path.write_text("Time,Carbon Intensity\n" + "\n".join(rows) + "\n")
    return path


def test_a_forecast_file_is_read_from_the_slot_holding_now(tmp_path: Path) -> None:
    start = float(int(time.time()))
    f = forecaster_from_spec(f"trace:{write_forecast(tmp_path / 'f.csv', start, [5, 6, 7, 8, 9])}")
    assert isinstance(f, FileForecaster)
    rows = f.forecast(start + 1.5, 2.0)
    assert rows[:, 0].tolist() == [start + 1, start + 2, start + 3] and rows[:, 1].tolist() == [6, 7, 8]
    # past the file's end the last rows are all there is (the last value continues)
    assert f.forecast(start + 4.2, 100.0)[:, 1].tolist() == [9]


def test_a_stale_or_missing_forecast_is_refused_before_any_job_runs(tmp_path: Path) -> None:
    old = write_forecast(tmp_path / "old.csv", time.time() - 3600, [100, 200, 300])
    with pytest.raises(CarbonDataError, match=r"covers .* but it is now .*refresh the forecast"):
        forecaster_from_spec(str(old), now_s=time.time())
    with pytest.raises(ConfigError, match="not found"):
        forecaster_from_spec("trace:nowhere.csv")
    with pytest.raises(ConfigError, match="trace:FILE.csv or MODULE:FUNCTION"):
        forecaster_from_spec("tomorrow")
    with pytest.raises(ConfigError, match="no callable 'missing'"):
        forecaster_from_spec("tests.schedule.sched_jobs:missing")


def test_a_failing_provider_degrades_to_start_now_and_says_so_once() -> None:
    calls: list[float] = []

    def provider(now_s: float, horizon_s: float) -> list[tuple[float, float]]:
        calls.append(now_s)
        raise TimeoutError("api down")

    heard: list[str] = []
    from greenai.carbon.grid_forecast import ProviderForecaster

    f = ResilientForecaster(ProviderForecaster(provider, name="api"), heard.append)
    for now in (10.0, 20.0):
        rows = f.forecast(now, 60.0)
        assert rows[0, 0] == now and np.all(rows[:, 1] == rows[0, 1])  # flat: no start is better
    assert len(calls) == 2 and len(heard) == 1
    assert "api failed: TimeoutError: api down" in heard[0] and "as they come" in heard[0]


def test_schedule_run_waits_for_the_clean_hours_of_the_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from greenai.cli.schedule_run import run_jobs

    now = float(int(time.time()))
    # dirty for the next 3 s, clean after: the job (1 s, 60 s of slack) should wait
    forecast = write_forecast(tmp_path / "forecast.csv", now - 2, [500.0] * 5 + [50.0] * 120)
    job_file = tmp_path / "jobs.toml"
    job_file.write_text(
        '[[job]]\nid = "flex"\ncallable = "sched_jobs:spin"\nkwargs = { seconds = 0.1 }\n'
        "slack = 60\npredicted_duration_s = 1\n"
    )
    ledger_path = tmp_path / "l.db"
    started = time.time()
    code = run_jobs(
        job_file,
        ledger=ledger_path,
        json_out=True,
        batch_id="green",
        policy="carbon",
        forecast=f"trace:{forecast}",
        intensity=f"trace:{forecast}",
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["completed"] == 1
    with Ledger(ledger_path) as ledger:
        (row,) = batch_jobs(ledger, "green")
    assert row.status == "completed" and row.started_at >= now + 3  # held back past the dirty slots
    assert row.started_at - started < 30  # and started once it was clean, well within its slack
    # accounted with the same time series: the clean hours' intensity
    assert data["outcomes"][0]["carbon_g"] == pytest.approx(row.energy_j / 3.6e6 * 50.0, rel=0.05)


def test_schedule_run_policy_options_are_checked(tmp_path: Path) -> None:
    from greenai.cli.schedule_run import run_jobs

    job_file = tmp_path / "jobs.toml"
    job_file.write_text('[[job]]\nid = "x"\ncallable = "sched_jobs:spin"\n')
    with pytest.raises(ConfigError, match="--policy carbon needs --forecast"):
        run_jobs(job_file, ledger=tmp_path / "l.db", policy="carbon")
    with pytest.raises(ConfigError, match="--forecast is used only by --policy carbon"):
        run_jobs(job_file, ledger=tmp_path / "l.db", forecast="trace:f.csv")
    with pytest.raises(ConfigError, match="got 'oracle'"):
        run_jobs(job_file, ledger=tmp_path / "l.db", policy="oracle")
    with pytest.raises(ConfigError, match="--policy budget needs --max-power-w"):
        run_jobs(job_file, ledger=tmp_path / "l.db", policy="carbon+budget", forecast="trace:f.csv")
    with pytest.raises(ConfigError, match="--max-power-w needs --policy budget"):
        run_jobs(job_file, ledger=tmp_path / "l.db", max_power_w=100.0)
    stale = write_forecast(tmp_path / "stale.csv", time.time() - 600, [1.0, 2.0])
    with pytest.raises(CarbonDataError, match="refresh the forecast"):
        run_jobs(job_file, ledger=tmp_path / "l.db", policy="carbon", forecast=f"trace:{stale}")
    with Ledger(tmp_path / "l.db") as ledger:  # nothing ran, nothing was recorded
        assert batch_jobs(ledger, "any") == []


def test_a_transient_failure_keeps_the_last_good_forecast_and_says_so_once_per_streak() -> None:
    from greenai.carbon.grid_forecast import ProviderForecaster

    answers: list[object] = ["ok", RuntimeError("rate limited at 11"), RuntimeError("rate limited at 12"), "ok"]

    def provider(now_s: float, horizon_s: float) -> list[tuple[float, float]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return [(0.0, 300.0), (10.0, 50.0), (20.0, 50.0), (30.0, 400.0)]

    heard: list[str] = []
    f = ResilientForecaster(ProviderForecaster(provider, name="api"), heard.append)
    assert f.forecast(5.0, 30.0)[:, 1].tolist() == [300, 50, 50, 400]
    # failing: the last good forecast, from the slot holding now (not a flat curve that
    # would start every held-back job at once)
    assert f.forecast(12.0, 30.0)[:, 1].tolist() == [50, 50, 400]
    assert f.forecast(25.0, 30.0)[:, 1].tolist() == [50, 400]
    assert len(heard) == 1 and "rate limited at 11" in heard[0] and "last good forecast" in heard[0]
    assert f.forecast(26.0, 30.0)[:, 1].tolist() == [300, 50, 50, 400]  # back
    assert heard[1] == "forecast api is back"


def test_a_hanging_provider_times_out_and_a_short_answer_is_accepted() -> None:
    import threading

    from greenai.carbon.grid_forecast import ProviderForecaster

    release = threading.Event()

    def hangs(now_s: float, horizon_s: float) -> list[tuple[float, float]]:
        release.wait(5.0)
        return [(now_s, 1.0)]

    f = ResilientForecaster(ProviderForecaster(hangs, name="slow"), timeout_s=0.1)
    started = time.perf_counter()
    assert f.forecast(0.0, 60.0)[:, 1].tolist() == [0.0, 0.0]  # flat: no good forecast yet
    assert f.forecast(1.0, 60.0)[:, 1].tolist() == [0.0, 0.0]  # the first call is still out
    assert time.perf_counter() - started < 2.0 and f.failing
    release.set()
    # a source that publishes less than the horizon is taken as is
    short = ProviderForecaster(lambda now, h: [(now, 80.0), (now + 1800, 90.0)], name="short")
    assert short.forecast(0.0, 12 * 3600.0)[:, 1].tolist() == [80.0, 90.0]


def test_a_forecast_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    start = float(int(time.time()))
    path = write_forecast(tmp_path / "f.csv", start, [5, 6, 7])
    f = forecaster_from_spec(f"trace:{path}")
    assert f.forecast(start, 1.0)[:, 1].tolist() == [5, 6]
    write_forecast(path, start, [50, 60, 70, 80])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert f.forecast(start, 1.0)[:, 1].tolist() == [50, 60]
    path.write_text("Time,Carbon Intensity\nnot a time,1\n")  # a broken refresh
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    with pytest.raises(CarbonDataError):
        f.forecast(start, 1.0)


def test_schedule_run_says_which_job_waits_until_when_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A carbon-aware batch was silent while it held a job back for minutes."""
    from greenai.cli.schedule_run import run_jobs

    now = float(int(time.time()))
    forecast = write_forecast(tmp_path / "forecast.csv", now - 2, [500.0] * 5 + [50.0] * 120)
    job_file = tmp_path / "jobs.toml"
    job_file.write_text(
        '[[job]]\nid = "flex"\ncallable = "sched_jobs:spin"\nkwargs = { seconds = 0.1 }\n'
        "slack = 60\npredicted_duration_s = 1\n"
    )
    code = run_jobs(job_file, ledger=tmp_path / "l.db", json_out=True, policy="carbon", forecast=f"trace:{forecast}")
    assert code == 0
    err = " ".join(capsys.readouterr().err.split())
    start = time.strftime("%H:%M", time.localtime(now + 3))
    assert f"job flex deferred until {start} (in " in err
    assert "forecast 50 gCO2e/kWh over its run, 500 if started now)" in err
    assert "job flex starts after waiting" in err


def test_a_power_budget_says_why_it_holds_a_job_back() -> None:
    from greenai.schedule.jobs import Job
    from greenai.schedule.policies import Candidate, Fifo, Node, PowerBudget, compose, why_deferred

    class View:
        def node(self, name: str | None) -> Node:
            return Node("here")

        def energy_used_j(self, t0_s: float, t1_s: float) -> float:
            return 0.0

    running = Candidate(Job("small", command=("true",)), 10.0, 900.0, 10.0, running=True)  # 90 W, pinned
    held = Candidate(Job("big", command=("true",), slack_s=100.0), 10.0, 500.0, 10.0)  # 50 W more
    for policy in (PowerBudget(max_power_w=100.0), compose(Fifo(), PowerBudget(max_power_w=100.0))):
        assert [c.job_id for c in policy.select(0.0, View(), [running, held])] == ["small"]
        assert why_deferred(policy, 0.0, held).startswith("by the power budget (100 W)")


def test_a_shipped_trace_is_a_forecast_replayed_by_time_of_year() -> None:
    from greenai.carbon.grid_forecast_source import ReplayForecaster
    from greenai.carbon.trace import shipped_trace

    f = forecaster_from_spec("trace:gb_2020", now_s=time.time())
    assert isinstance(f, ReplayForecaster) and "gb_2020" in f.name
    now = time.time()
    rows = f.forecast(now, 3 * 3600.0)
    assert rows[0, 0] <= now < rows[1, 0] and rows[-1, 0] >= now + 3 * 3600
    assert np.all(np.diff(rows[:, 0]) == 900.0)
    trace = shipped_trace("gb_2020")
    assert rows[:, 1].tolist() == [trace.intensity_at(t) for t in rows[:, 0]]
    with pytest.raises(CarbonDataError, match="unknown shipped trace"):
        from greenai.carbon.grid_forecast_source import ReplayForecaster as R

        R("de_2020")
