"""What the multi-process integration tests share: launching a script as a user would (its own
process, a clean launch environment, simulated meters, a ledger in the test's folder) and
checking that the two ranks' runs it reports are one greenai job with each device counted once.

The simulated meters (GREENAI_SIMULATE: a 250 W GPU and a 65 W CPU) are devices of the node, so
rank 0 reads them and rank 1's run holds no energy; a rank tracked alone would count them again.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from greenai.distributed import read_job
from greenai.distributed.breakdown import counted_twice, device_readings
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import NODE
from greenai.ledger.store import Ledger

LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_TIMEOUT_S = 200  # generous on a loaded 2-core machine; the tests' own bound is above it


def launch(command: list[str], tmp_path: Path) -> str:
    """Run `command` in `tmp_path` with no launcher's or greenai's variables of this process,
    one thread, offline, simulated meters and the ledger `tmp_path/ledger.db`; fail the test
    if it exits non-zero. Returns the tail of its output, for the assertions' messages."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GREENAI_", "TORCHELASTIC_")) and k not in LAUNCH_VARIABLES
    }
    env.update(
        GREENAI_LEDGER=str(tmp_path / "ledger.db"),
        GREENAI_SIMULATE="on",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONWARNINGS="ignore",
    )
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=LAUNCH_TIMEOUT_S)
    output = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, output
    return output


def check_one_job(ledger_path: Path, r0: dict[str, Any], r1: dict[str, Any]) -> None:
    """Ranks 0 and 1 (each a script's result: `run_id`, `energy_j`, `job_id`) are one job of two
    ranks, ended interrupted, with each device counted once and the node's read by rank 0."""
    assert r0["job_id"] is not None and r1["job_id"] is None  # rank 0 writes the job
    job = read_job(r0["job_id"], ledger_path)
    assert job.world_size == 2 and [r.rank for r in job.ranks] == [0, 1]
    assert {r.run_id for r in job.ranks} == {r0["run_id"], r1["run_id"]}
    assert job.status == "interrupted" and all(r.final for r in job.ranks)
    readings = device_readings(job)
    physical = [d.physical for d in readings]
    assert len(physical) == len(set(physical)) and counted_twice(job) == []
    assert {d.device for d in readings if d.scope == NODE} == {"gpu:0", "cpu:0"}
    assert all(d.rank == 0 for d in readings if d.scope == NODE)  # the node's devices, read by rank 0
    assert job.energy_j == pytest.approx(r0["energy_j"] + r1["energy_j"])
    with Ledger(ledger_path) as ledger:
        assert ledger.transaction(lambda c: rows.counted_twice(c, job.job_id), write=False) == []
        joined = [ledger.get_run(r["run_id"]).start.environment["distributed"] for r in (r0, r1)]
    assert [(d["joined"], d["job_id"], d["rank"]) for d in joined] == [(True, job.job_id, 0), (True, job.job_id, 1)]
