"""The online tuner: objective formulas, search order, and whole tunings of a synthetic job
(step time set by the knobs, energy from a simulated 100 W meter through a real Tracker and
a real SQLite ledger)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from greenai.config import Config
from greenai.errors import ConfigError
from greenai.ledger.store import Ledger
from greenai.ledger.tuning import read_trials
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.fake_nvml import FakeGpu, FakeNvml
from greenai.tracking.tracker import Tracker
from greenai.tune.knobs.base import BatchSizeKnob
from greenai.tune.knobs.gpu import GpuPowerLimitKnob
from greenai.tune.objectives import (
    Energy,
    EnergyWithinSlowdown,
    JoulesPerRequest,
    Time,
    TrialStats,
    ZeusCost,
    pool,
    zeus_cost,
)
from greenai.tune.search import (
    coordinate_descent,
    exhaustive,
    pass_size,
    successive_halving,
)
from greenai.tune.tuner import OnlineTuner

POWER_W = 100.0


def stats(
    index: int, energy_j: float | None, duration_s: float, work: float = 10.0, steps: tuple[float, ...] = (0.1,)
) -> TrialStats:
    return TrialStats(
        index,
        (("k", index),),
        iterations=len(steps),
        work=work,
        duration_s=duration_s,
        energy_j=energy_j,
        step_durations_s=steps,
    )


# -- objectives --------------------------------------------------------------------------------


def test_zeus_cost_formula() -> None:
    # eta E + (1 - eta) MAXPOWER T  (You et al., NSDI 2023, eq. 2)
    assert zeus_cost(200.0, 2.0, 0.5, 300.0) == pytest.approx(0.5 * 200 + 0.5 * 300 * 2)
    assert zeus_cost(200.0, 2.0, 1.0, 300.0) == pytest.approx(200.0)
    assert zeus_cost(200.0, 2.0, 0.0, 300.0) == pytest.approx(600.0)
    trials = [stats(0, 100.0, 1.0), stats(1, 60.0, 2.0)]  # per work: (10 J, 0.1 s), (6 J, 0.2 s)
    assert ZeusCost(0.5, 50.0).costs(trials) == pytest.approx([0.5 * 10 + 0.5 * 50 * 0.1, 0.5 * 6 + 0.5 * 50 * 0.2])
    assert ZeusCost(0.9, 50.0).costs(trials)[1] < ZeusCost(0.9, 50.0).costs(trials)[0]
    assert ZeusCost(0.1, 50.0).costs(trials)[0] < ZeusCost(0.1, 50.0).costs(trials)[1]
    with pytest.raises(ConfigError, match="eta must be in"):
        ZeusCost(1.5, 50.0)
    with pytest.raises(ConfigError, match="max_power_w"):
        ZeusCost(0.5, 0.0)


def test_energy_time_and_slowdown_objectives_are_per_unit_of_work() -> None:
    trials = [stats(0, 100.0, 1.0, work=10), stats(1, 120.0, 1.5, work=20), stats(2, 30.0, 2.0, work=10)]
    assert Energy().costs(trials) == pytest.approx([10.0, 6.0, 3.0])
    assert Time().costs(trials) == pytest.approx([0.1, 0.075, 0.2])
    # fastest is 0.075 s per unit; 1.5x allows 0.1125: trial 2 (0.2) is out
    assert EnergyWithinSlowdown(1.5).costs(trials) == pytest.approx([10.0, 6.0, math.inf])
    assert EnergyWithinSlowdown(3.0).costs(trials) == pytest.approx([10.0, 6.0, 3.0])
    assert "1.5x slower" in EnergyWithinSlowdown(1.5).explain(trials[2])
    with pytest.raises(ConfigError, match="factor >= 1"):
        EnergyWithinSlowdown(0.1)
    failed = TrialStats(3, (("k", 3),), error="refused")
    assert Energy().costs([failed]) == [math.inf] and Time().costs([failed]) == [math.inf]
    assert math.isinf(Energy().costs([stats(4, None, 1.0)])[0])


def test_joules_per_request_under_a_latency_target() -> None:
    steps = tuple(0.01 * k for k in range(1, 21))  # 10 ms .. 200 ms
    trial = stats(0, 40.0, sum(steps), work=80, steps=steps)
    assert trial.latency_s(95) == pytest.approx(0.19)  # nearest rank: 19th of 20
    assert trial.latency_s(50) == pytest.approx(0.10)
    assert JoulesPerRequest(0.2).costs([trial]) == pytest.approx([0.5])
    assert JoulesPerRequest(0.15).costs([trial]) == [math.inf]
    assert "p95 latency 0.19 s > target 0.15 s" in JoulesPerRequest(0.15).explain(trial)
    with pytest.raises(ConfigError, match="latency_target_s"):
        JoulesPerRequest(0)


# -- search ------------------------------------------------------------------------------------


def test_exhaustive_starts_at_the_current_setting_and_covers_the_grid() -> None:
    axes = [("a", (1, 2)), ("b", ("x", "y"))]
    order = list(exhaustive(axes, (("a", 2), ("b", "y"))))
    assert order[0] == (("a", 2), ("b", "y")) and len(order) == len(set(order)) == 4


def test_successive_halving_remeasures_the_better_half_down_to_two() -> None:
    axes = [("a", (1, 2, 3, 4, 5))]
    cost = lambda s: abs(dict(s)["a"] - 4)
    search = successive_halving(axes, (("a", 1),), cost)
    order = [dict(next(search))["a"] for _ in range(13)]
    assert order == [1, 2, 3, 4, 5, 4, 3, 5, 4, 3, 4, 3, 4]  # 5 -> 3 -> 2 finalists


def test_pooling_sums_trials_of_one_setting() -> None:
    a = TrialStats(
        0,
        (("k", 1),),
        iterations=2,
        work=10,
        duration_s=1.0,
        energy_j=5.0,
        rel_uncertainty=0.1,
        provenance="measured",
        step_durations_s=(0.5, 0.5),
    )
    b = TrialStats(
        3,
        (("k", 1),),
        iterations=2,
        work=30,
        duration_s=2.0,
        energy_j=15.0,
        rel_uncertainty=0.5,
        provenance="estimated",
        step_durations_s=(1.0, 1.0),
    )
    both = pool([a, b, TrialStats(5, (("k", 1),), error="refused")])
    assert (both.index, both.iterations, both.work, both.duration_s, both.energy_j) == (0, 4, 40, 3.0, 20.0)
    assert both.rel_uncertainty == pytest.approx((0.5 + 7.5) / 20)
    assert both.provenance == "estimated" and both.notes == "pooled over 2 trials"
    assert Energy().costs([both]) == [0.5]


def test_coordinate_descent_finds_a_separable_optimum_in_fewer_trials() -> None:
    axes = [("a", (1, 2, 3, 4, 5)), ("b", (1, 2, 3, 4, 5)), ("c", (1, 2, 3))]
    cost = lambda s: (dict(s)["a"] - 4) ** 2 + (dict(s)["b"] - 2) ** 2 + dict(s)["c"]
    start = (("a", 1), ("b", 1), ("c", 3))
    tried = list(coordinate_descent(axes, start, cost, max_passes=3))
    assert min(tried, key=cost) == (("a", 4), ("b", 2), ("c", 1))
    assert pass_size(axes) == 11 and len(tried) <= 2 * pass_size(axes) < 5 * 5 * 3
    assert len(tried) == len(set(tried))


# -- whole tunings -----------------------------------------------------------------------------


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[Tracker]:
    cfg = Config(ledger=tmp_path / "ledger.db", intensity="100", sample_hz=100.0, flush_interval_s=0.2).validate()
    with Tracker("tuned-job", config=cfg, meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, POWER_W)]) as run:
        yield run


def run_job(
    tuner: OnlineTuner,
    step_s: Callable[[dict[str, Any]], float],
    work: Callable[[dict[str, Any]], float],
    iterations: int,
) -> None:
    """The synthetic job: a step sleeps for its setting's duration while profiling (once the
    tuner has chosen, steps are not measured and take no time, to keep the tests fast)."""
    for _ in range(iterations):
        with tuner.step() as step:
            if tuner.profiling:
                time.sleep(step_s(step.setting))
            step.work = work(step.setting)


# seconds per sample at each batch size: least at 32 (0.2 ms); "level" only slows things down.
# A loaded machine adds o seconds to every sleep: 32 stays cheapest while o < 19 ms a step.
PER_SAMPLE_S = {8: 0.0006, 16: 0.0004, 32: 0.0002, 64: 0.0005}
LEVEL = {1: 1.0, 2: 1.6, 3: 2.2}


def test_coordinate_descent_picks_the_cheapest_setting_within_budget(tracker: Tracker, tmp_path: Path) -> None:
    batch = BatchSizeKnob([8, 16, 32, 64])
    level = BatchSizeKnob([1, 2, 3], name="level")
    total = 1000
    tuner = OnlineTuner(
        [batch, level],
        Energy(),
        total_iterations=total,
        iterations_per_trial=12,
        warmup_iterations=1,
        tracker=tracker,
        ledger=tmp_path / "ledger.db",
    )
    assert tuner.strategy == "coordinate"  # 12 settings x 13 iterations > 100
    with tuner:
        run_job(
            tuner,
            lambda s: s["batch_size"] * PER_SAMPLE_S[s["batch_size"]] * LEVEL[s["level"]],
            lambda s: s["batch_size"],
            total,
        )
        assert not tuner.profiling
        assert tuner.setting == {"batch_size": 32, "level": 1} and batch.value == 32
    assert batch.value == 8 and level.value == 1  # restored at the end
    assert tuner.chosen is not None and dict(tuner.chosen.setting) == {"batch_size": 32, "level": 1}
    assert tuner.profile_iterations <= 0.1 * total
    assert len(tuner.trials) == pass_size(tuner.axes) == 6

    with Ledger(tmp_path / "ledger.db") as ledger:
        rows = read_trials(ledger, tuner.tuning_id)
    assert [r.trial for r in rows] == list(range(6))
    assert [r.setting for r in rows if r.chosen] == [{"batch_size": 32, "level": 1}]
    for r in rows:
        assert r.run_id == tracker.run_id and r.objective == "energy"
        assert r.provenance == "simulated" and "cpu:0" in r.notes
        assert r.iterations == 12 and r.warmup_iterations == 1 and r.work == 12 * r.setting["batch_size"]
        assert r.energy_j == pytest.approx(POWER_W * r.duration_s, rel=2e-2)  # one interval, timed twice
        assert r.cost == pytest.approx(r.energy_j / r.work)


def test_joules_per_request_keeps_the_cheapest_batch_within_latency(tracker: Tracker) -> None:
    # 20, 24, 32, 51 ms a batch: 10 ms of headroom for sleep overshoot on a loaded machine
    per_request_s = {8: 0.0025, 16: 0.0015, 32: 0.001, 64: 0.0008}
    batch = BatchSizeKnob([8, 16, 32, 64])
    tuner = OnlineTuner(
        [batch],
        JoulesPerRequest(latency_target_s=0.042, percentile=50),
        total_iterations=400,
        iterations_per_trial=8,
        warmup_iterations=1,
        tracker=tracker,
    )
    assert tuner.strategy == "halving"  # the budget holds one round: each batch size once
    run_job(tuner, lambda s: s["batch_size"] * per_request_s[s["batch_size"]], lambda s: s["batch_size"], 40)
    tuner.close()
    costs = {dict(t.setting)["batch_size"]: tuner.costs[t.setting] for t in tuner.trials}
    assert math.isinf(costs[64])  # cheapest per request, but its batches take 51 ms
    assert dict(tuner.chosen.setting) == {"batch_size": 32}
    assert tuner.summary()["settings"][3]["cost"] is None


def test_time_objective_needs_no_tracker_and_energy_objectives_do() -> None:
    with pytest.raises(ConfigError, match="needs energy: pass tracker="):
        OnlineTuner([BatchSizeKnob([1, 2])], Energy(), total_iterations=100)
    knob = BatchSizeKnob([1, 2])
    tuner = OnlineTuner([knob], Time(), total_iterations=100, iterations_per_trial=3, warmup_iterations=0)
    run_job(tuner, lambda s: 0.002 * s["batch_size"] ** 3, lambda s: 1, 10)  # 2 ms vs 16 ms
    assert dict(tuner.chosen.setting) == {"batch_size": 1}
    assert all(t.energy_j is None and t.provenance == "" for t in tuner.trials)


def test_budget_that_cannot_cover_one_pass_is_refused() -> None:
    knobs = [BatchSizeKnob([1, 2, 3, 4]), BatchSizeKnob([1, 2, 3], name="b")]
    with pytest.raises(
        ConfigError,
        match=r"budget of 20 iterations \(10% of 200\) cannot cover one "
        r"coordinate-descent pass: 6 trials x 7 iterations",
    ):
        OnlineTuner(knobs, Time(), total_iterations=200, iterations_per_trial=5)
    with pytest.raises(ConfigError, match="max_profile_fraction"):
        OnlineTuner(knobs, Time(), total_iterations=200, max_profile_fraction=0)
    with pytest.raises(ConfigError, match="distinct names"):
        OnlineTuner([BatchSizeKnob([1]), BatchSizeKnob([2])], Time(), total_iterations=100)


def test_unprivileged_gpu_knob_is_skipped_and_the_rest_is_tuned() -> None:
    nvml = FakeNvml(gpus=[FakeGpu(privileged=False)])
    batch = BatchSizeKnob([1, 2])
    tuner = OnlineTuner(
        [GpuPowerLimitKnob(nvml=nvml), batch], Time(), total_iterations=100, iterations_per_trial=2, warmup_iterations=0
    )
    assert "needs root privileges" in tuner.skipped["gpu0_power_limit_w"]
    assert [name for name, _ in tuner.axes] == ["batch_size"]
    with tuner:
        run_job(tuner, lambda s: 0.001, lambda s: 1, 6)
        assert tuner.summary()["skipped"] == tuner.skipped
    assert nvml.gpus[0].power_limit_mw == 400_000


class FlakyKnob:
    """A user's knob whose driver refuses one value (a protocol implementation, not a mock)."""

    name = "flaky"

    def __init__(self) -> None:
        self.value = 1

    def values(self) -> tuple[int, ...]:
        return (1, 2, 3)

    def current(self) -> int:
        return self.value

    def apply(self, value: int) -> None:
        if value == 2:
            raise ConfigError("flaky: the driver rejected 2")
        self.value = value

    def restore(self) -> None:
        self.value = 1

    def available(self) -> str | None:
        return None


