"""The schedule_jobs table: rows go pending -> running -> completed/failed, linked to runs."""

from __future__ import annotations

import time

import pytest

from greenai.errors import LedgerError
from greenai.ledger.jobs import (
    JobRow,
    JobStatus,
    add_jobs,
    batch_jobs,
    finish_job,
    list_batches,
    mark_running,
)
from greenai.ledger.records import RunSnapshot, RunStart
from greenai.ledger.store import Ledger
from greenai.meters.base import Provenance


def _run(ledger: Ledger, run_id: str) -> None:
    ledger.begin_run(RunStart(run_id=run_id, name="job", started_at=time.time(), host="h", pid=1))
    ledger.end_run(
        run_id,
        "completed",
        time.time(),
        RunSnapshot(
            duration_s=1.0,
            energy_j=5.0,
            rel_uncertainty=0.5,
            provenance=Provenance.ESTIMATED,
            facility_energy_j=5.0,
            carbon_g=0.1,
            cost=0.0,
            currency="EUR",
        ),
    )


def test_lifecycle_of_a_batch(ledger: Ledger) -> None:
    add_jobs(
        ledger,
        [
            JobRow("b1", "a", "job a", JobStatus.PENDING, predicted_energy_j=4.0),
            JobRow("b1", "b", "job b", JobStatus.DEFERRED),
        ],
    )
    assert [r.status for r in batch_jobs(ledger, "b1")] == ["pending", "deferred"]
    mark_running(ledger, "b1", "a", 100.0)
    mark_running(ledger, "b1", "b", 101.0)
    _run(ledger, "r" * 32)
    finish_job(
        ledger,
        JobRow(
            "b1",
            "a",
            "",
            JobStatus.COMPLETED,
            node="n1",
            run_id="r" * 32,
            started_at=100.5,
            ended_at=102.0,
            duration_s=1.5,
            energy_j=5.0,
            rel_uncertainty=0.5,
            provenance="estimated",
            carbon_g=0.1,
            scheduling_overhead_s=0.5,
        ),
    )
    # a run that is not in this ledger (a worker wrote elsewhere) leaves run_id NULL
    finish_job(
        ledger,
        JobRow(
            "b1", "b", "", JobStatus.FAILED, run_id="x" * 32, energy_j=2.0, provenance="estimated", error="exit code 1"
        ),
    )
    a, b = batch_jobs(ledger, "b1")
    assert (a.name, a.status, a.run_id, a.energy_j, a.node) == ("job a", "completed", "r" * 32, 5.0, "n1")
    assert a.submitted_at == 100.0 and a.scheduling_overhead_s == 0.5 and a.predicted_energy_j == 4.0
    assert (b.status, b.run_id, b.energy_j, b.error, b.submitted_at) == ("failed", None, 2.0, "exit code 1", 101.0)
    (batch,) = list_batches(ledger)
    assert (batch.batch_id, batch.jobs, batch.completed, batch.failed, batch.energy_j) == ("b1", 2, 1, 1, 7.0)
    # deleting the run keeps the job row, unlinked
    ledger.delete_run("r" * 32)
    assert batch_jobs(ledger, "b1")[0].run_id is None


def test_errors(ledger: Ledger) -> None:
    add_jobs(ledger, [JobRow("b1", "a", "a", JobStatus.PENDING)])
    with pytest.raises(LedgerError, match="used twice"):
        add_jobs(ledger, [JobRow("b1", "a", "a", JobStatus.PENDING)])
    with pytest.raises(ValueError, match="unknown job status"):
        add_jobs(ledger, [JobRow("b1", "c", "c", "done")])
    with pytest.raises(LedgerError, match="no job 'zz' in batch 'b1'"):
        mark_running(ledger, "b1", "zz", 1.0)
    with pytest.raises(ValueError, match="cannot finish with status 'running'"):
        finish_job(ledger, JobRow("b1", "a", "a", JobStatus.RUNNING))
    add_jobs(ledger, [JobRow("b2-x", "a", "a", JobStatus.PENDING), JobRow("b2-y", "a", "a", JobStatus.PENDING)])
    with pytest.raises(LedgerError, match="ambiguous"):
        batch_jobs(ledger, "b2")
    assert [r.batch_id for r in batch_jobs(ledger, "b2-x")] == ["b2-x"]
    assert batch_jobs(ledger, "nope") == []
