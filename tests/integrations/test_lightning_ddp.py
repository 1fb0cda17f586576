"""Slow, multi-process: GreenAICallback under Lightning's "ddp" strategy on 2 CPU processes.

One test runs lightning_ddp_script.py as a user would (its own process; Lightning re-launches
it for rank 1, which is why it is a script and not code inside pytest) with simulated meters
(GREENAI_SIMULATE: a 250 W GPU and a 65 W CPU, devices of the node, so rank 0 reads them and
rank 1's run holds no energy) and a stop budget that only rank 0's run can reach. About 15 s
on this 2-core machine, most of it two Lightning imports and the process group's set-up.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning.pytorch")

from greenai.distributed import read_job
from greenai.distributed.breakdown import counted_twice, device_readings
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import NODE
from greenai.ledger.store import Ledger

SCRIPT = Path(__file__).parent / "lightning_ddp_script.py"
BUDGET_J = 600.0  # ~2 s of the simulated node's ~315 W
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")

pytestmark = pytest.mark.timeout(240)  # the slow multi-process test: its own bound, generous on a loaded machine


def run_script(tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_") and k not in LAUNCH_VARIABLES}
    env.update(
        GREENAI_LEDGER=str(tmp_path / "ledger.db"),
        GREENAI_SIMULATE="1",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONWARNINGS="ignore",
    )
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--budget-j", str(BUDGET_J)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=200,
    )
    output = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, output
    return output


def test_ddp_on_two_processes_is_one_job_stopped_together_saved_and_logged_by_rank0(tmp_path: Path) -> None:
    output = run_script(tmp_path)
    found = sorted(tmp_path.glob("result-*.json"))
    assert [p.name for p in found] == ["result-0.json", "result-1.json"], output  # fit returned on both
    r0, r1 = (json.loads(p.read_text()) for p in found)

    # the stop budget fired on rank 0 only (rank 1's run holds none of the node's energy), and
    # the all-reduced decision stopped both at the same optimizer step; both runs say so
    assert r0["stopped_by_own_budget"] and not r1["stopped_by_own_budget"], output
    assert r0["should_stop"] and r1["should_stop"]
    assert r0["global_step"] == r1["global_step"] > 0
    assert r0["status"] == r1["status"] == "interrupted"
    assert r0["energy_j"] >= BUDGET_J and r1["energy_j"] == 0.0

    # every rank saved (Trainer.save_checkpoint is collective); rank 0 wrote the one file
    assert r0["checkpoint_path"] == r1["checkpoint_path"] is not None
    checkpoint = Path(r0["checkpoint_path"])
    assert checkpoint.name == f"greenai-budget-stop-step={r0['global_step']}.ckpt"
    assert checkpoint.is_file() and checkpoint.stat().st_size > 0

    # one greenai job of both ranks' runs, each device once
    assert r0["job_id"] is not None and r1["job_id"] is None  # rank 0 writes the job
    job = read_job(r0["job_id"], tmp_path / "ledger.db")
    assert job.world_size == 2 and [r.rank for r in job.ranks] == [0, 1]
    assert {r.run_id for r in job.ranks} == {r0["run_id"], r1["run_id"]}
    assert job.status == "interrupted" and all(r.final for r in job.ranks)
    readings = device_readings(job)
    physical = [d.physical for d in readings]
    assert len(physical) == len(set(physical)) and counted_twice(job) == []
    assert {d.device for d in readings if d.scope == NODE} == {"gpu:0", "cpu:0"}
    assert all(d.rank == 0 for d in readings if d.scope == NODE)  # the node's devices, read by rank 0
    assert job.energy_j == pytest.approx(r0["energy_j"] + r1["energy_j"])
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert ledger.transaction(lambda c: rows.counted_twice(c, job.job_id), write=False) == []
        joined = [ledger.get_run(r["run_id"]).start.environment["distributed"] for r in (r0, r1)]
    assert [(d["joined"], d["job_id"], d["rank"]) for d in joined] == [(True, job.job_id, 0), (True, job.job_id, 1)]

    # only global rank 0 logs greenai/ metrics; rank 1's trainer logs its own metrics all the same
    assert "greenai/energy_j" in r0["greenai_metrics"] and "greenai/epoch_energy_j" in r0["greenai_metrics"]
    assert r1["greenai_metrics"] == [] and "train_loss" in r1["other_metrics"]
    (metrics_csv,) = (tmp_path / "logs").rglob("metrics.csv")
    with metrics_csv.open() as f:
        columns = set(next(csv.reader(f)))
    assert {"greenai/energy_j", "greenai/carbon_g", "train_loss"} <= columns