def test_a_setting_that_fails_to_apply_is_recorded_and_skipped(tmp_path: Path) -> None:
    knob = FlakyKnob()
    tuner = OnlineTuner(
        [knob],
        Time(),
        total_iterations=100,
        iterations_per_trial=2,
        warmup_iterations=0,
        ledger=tmp_path / "l.db",
        strategy="exhaustive",
    )
    run_job(tuner, lambda s: 0.002 * s["flaky"] ** 2, lambda s: 1, 8)
    assert [dict(t.setting)["flaky"] for t in tuner.trials] == [1, 2, 3]
    assert tuner.trials[1].error == "flaky: the driver rejected 2"
    assert dict(tuner.chosen.setting) == {"flaky": 1}
    with Ledger(tmp_path / "l.db") as ledger:
        rows = read_trials(ledger, tuner.tuning_id)
    assert rows[1].cost is None and rows[1].notes == "flaky: the driver rejected 2"
    assert rows[0].run_id is None and rows[0].chosen


def test_closing_early_keeps_the_best_so_far() -> None:
    knob = BatchSizeKnob([4, 2, 1])
    tuner = OnlineTuner([knob], Time(), total_iterations=1000, iterations_per_trial=2, warmup_iterations=0)
    run_job(tuner, lambda s: 0.001 * s["batch_size"] ** 2, lambda s: 1, 5)  # 2 trials and a half
    tuner.close()
    assert len(tuner.trials) == 2 and dict(tuner.chosen.setting) == {"batch_size": 2}
    assert tuner.outcome.startswith("the job ended before profiling finished")
    assert knob.value == 4  # restored
