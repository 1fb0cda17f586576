"""Slow, multi-process: the Transformers GreenAICallback under torchrun on 2 CPU processes (gloo).

One test launches transformers_ddp_script.py as a user would (`torchrun --standalone
--nproc-per-node 2`, i.e. `python -m torch.distributed.run`) with simulated meters (devices of
the node: rank 0 reads them, rank 1's run holds no energy; see ddp_checks.py) and a stop budget
that only rank 0's run can reach. About 15 s on this 2-core machine, most of it two Transformers
imports and the process group's set-up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("transformers")

from tests.integrations.ddp_checks import check_one_job, launch  # noqa: E402

SCRIPT = Path(__file__).parent / "transformers_ddp_script.py"
BUDGET_J = 600.0  # ~2 s of the simulated node's ~315 W
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")

pytestmark = pytest.mark.timeout(240)  # the slow multi-process test: its own bound, generous on a loaded machine


def test_torchrun_on_two_processes_is_one_job_stopped_together_and_logged_by_rank0(tmp_path: Path) -> None:
    output = launch([*TORCHRUN, str(SCRIPT), str(tmp_path), "--budget-j", str(BUDGET_J)], tmp_path)
    found = sorted(tmp_path.glob("result-*.json"))
    assert [p.name for p in found] == ["result-0.json", "result-1.json"], output  # train() returned on both
    r0, r1 = (json.loads(p.read_text()) for p in found)
    assert r0["world_size"] == r1["world_size"] == 2

    # the stop budget fired on rank 0 only (rank 1's run holds none of the node's energy); the
    # all-reduced flag set control.should_training_stop on both at the same global step, long
    # before max_steps, and train() returned there; both runs end interrupted
    assert r0["stopped_by_own_budget"] and not r1["stopped_by_own_budget"], output
    assert r0["stop_step"] == r1["stop_step"] == r0["global_step"] == r1["global_step"] > 0
    assert r0["global_step"] < r0["max_steps"]
    assert r0["status"] == r1["status"] == "interrupted"
    assert r0["energy_j"] >= BUDGET_J and r1["energy_j"] == 0.0

    # the stop asked for the Trainer's own checkpoint: one folder, at the step it stopped
    assert r0["checkpoint_path"] == r1["checkpoint_path"] is not None
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"checkpoint-{r0['global_step']}"]

    # one greenai job of both ranks' runs, each device once
    check_one_job(tmp_path / "ledger.db", r0, r1)

    # greenai's figures reach the logs (the dict later callbacks see, and state.log_history) on
    # global rank 0 only; rank 1's Trainer logs its own figures all the same
    figures = {"greenai_energy_j", "greenai_carbon_g", "greenai_energy_per_step_j", "greenai_epoch_energy_j"}
    assert figures <= set(r0["greenai_logs"]) and figures <= set(r0["greenai_history"])
    assert r1["greenai_logs"] == r1["greenai_history"] == [] and "loss" in r1["other_logs"]
