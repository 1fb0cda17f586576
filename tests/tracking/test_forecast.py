"""Forecast: the math on synthetic traces (exact, fast), the trace recorder on a real
accumulator, and the tracker end to end on simulated meters following a step schedule."""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from greenai.carbon import ConstantIntensity
from greenai.carbon.accounting import CarbonAccount
from greenai.config import Config
from greenai.ledger.run_forecasts import run_forecasts
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceEnergy, DeviceKind, Provenance
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.accumulator import RunAccumulator
from greenai.tracking.forecast import NotYet, Plan, make_forecast, t975
from greenai.tracking.progress import (
    Occurrence,
    ProgressRecorder,
    ProgressSeries,
    TracePoint,
)
from greenai.tracking.tracker import Tracker

# -- a synthetic run: steps and evaluations laid out in time, sampled like the sampler does --


@dataclass
class SyntheticRun:
    points: list[TracePoint]
    occurrences: list[tuple[float, float, float]]  # (start step, energy, duration)
    step_done: list[TracePoint]  # the state when each step completed (index 0: the start)
    epoch_ends: tuple[int, ...]
    energy_j: float
    duration_s: float

    def at_step(self, step: int, rel_uncertainty: float = 0.0) -> ProgressSeries:
        """What the recorder holds at the first sample after step `step` completed."""
        done = self.step_done[step]
        cut = [p for p in self.points if p.t_s < done.t_s]
        cut += [p for p in self.points if p.t_s >= done.t_s][:1]
        occ = tuple(Occurrence("eval", s, 1, e, d) for s, e, d in self.occurrences if s < step)
        ends = tuple(float(e) for e in self.epoch_ends if e < step)
        return ProgressSeries(tuple(cut), occ, ends, rel_uncertainty, Provenance.SIMULATED)


def simulate(
    step_energy_j,  # step index (1-based) -> energy of that step (100 W power)
    planned: int,
    eval_every: int = 0,
    eval_j: float = 0.0,
    eval_w: float = 400.0,
    epoch_ends: tuple[int, ...] = (),
    tick_s: float = 0.05,
    intensity_g_per_j: float = 1e-4,
) -> SyntheticRun:
    """Steps at 100 W (duration = energy / 100 W), evaluations at `eval_w`, after step k when
    k % eval_every == 0 or k ends an epoch; sampled every `tick_s` like the sampler does."""
    power_w = 100.0
    segments = []  # (kind, duration, power, step)
    for k in range(1, planned + 1):
        segments.append(("step", step_energy_j(k) / power_w, power_w, k))
        if (eval_every and k % eval_every == 0) or (not eval_every and k in epoch_ends and eval_j):
            segments.append(("eval", eval_j / eval_w, eval_w, k))
    points, occurrences = [], []
    done = [TracePoint(0.0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)]
    t = e = e_eval = t_eval = 0.0
    steps = epochs = 0
    next_tick = tick_s
    for kind, dur, p, k in segments:
        end = t + dur
        while next_tick <= end:
            dt = next_tick - t
            in_eval = kind == "eval"
            energy = e + p * dt
            points.append(
                TracePoint(
                    next_tick,
                    steps,
                    epochs,
                    energy,
                    e_eval + (p * dt if in_eval else 0.0),
                    t_eval + (dt if in_eval else 0.0),
                    energy * intensity_g_per_j,
                    0.0,
                )
            )
            next_tick += tick_s
        e += p * dur
        if kind == "eval":
            e_eval += p * dur
            t_eval += dur
            occurrences.append((k, p * dur, dur))
        else:
            steps = k
            epochs += k in epoch_ends
            done.append(TracePoint(end, steps, epochs, e, e_eval, t_eval, e * intensity_g_per_j, 0.0))
        t = end
    points.append(TracePoint(t, steps, epochs, e, e_eval, t_eval, e * intensity_g_per_j, 0.0))
    return SyntheticRun(points, occurrences, done, epoch_ends, e, t)


def warmup_then_steady(k: int) -> float:
    return 30.0 if k <= 10 else 10.0  # 10 slow warm-up steps at 3x the steady cost


def test_no_forecast_before_warm_up_fraction_or_without_plan():
    run = simulate(warmup_then_steady, planned=300, eval_every=25, eval_j=125.0)
    early = make_forecast(run.at_step(12), Plan(steps=300))
    assert isinstance(early, NotYet) and "below the warm-up fraction" in early.reason
    no_plan = make_forecast(run.at_step(60), Plan())
    assert isinstance(no_plan, NotYet) and "no plan" in no_plan.reason
    assert isinstance(make_forecast(ProgressSeries(()), Plan(steps=300)), NotYet)


