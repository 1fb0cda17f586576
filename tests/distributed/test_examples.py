"""examples/ddp_digits.py under torchrun (2 ranks, small), wrapped in `greenai run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")
pytest.importorskip("sklearn")

from greenai.distributed import list_jobs

ROOT = Path(__file__).resolve().parents[2]


def test_ddp_digits_ends_with_the_jobs_table_and_greenai_run_says_it_saw_two_ranks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(GREENAI_LEDGER=str(tmp_path / "ledger.db"), OMP_NUM_THREADS="1")
    cmd = [
        *(sys.executable, "-m", "greenai", "run", "--name", "whole-launch", "--"),
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *(str(ROOT / "examples" / "ddp_digits.py"), "--epochs", "1", "--limit", "256"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'ddp-digits': completed, 2 ranks on 1 node(s)" in proc.stdout
    assert "communication: " in proc.stdout and "collectives" in proc.stdout
    assert "saw 2 ranks (torch.distributed.run), world size 2: one run for the whole tree" in proc.stderr
    (job,) = list_jobs(tmp_path / "ledger.db")
    assert job.status == "completed" and [r.rank for r in job.ranks] == [0, 1]
