"""The local executor refuses jobs asking for more CPUs or GPUs than this machine has, with
the machine's figures, before a batch starts (issue 16, item 14); numbers the scheduler is
given are finite (`--power-w inf` printed inf carbon with exit 0)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from greenai.carbon.grid_forecast import IntensitySeries
from greenai.errors import ConfigError
from greenai.hardware.cpu import cpu_allowance, usable_cpus
from greenai.schedule.batch import run_batch
from greenai.schedule.executor_local import LocalExecutor, local_gpus
from greenai.schedule.jobs import Job
from greenai.schedule.policies import Fifo, Node, PowerBudget, parse_node
from greenai.schedule.simulate import simulate

QUICK = (sys.executable, "-c", "pass")


def test_more_cpus_than_this_machine_has_are_refused_before_the_batch_starts(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    jobs = [Job("small", command=QUICK), Job("huge", command=QUICK, cpus=1e9)]
    with LocalExecutor(max_parallel=1) as executor:
        with pytest.raises(ConfigError) as e:
            run_batch(jobs, executor, ledger, batch_id="b")
    allowed = cpu_allowance()  # a cgroup CPU quota, where there is one, is named instead
    assert str(e.value) == (
        f"job 'huge' asks for 1e+09 CPUs; this machine has {allowed.cpus:g} usable "
        f"({allowed.limited_by()}); use --executor ray for a cluster"
    )
    assert not ledger.exists()  # nothing ran, nothing was recorded


def test_gpus_this_machine_does_not_have_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU visible, whatever the machine has
    assert local_gpus()[0] == 0
    with LocalExecutor(max_parallel=1) as executor:
        with pytest.raises(ConfigError, match=r"job 'g' asks for 1 GPUs; this machine has 0 \(") as e:
            executor.check_job(Job("g", command=QUICK, gpus=1))
        with pytest.raises(ConfigError, match="this machine has 0"):
            executor.submit(Job("g", command=QUICK, gpus=0.5), ledger_path=tmp_path / "ledger.db")
    assert "\n" not in str(e.value)


def test_a_job_within_the_machine_runs(tmp_path: Path) -> None:
    jobs = [Job("gpu", command=QUICK, gpus=1, cpus=usable_cpus())]
    with LocalExecutor(max_parallel=1, gpus=1) as executor:  # a machine with one GPU
        summary = run_batch(jobs, executor, tmp_path / "ledger.db", batch_id="b")
    assert summary.completed == 1
    with pytest.raises(ConfigError, match="gpus must be an integer >= 0"):
        LocalExecutor(gpus=-1)


@pytest.mark.parametrize("power_w", [math.inf, math.nan, 1e300, 0.0])
def test_simulated_power_is_finite_and_bounded(power_w: float) -> None:
    trace = IntensitySeries(np.arange(0.0, 48 * 3600.0, 3600.0), np.full(48, 100.0))
    jobs = [Job("a", arrival_s=0.0, predicted_duration_s=3600.0)]
    with pytest.raises(ConfigError, match="power_w must be a finite number > 0 and <= 1e\\+09 W"):
        simulate(jobs, trace, Fifo(), power_w=power_w)


@pytest.mark.parametrize("cap", [math.inf, math.nan, -1.0])
def test_power_budget_caps_are_finite(cap: float) -> None:
    with pytest.raises(ConfigError, match="power budget max_power_w must be a finite number > 0"):
        PowerBudget(max_power_w=cap)
    with pytest.raises(ConfigError, match="power budget max_energy_j must be a finite number > 0"):
        PowerBudget(max_energy_j=cap)


@pytest.mark.parametrize("text", ["gpu:inf", "gpu:nan", "gpu:-1"])
def test_node_energy_factors_are_finite(text: str) -> None:
    with pytest.raises(ConfigError, match="energy_factor must be a finite number > 0"):
        parse_node(text)
    assert Node("gpu", 0.5).energy_factor == 0.5