def test_forecast_at_10_percent_excludes_warm_up_and_models_evaluation():
    run = simulate(warmup_then_steady, planned=300, eval_every=25, eval_j=125.0)
    f = make_forecast(run.at_step(30), Plan(steps=300))
    assert not isinstance(f, NotYet)
    assert f.progress == pytest.approx(0.10, abs=0.004)
    # final: 10 x 30 + 290 x 10 + 12 evaluations x 125 = 4700 J
    assert run.energy_j == pytest.approx(4700.0)
    assert abs(f.energy_j / run.energy_j - 1) < 0.05
    assert f.energy_low_j <= run.energy_j <= f.energy_high_j
    assert f.steady_energy_per_step_j == pytest.approx(10.0, rel=0.01)
    assert f.warmup_steps >= 10
    (ev,) = f.periodic
    assert ev.phase == "eval" and ev.period_steps == 25 and ev.remaining == 11
    assert ev.energy_per_occurrence_j == pytest.approx(125.0)
    assert f.duration_low_s <= run.duration_s <= f.duration_high_s
    assert abs(f.duration_s / run.duration_s - 1) < 0.05
    # carbon follows energy at the trace's 1e-4 g/J
    assert f.carbon_g == pytest.approx(f.energy_j * 1e-4, rel=1e-6)
    # the epoch-style baseline (energy so far / progress) is far off on the same data
    spent = run.at_step(30).points[-1].energy_j
    assert abs(spent / 0.10 / run.energy_j - 1) > 0.20


def test_band_narrows_as_the_run_goes_and_keeps_the_final_value():
    run = simulate(warmup_then_steady, planned=300, eval_every=25, eval_j=125.0)
    widths = []
    for step in (30, 90, 150, 240):
        f = make_forecast(run.at_step(step), Plan(steps=300))
        assert f.energy_low_j <= run.energy_j <= f.energy_high_j
        assert abs(f.energy_j / run.energy_j - 1) < 0.01
        widths.append(f.energy_high_j - f.energy_low_j)
    assert all(w <= widths[0] for w in widths) and widths[-1] < widths[0] / 2


def test_the_band_allows_for_the_rest_of_the_run_drifting(monkeypatch: pytest.MonkeyPatch) -> None:
    from greenai.tracking import forecast

    run = simulate(lambda k: 10.0, planned=300)  # steady: no warm-up, no periodic phase
    f = make_forecast(run.at_step(30), Plan(steps=300))
    remaining_j = f.energy_j - f.energy_spent_j
    assert remaining_j == pytest.approx(270 * 10.0, rel=0.01)
    # a run that turns 15 % dearer after the forecast is still inside its statistical band
    assert abs(f.energy_spent_j + 1.15 * remaining_j - f.energy_j) <= f.energy_stat_band_j
    # the drift term is DRIFT_REL x the remaining energy, added in quadrature to the rest
    monkeypatch.setattr(forecast, "DRIFT_REL", 0.0)
    no_drift = make_forecast(run.at_step(30), Plan(steps=300))
    assert no_drift.energy_stat_band_j < 0.5 * f.energy_stat_band_j
    assert f.energy_stat_band_j == pytest.approx(math.hypot(no_drift.energy_stat_band_j, 0.20 * remaining_j))
    assert no_drift.energy_j == f.energy_j  # the point forecast does not change


def test_meter_band_is_reported_apart_and_widens_the_interval():
    run = simulate(warmup_then_steady, planned=300, eval_every=25, eval_j=125.0)
    plain = make_forecast(run.at_step(90), Plan(steps=300))
    metered = make_forecast(run.at_step(90, rel_uncertainty=0.10), Plan(steps=300))
    assert metered.energy_meter_band_j == pytest.approx(0.10 * metered.energy_j)
    assert metered.energy_stat_band_j == pytest.approx(plain.energy_stat_band_j)
    assert metered.energy_high_j == pytest.approx(
        metered.energy_j + metered.energy_stat_band_j + metered.energy_meter_band_j
    )
    assert plain.energy_meter_band_j == 0.0


def test_noisy_steps_interval_covers_the_final_value_most_of_the_time():
    covered, errors = 0, []
    for seed in range(20):
        rng = random.Random(seed)
        noise = [rng.gauss(1.0, 0.10) for _ in range(401)]
        run = simulate(
            lambda k, noise=noise: (25.0 if k <= 10 else 10.0) * noise[k], planned=400, eval_every=25, eval_j=60.0
        )
        f = make_forecast(run.at_step(40), Plan(steps=400))
        errors.append(abs(f.energy_j / run.energy_j - 1))
        covered += f.energy_low_j <= run.energy_j <= f.energy_high_j
    assert covered >= 18  # nominal 95 %
    assert max(errors) < 0.05


