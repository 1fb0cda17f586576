"""The tuner on a busy machine (a fake /proc/stat at the co-load reader's boundary): a disturbed
trial is measured again, at most MAX_DISTURBED_RETRIES times; a setting measured only while
the machine was busy is not chosen over one measured quiet, and the outcome says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.hardware import coload
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.fake_machine import FakeMachine
from greenai.tracking.tracker import Tracker
from greenai.tune.knobs.base import BatchSizeKnob
from greenai.tune.objectives import Energy, TrialStats, pool
from greenai.tune.tuner import MAX_DISTURBED_RETRIES, OnlineTuner


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMachine]:
    path = tmp_path / "proc-stat"
    with FakeMachine(path, cores=0.0) as fake:
        monkeypatch.setattr(coload, "PROC_STAT", path)
        yield fake


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, power_w=100.0)
    with Tracker("tune", config=Config(sample_hz=100), meters=[meter], store=False) as run:
        yield run


def job(tuner: OnlineTuner, step_s: dict[int, float], iterations: int, on_trial=None) -> None:
    for _ in range(iterations):
        with tuner.step() as step:
            if on_trial is not None:  # the machine's load as this step begins, for its setting
                on_trial(tuner, step.setting)
            if tuner.profiling:
                time.sleep(step_s[step.setting["batch_size"]])
            step.work = step.setting["batch_size"]


def test_pooling_leaves_disturbed_trials_out_when_a_quiet_one_exists() -> None:
    quiet = TrialStats(0, (("k", 1),), iterations=4, work=4.0, duration_s=1.0, energy_j=10.0, coload_cores=0.1)
    busy = TrialStats(
        1, (("k", 1),), iterations=4, work=4.0, duration_s=9.0, energy_j=90.0, coload_cores=1.8, disturbed=True
    )
    pooled = pool([quiet, busy])
    assert pooled.energy_j == 10.0 and not pooled.disturbed and "1 disturbed trial(s) left out" in pooled.notes
    both_busy = pool([busy, busy])
    assert both_busy.energy_j == 180.0 and both_busy.disturbed and both_busy.coload_cores == 1.8


def test_a_disturbed_trial_is_measured_again_and_the_busy_setting_is_not_chosen(
    machine: FakeMachine, tracker: Tracker
) -> None:
    """Batch 8 would be cheapest; the machine is busy while it is profiled, and only then."""
    knob = BatchSizeKnob([8, 16, 32])
    tuner = OnlineTuner(
        [knob],
        Energy(),
        total_iterations=1000,
        iterations_per_trial=6,
        warmup_iterations=2,
        tracker=tracker,
        strategy="exhaustive",
    )

    def busy_while_8_profiles(t: OnlineTuner, setting: dict[str, object]) -> None:
        machine.cores = 1.6 if t.profiling and setting.get("batch_size") == 8 else 0.0

    # trials of 0.24 s and more: several co-load readings (at most 10 a second); two warm-up
    # steps (at least 0.08 s) let the readings catch up with a change of load between trials
    job(tuner, {8: 0.04, 16: 0.06, 32: 0.1}, 200, busy_while_8_profiles)
    tuner.close()
    trials = tuner.trials
    eights = [t for t in trials if dict(t.setting) == {"batch_size": 8}]
    assert len(eights) == 1 + MAX_DISTURBED_RETRIES and all(t.disturbed for t in eights)
    assert all("disturbed: other processes kept " in t.notes and (t.coload_cores or 0) >= 0.5 for t in eights)
    assert not any(t.disturbed for t in trials if t not in eights)
    assert tuner.chosen is not None and dict(tuner.chosen.setting) != {"batch_size": 8}
    assert "measured only while other processes kept" in tuner.outcome and "were not chosen" in tuner.outcome
    summary = tuner.summary()
    assert any(s["disturbed"] for s in summary["settings"]) and any(t["disturbed"] for t in summary["trials"])


def test_a_quiet_machine_changes_nothing(machine: FakeMachine, tracker: Tracker) -> None:
    knob = BatchSizeKnob([8, 16])
    tuner = OnlineTuner(
        [knob],
        Energy(),
        total_iterations=1000,
        iterations_per_trial=6,
        warmup_iterations=1,
        tracker=tracker,
        strategy="exhaustive",
    )
    job(tuner, {8: 0.02, 16: 0.05}, 100)
    tuner.close()
    assert len(tuner.trials) == 2 and not any(t.disturbed for t in tuner.trials)
    assert "busy" not in tuner.outcome
