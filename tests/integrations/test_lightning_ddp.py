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
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning.pytorch")

from tests.integrations.ddp_checks import check_one_job, launch

SCRIPT = Path(__file__).parent / "lightning_ddp_script.py"
BUDGET_J = 600.0  # ~2 s of the simulated node's ~315 W

pytestmark = pytest.mark.timeout(240)  # the slow multi-process test: its own bound, generous on a loaded machine


def run_script(tmp_path: Path) -> str:
    return launch([sys.executable, str(SCRIPT), str(tmp_path), "--budget-j", str(BUDGET_J)], tmp_path)


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
    check_one_job(tmp_path / "ledger.db", r0, r1)

    # only global rank 0 logs greenai/ metrics; rank 1's trainer logs its own metrics all the same
    assert "greenai/energy_j" in r0["greenai_metrics"] and "greenai/epoch_energy_j" in r0["greenai_metrics"]
    assert r1["greenai_metrics"] == [] and "train_loss" in r1["other_metrics"]
    (metrics_csv,) = (tmp_path / "logs").rglob("metrics.csv")
    with metrics_csv.open() as f:
        columns = set(next(csv.reader(f)))
    assert {"greenai/energy_j", "greenai/carbon_g", "train_loss"} <= columns