def test_epochs_of_unequal_length_with_evaluation_at_each_epoch_end():
    # a curriculum: epochs of 12, 16, ..., 48 steps (300 in all), evaluated at each end
    lengths = list(range(12, 49, 4))
    ends = tuple(sum(lengths[: i + 1]) for i in range(len(lengths)))
    run = simulate(warmup_then_steady, planned=300, eval_j=100.0, epoch_ends=ends)
    assert run.energy_j == pytest.approx(10 * 30 + 290 * 10 + 10 * 100)
    f = make_forecast(run.at_step(31), Plan(steps=300, epochs=10))  # 10 %: two epochs done
    assert abs(f.energy_j / run.energy_j - 1) < 0.01
    assert f.energy_low_j <= run.energy_j <= f.energy_high_j
    (ev,) = f.periodic
    assert ev.remaining == 8 and any("once per epoch" in n for n in f.notes)
    # a fixed period in steps (16, the mean gap so far) would expect 17 more, not 8
    assert ev.period_steps == pytest.approx(16.0)
    # CarbonTracker's rule (first epoch x epochs) is far off: its first epoch is short and warm
    first_epoch_j = next(p.energy_j for p in run.points if p.epochs >= 1)
    assert abs(first_epoch_j * len(lengths) / run.energy_j - 1) > 0.15


def test_evaluation_every_k_steps_is_not_mistaken_for_per_epoch():
    ends = tuple(range(64, 641, 64))  # 10 epochs of 64 steps, evaluation every 40 steps
    run = simulate(warmup_then_steady, planned=640, eval_every=40, eval_j=80.0, epoch_ends=ends)
    f = make_forecast(run.at_step(65), Plan(steps=640, epochs=10))
    (ev,) = f.periodic
    assert ev.period_steps == 40 and ev.remaining == 15
    assert abs(f.energy_j / run.energy_j - 1) < 0.01


def test_planned_epochs_converts_with_mean_steps_per_epoch():
    ends = tuple(range(30, 301, 30))  # 10 equal epochs of 30 steps
    run = simulate(warmup_then_steady, planned=300, eval_j=50.0, epoch_ends=ends)
    assert isinstance(make_forecast(run.at_step(29), Plan(epochs=10)), NotYet)  # no epoch done
    f = make_forecast(run.at_step(31), Plan(epochs=10))
    assert f.planned_steps == pytest.approx(300.0, abs=1.0)
    assert abs(f.energy_j / run.energy_j - 1) < 0.05
    assert any("steps per epoch" in n for n in f.notes)


def test_student_t_quantiles():
    assert t975(1) == pytest.approx(12.706)
    assert t975(10) == pytest.approx(2.228)
    assert t975(60) == pytest.approx(2.000, abs=0.005)
    assert t975(1e6) == pytest.approx(1.96, abs=1e-3)


# -- the recorder, on a real accumulator fed with synthetic readings and phase events -------


