"""The simulator: FIFO timing, deadlines, the oracle ordering, budgets, placement, job files."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from greenai.carbon.grid_forecast import (
    IntensitySeries,
    PersistenceForecaster,
    SeasonalForecaster,
)
from greenai.errors import CarbonDataError, ConfigError
from greenai.schedule.jobs import Job
from greenai.schedule.policies import (
    CarbonAwareTiming,
    EnergyAwarePlacement,
    Fifo,
    Node,
    Oracle,
    PowerBudget,
    compose,
    policy_from_name,
)
from greenai.schedule.simulate import compare, simulate
from greenai.schedule.trace_jobs import hourly_jobs, load_jobs

STEP, DAY = 1800.0, 86_400.0


def daily_trace(days: int = 24, noise: float = 0.0) -> IntensitySeries:
    t = np.arange(int(days * DAY / STEP)) * STEP
    v = 200 - 100 * np.cos(((t % DAY) / 3600 - 3) / 24 * 2 * np.pi)
    if noise:
        v = v + np.random.default_rng(0).normal(0, noise, len(v))
    return IntensitySeries(t, np.maximum(v, 0), "daily")


def jobs_from(day: int, days: float = 3, **kw) -> list[Job]:
    return hourly_jobs(day * DAY, days, **kw)


def test_fifo_starts_at_arrival_and_carbon_is_the_integral():
    trace = daily_trace()
    jobs = [Job("a", arrival_s=10 * DAY + 1000.0, predicted_duration_s=5400.0, predicted_energy_j=5.4e6)]
    rec = simulate(jobs, trace, Fifo()).records[0]
    assert (rec.start_s, rec.end_s, rec.wait_s) == (jobs[0].arrival_s, jobs[0].arrival_s + 5400.0, 0.0)
    expected = 1000.0 * trace.integral(rec.start_s, rec.end_s) / 3.6e6  # 1 kW
    assert rec.carbon_g == pytest.approx(float(expected)) and rec.energy_j == 5.4e6


def test_oracle_beats_forecast_beats_fifo_and_no_deadline_is_missed():
    trace = daily_trace(noise=8.0)
    jobs = jobs_from(14, days=4)
    results = [
        simulate(jobs, trace, p)
        for p in (
            Fifo(),
            CarbonAwareTiming(PersistenceForecaster(trace, mode="last"), name="flat"),
            CarbonAwareTiming(SeasonalForecaster(trace), name="carbon"),
            Oracle(trace),
        )
    ]
    fifo, flat, carbon, oracle = (r.summary for r in results)
    assert oracle.carbon_g <= carbon.carbon_g < fifo.carbon_g
    assert flat.carbon_g == pytest.approx(fifo.carbon_g, rel=0.02)  # a flat forecast mostly runs at once
    assert all(r.summary.deadline_misses == 0 for r in results)
    assert all(r.deadline_met and r.end_s <= r.deadline_s + 1e-3 for res in results for r in res.records)
    share = {c.summary.policy: c.share_of_oracle_saving for c in compare(results)}
    assert share["oracle"] == 1.0 and share["carbon"] > 0.8  # a regular cycle is predictable


def test_oracle_finds_the_known_trough():
    trace = daily_trace()
    jobs = [Job("a", arrival_s=10 * DAY + 20 * 3600, slack_s=12 * 3600, predicted_duration_s=3600.0)]
    rec = simulate(jobs, trace, Oracle(trace)).records[0]
    assert rec.start_s == pytest.approx(11 * DAY + 2.5 * 3600)  # centred on the 03:00 trough


def test_interruptible_jobs_pause_and_still_finish():
    trace = daily_trace()
    jobs = jobs_from(10, days=1, duration_s=3 * 3600, slack_s=9 * 3600, interruptible=True)
    res = simulate(jobs, trace, Oracle(trace))
    assert res.summary.deadline_misses == 0
    assert any(r.pauses > 0 for r in res.records)
    assert sum(r.energy_j for r in res.records) == pytest.approx(len(jobs) * 3 * 3600 * 1000.0)
    assert res.summary.carbon_g < simulate(jobs, trace, Fifo()).summary.carbon_g


def test_power_budget_defers_but_completes_every_job():
    trace = daily_trace()
    jobs = jobs_from(10, days=1, duration_s=3 * 3600, slack_s=2 * 3600)  # 3 overlap under FIFO
    capped = simulate(jobs, trace, compose(Fifo(), PowerBudget(max_power_w=2000.0)), power_w=1000.0)
    assert len(capped.records) == len(jobs) and all(r.end_s > r.start_s for r in capped.records)
    assert capped.summary.mean_wait_s > 0
    assert _peak_power_w(capped) <= 2000.0 + 1e-6 < _peak_power_w(simulate(jobs, trace, Fifo()))
    energy = simulate(jobs, trace, compose(Fifo(), PowerBudget(max_energy_j=1.5 * 3.6e6, window_s=3600.0)))
    assert energy.summary.jobs == len(jobs) and energy.summary.mean_wait_s > capped.summary.mean_wait_s


def _peak_power_w(result) -> float:
    """Highest cluster power over time, rebuilt from the job records (jobs never paused)."""
    runs = [(r.start_s, r.end_s, r.energy_j / (r.end_s - r.start_s)) for r in result.records]
    edges = sorted({t for a, b, _ in runs for t in (a, b)})
    return max(sum(p for s, e, p in runs if s <= a and e >= b) for a, b in itertools.pairwise(edges))


def test_placement_uses_the_cheapest_node_and_its_energy():
    trace = daily_trace()
    jobs = jobs_from(10, days=0.25)
    nodes = [Node("old", 1.0), Node("new", 0.5, slots=1)]
    res = simulate(jobs, trace, EnergyAwarePlacement(nodes))
    assert {r.node for r in res.records} == {"new"}  # one-hour jobs every hour: never two at once
    assert all(r.energy_j == pytest.approx(0.5 * 3.6e6) for r in res.records)
    busy = simulate(jobs_from(10, days=0.25, duration_s=2 * 3600), trace, EnergyAwarePlacement(nodes))
    assert {r.node for r in busy.records} == {"old", "new"}


def test_trace_too_short_is_a_clear_error():
    trace = daily_trace(days=2)
    with pytest.raises(CarbonDataError, match="longer trace"):
        simulate(jobs_from(1, days=1, slack_s=DAY), trace, Oracle(trace))


def test_job_files(tmp_path):
    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text(
        "job_id,arrival,duration_s,slack_s,energy_j,interruptible\n"
        "b,2020-01-01T02:00:00,3600,0,,false\na,0,1800,60,900000,yes\n"
    )
    jobs = load_jobs(csv_file)
    assert [j.job_id for j in jobs] == ["a", "b"] and jobs[0].interruptible
    assert jobs[1].arrival_s == 1577844000.0 and jobs[1].predicted_energy_j is None
    js = tmp_path / "jobs.json"
    js.write_text(json.dumps({"jobs": [{"job_id": "x", "arrival": 5, "duration_s": 10}]}))
    assert load_jobs(js)[0].predicted_duration_s == 10
    missing = tmp_path / "missing.csv"
    missing.write_text("job_id,arrival\na,0\n")
    with pytest.raises(ConfigError, match="lacks column.*duration_s"):
        load_jobs(missing)
    blank = tmp_path / "blank.json"
    blank.write_text(json.dumps([{"job_id": "a", "duration_s": 5}]))
    with pytest.raises(ConfigError, match=r"job #0: missing field\(s\) arrival"):
        load_jobs(blank)
    bad = tmp_path / "bad.csv"
    bad.write_text("job_id,arrival,duration_s\na,0,-3\n")
    with pytest.raises(ConfigError, match="line 2: duration_s '-3'"):
        load_jobs(bad)


def test_power_budget_does_not_starve_a_big_job_behind_a_stream_of_small_ones():
    trace = daily_trace(days=4)
    small = [
        Job(f"s{i}", arrival_s=i * 3600.0, predicted_duration_s=7200.0, predicted_energy_j=200 * 7200.0)
        for i in range(48)
    ]  # always one running, the next overlapping it: 400 W at most
    big = Job("big", arrival_s=1800.0, predicted_duration_s=3600.0, predicted_energy_j=900 * 3600.0)
    res = simulate([*small, big], trace, PowerBudget(max_power_w=1000.0))
    start = {r.job_id: r.start_s for r in res.records}
    assert start["big"] == pytest.approx(7200.0)  # as soon as the running small job ends
    assert _peak_power_w(res) <= 1000.0 + 1e-6 and res.summary.jobs == 49


def test_a_waiting_job_never_takes_the_slot_of_a_running_one():
    t = np.arange(int(DAY / STEP)) * STEP
    v = np.where(t < 7200, 200.0, np.where(t < 3 * 3600, 100.0, 300.0))  # cheapest 02:00-03:00
    trace = IntensitySeries(t, v, "step")
    waits = Job("b", arrival_s=0.0, slack_s=7200.0, predicted_duration_s=3600.0)
    urgent = Job("a", arrival_s=1800.0, predicted_duration_s=4 * 3600.0)  # runs 00:30-04:30
    res = simulate([waits, urgent], trace, Oracle(trace), nodes=[Node("n", slots=1)])
    rec = {r.job_id: r for r in res.records}
    assert rec["a"].start_s == 1800.0 and rec["a"].end_s == 1800.0 + 4 * 3600
    assert rec["b"].start_s >= rec["a"].end_s  # one slot: b waits, it does not run beside a


@pytest.mark.parametrize("delay_s", [0.0, STEP])
def test_carbon_decisions_never_use_data_published_after_the_decision(delay_s):
    base = daily_trace(noise=15.0)
    cut = 16 * DAY + 5 * 3600 + 900  # rewrite every row after this instant
    altered = base.values.copy()
    altered[base.times_s > cut - delay_s] = altered[base.times_s > cut - delay_s][::-1] * 2.0
    other = IntensitySeries(base.times_s, altered, "altered")
    jobs = jobs_from(14, days=4)
    runs = [simulate(jobs, trace, policy_from_name("carbon", trace=trace, delay_s=delay_s)) for trace in (base, other)]
    starts = [{r.job_id: r.start_s for r in run.records} for run in runs]
    before = {j for j, t in starts[0].items() if t <= cut}
    assert len(before) > 40 and before == {j for j, t in starts[1].items() if t <= cut}
    assert all(starts[0][j] == starts[1][j] for j in before)  # same decisions up to the cut
    assert starts[0] != starts[1]  # and the rewritten future does change later ones
    assert all(run.summary.deadline_misses == 0 for run in runs)