def test_recorder_logs_evaluation_occurrences_and_bounds_memory():
    counters = {"steps": 0.0}
    account = CarbonAccount(ConstantIntensity(100.0, "test", "test"))
    acc = RunAccumulator(account)
    rec = ProgressRecorder(counters.get, max_points=64)
    tick_ns = 10_000_000  # 10 ms at 100 W: 1 J per tick
    t_ns, energy = 0, 0.0
    for i in range(1, 2001):
        events = []
        if i % 100 == 50:  # evaluation for ticks 50..59 of each hundred, entered mid-tick
            events.append((t_ns + tick_ns // 2, "eval", True))
        if i % 100 == 60:
            events.append((t_ns + tick_ns // 2, None, False))
        energy += 1.0
        acc.tick(
            [DeviceEnergy("gpu:0", DeviceKind.GPU, energy, Provenance.SIMULATED, 0.0)],
            t_ns,
            t_ns + tick_ns,
            t_ns / 1e9,
            (t_ns + tick_ns) / 1e9,
            events,
        )
        t_ns += tick_ns
        if not 50 <= i % 100 < 60:
            counters["steps"] += 1
        rec.observe(t_ns / 1e9, acc)
    series = rec.series()
    assert len(series.points) <= 64
    gaps = [b.t_s - a.t_s for a, b in pairwise(series.points[:-1])]
    assert max(gaps) == pytest.approx(min(gaps))  # evenly thinned
    assert series.points[-1].energy_j == pytest.approx(2000.0)
    assert series.points[-1].periodic_energy_j == pytest.approx(20 * 10.0)  # 10 ticks x 20 evals
    occ = series.occurrences
    assert len(occ) == 20 and all(o.phase == "eval" and o.count == 1 for o in occ)
    assert [o.energy_j for o in occ] == pytest.approx([10.0] * 20)
    assert [o.duration_s for o in occ] == pytest.approx([0.1] * 20)
    starts = [o.start_steps for o in occ]
    assert [b - a for a, b in pairwise(starts)] == [90.0] * 19


# -- end to end: the tracker on a simulated meter that follows the loop's schedule ---------


class Schedule:
    """Segments (kind, seconds, watts) laid end to end; the meter's power follows them in time
    and the loop sleeps to the same deadlines, so each step's energy is fixed in advance."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.powers: list[float] = []
        self.origin: float | None = None  # the meter's start, the schedule's time zero

    def add(self, seconds: float, watts: float) -> float:
        self.ends.append((self.ends[-1] if self.ends else 0.0) + seconds)
        self.powers.append(watts)
        return self.ends[-1]

    def power_w(self, t_s: float) -> float:
        return self.powers[min(bisect_right(self.ends, t_s), len(self.powers) - 1)]

    def clock(self) -> float:
        now = time.monotonic()
        if self.origin is None:
            self.origin = now
        return now

    def wait_until(self, end_s: float) -> None:
        while (left := self.origin + end_s - time.monotonic()) > 0:
            time.sleep(left)


def config(tmp_path: Path) -> Config:
    return Config(ledger=tmp_path / "ledger.db", intensity="200", sample_hz=100.0, flush_interval_s=0.2).validate()


def test_tracker_forecast_at_10_percent_on_a_run_with_warm_up_and_evaluation(tmp_path):
    # 10 warm-up steps of 20 ms, then 8 ms steps at 100 W; 50 ms of evaluation at 300 W
    # every 20 steps
    planned, eval_every = 300, 20
    sched, plan = Schedule(), []
    for k in range(1, planned + 1):
        plan.append(("step", sched.add(0.020 if k <= 10 else 0.008, 100.0)))
        if k % eval_every == 0:
            plan.append(("eval", sched.add(0.050, 300.0)))
    meter = SimulatedMeter("gpu:0", DeviceKind.GPU, sched.power_w, clock=sched.clock)
    with Tracker("fc", config=config(tmp_path), meters=[meter], planned_steps=planned) as run:
        assert run.forecast() is None
        at_10 = None
        for kind, end_s in plan:
            if kind == "step":
                with run.phase("train_step"):
                    sched.wait_until(end_s)
                run.count("steps")
                if run.counters()["steps"] == planned // 10:
                    at_10 = run.forecast()  # from the samples so far (the last <= 10 ms old)
            else:
                with run.phase("eval"):
                    sched.wait_until(end_s)
    final = run.result.energy_j
    assert final == pytest.approx(sched.ends[-1] * 100 + 15 * 0.050 * 200, rel=0.03)
    assert at_10 is not None and at_10.progress == pytest.approx(0.10, abs=0.015)
    assert abs(at_10.energy_j / final - 1) < 0.05, at_10
    assert at_10.energy_low_j <= final <= at_10.energy_high_j
    # warm-up ends at a window boundary (several steps wide at 10 %, and noisy on a loaded
    # machine): it must cover most of the 10 slow steps and leave most of the run to the fit
    assert 7 <= at_10.warmup_steps <= 0.8 * at_10.steps_done
    assert at_10.periodic[0].phase == "eval" and at_10.periodic[0].period_steps == 20
    assert abs(at_10.duration_s / run.result.duration_s - 1) < 0.10
    assert at_10.carbon_g == pytest.approx(at_10.energy_j / 3.6e6 * 200, rel=0.02)
    # the naive extrapolation (spent / progress) is off by more than the target
    assert abs(at_10.energy_spent_j / at_10.progress / final - 1) > 0.05
    # the result carries the final forecast: at 100 % it is the measured total
    assert run.result.forecast.progress == pytest.approx(1.0)
    assert run.result.forecast.energy_j == pytest.approx(final, rel=0.01)
    with Ledger(tmp_path / "ledger.db") as ledger:
        env = ledger.get_run(run.run_id).start.environment
        stored = run_forecasts(ledger, run.run_id)
    assert env["plan"]["planned_steps"] == planned
    # the forecasts made as the run went are in the ledger, in order, judged on the same scale
    assert stored and all(a.made_at_s < b.made_at_s for a, b in pairwise(stored))
    assert all(0 < f.progress <= 1 and f.energy_low_j <= f.energy_j <= f.energy_high_j for f in stored)
    assert stored[-1].provenance == "simulated"
    assert abs(stored[-1].energy_j / final - 1) < 0.05


def test_tracker_forecast_without_plan_is_none_with_a_reason(tmp_path):
    meter = SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)
    with Tracker("noplan", config=config(tmp_path), meters=[meter]) as run:
        for _ in range(5):
            run.count("steps")
        time.sleep(0.05)
        assert run.forecast() is None
        assert "no plan" in run.forecast_reason
    assert run.result.forecast is None
