"""The `schedule_jobs` table: every job of a batch, from pending to completed or failed.

A row is written when the batch starts (`pending`, or `deferred` when a policy delays it),
updated when the job is submitted (`running`) and when its outcome arrives. `run_id` links
to the job's tracked run; a run that is not in this ledger leaves it NULL rather than
failing the write.

Each row also records the process that runs its batch (host, pid, when: the `owner_*`
columns). A job not finished (pending, deferred, running, paused) whose process is gone,
killed with its batch, is read as `incomplete`: judged as runs are (ledger/reconcile.py),
and never written, so it holds for a ledger opened read-only too.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from greenai.errors import LedgerError, RunNotFoundError
from greenai.ledger.lookup import resolve
from greenai.ledger.reconcile import process_gone
from greenai.ledger.store import Ledger


class JobStatus:
    PENDING = "pending"
    DEFERRED = "deferred"  # a policy holds it back until a later start time
    RUNNING = "running"  # submitted to an executor
    PAUSED = "paused"  # started, then stopped by a policy until a later time (interruptible)
    COMPLETED = "completed"
    FAILED = "failed"
    # read only, never stored: not finished, and the process that ran its batch is gone
    INCOMPLETE = "incomplete"

    ALL = (PENDING, DEFERRED, RUNNING, PAUSED, COMPLETED, FAILED)  # what can be written
    FINAL = (COMPLETED, FAILED)


COLUMNS = (
    "batch_id",
    "job_id",
    "name",
    "status",
    "node",
    "run_id",
    "submitted_at",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_j",
    "rel_uncertainty",
    "provenance",
    "carbon_g",
    "error",
    "scheduling_overhead_s",
    "predicted_energy_j",
    "predicted_duration_s",
    "pauses",
    "arrived_at",
)
OWNER_COLUMNS = ("owner_host", "owner_pid", "owner_started_at")  # schema V5, see batch_jobs
# what an outcome overwrites; run_id and submitted_at get their own rules in finish_job
_OUTCOME_COLUMNS = (
    "status",
    "node",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_j",
    "rel_uncertainty",
    "provenance",
    "carbon_g",
    "error",
    "scheduling_overhead_s",
    "pauses",
)


@dataclass(frozen=True)
class JobRow:
    """One job of one batch. Times are unix seconds; energy in joules (IT energy, before PUE)."""

    batch_id: str
    job_id: str
    name: str
    status: str
    node: str = ""
    run_id: str | None = None
    submitted_at: float | None = None
    started_at: float | None = None  # when the job's own work began, under its tracker
    ended_at: float | None = None
    duration_s: float | None = None
    energy_j: float | None = None
    rel_uncertainty: float | None = None
    provenance: str = ""
    carbon_g: float | None = None
    error: str = ""
    scheduling_overhead_s: float | None = None  # started_at - submitted_at
    predicted_energy_j: float | None = None
    predicted_duration_s: float | None = None
    pauses: int = 0  # how many times the executor paused it (interruptible jobs)
    arrived_at: float | None = None  # when the job arrived (could have started); its wait ends at started_at
    job_key: str = ""  # what it runs (schedule.jobs.Job.key), written by add_jobs (schema v8); not read back


@dataclass(frozen=True)
class BatchRow:
    """A batch at a glance."""

    batch_id: str
    first_submitted_at: float | None
    jobs: int
    completed: int
    failed: int
    energy_j: float


def add_jobs(ledger: Ledger, rows: Sequence[JobRow]) -> None:
    """Insert new rows in one transaction; LedgerError if a (batch, job) pair already exists."""
    for row in rows:
        _check_status(row.status)

    owner = _owner()
    columns = COLUMNS + OWNER_COLUMNS + ("job_key",)

    def work(conn: sqlite3.Connection) -> None:
        try:
            conn.executemany(
                f"INSERT INTO schedule_jobs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                [_values(row) + owner + (row.job_key,) for row in rows],
            )
        except sqlite3.IntegrityError as e:
            raise LedgerError(f"cannot add jobs to the ledger: {e} (a job id used twice in one batch?)") from None

    ledger.transaction(work, write=True)


def mark_running(ledger: Ledger, batch_id: str, job_id: str, submitted_at: float) -> None:
    """The job was handed to an executor at `submitted_at` (by this process, now its owner)."""
    assignments = "status = ?, submitted_at = ?, " + ", ".join(f"{c} = ?" for c in OWNER_COLUMNS)
    ledger.transaction(
        lambda conn: _update(conn, batch_id, job_id, assignments, (JobStatus.RUNNING, submitted_at, *_owner())),
        write=True,
    )


def mark_deferred(ledger: Ledger, batch_id: str, job_id: str) -> None:
    """A policy holds the job back for now."""
    ledger.transaction(lambda conn: _update(conn, batch_id, job_id, "status = ?", (JobStatus.DEFERRED,)), write=True)


def mark_paused(ledger: Ledger, batch_id: str, job_id: str, pauses: int) -> None:
    """A policy paused the running job (its `pauses`-th pause)."""
    ledger.transaction(
        lambda conn: _update(conn, batch_id, job_id, "status = ?, pauses = ?", (JobStatus.PAUSED, pauses)), write=True
    )


def mark_resumed(ledger: Ledger, batch_id: str, job_id: str) -> None:
    """A paused job runs again (its submission time stays)."""
    ledger.transaction(lambda conn: _update(conn, batch_id, job_id, "status = ?", (JobStatus.RUNNING,)), write=True)


def finish_job(ledger: Ledger, row: JobRow) -> None:
    """Write a job's outcome (status completed or failed, figures, error) over its row; the
    row's name and predictions stay, and so does its submission time when `row` has none."""
    if row.status not in JobStatus.FINAL:
        raise ValueError(f"a job cannot finish with status {row.status!r}")
    values = [getattr(row, c) for c in _OUTCOME_COLUMNS]
    assignments = ", ".join(f"{c} = ?" for c in _OUTCOME_COLUMNS)
    # the run may live in another ledger (a worker without the shared file): keep NULL then
    assignments += ", run_id = (SELECT run_id FROM runs WHERE run_id = ?), submitted_at = coalesce(?, submitted_at)"
    ledger.transaction(
        lambda conn: _update(conn, row.batch_id, row.job_id, assignments, (*values, row.run_id, row.submitted_at)),
        write=True,
    )


def batch_jobs(ledger: Ledger, batch_id: str) -> list[JobRow]:
    """The jobs of one batch (an id or a unique prefix, ledger/lookup.py's rule: [] when none
    matches, LedgerError when several do), in the order they were added; a job not finished
    whose batch's process is gone reads as `incomplete`."""

    def work(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        try:  # ledger/lookup.py's rule; an ambiguous prefix is a LedgerError
            found = resolve(conn, "schedule_jobs", "batch_id", batch_id, what="schedule batch")
        except RunNotFoundError:
            return []
        # a ledger read-only at an older schema has no owner columns: nothing to judge by
        has_owner = conn.execute(
            "SELECT count(*) FROM pragma_table_info('schedule_jobs') WHERE name = 'owner_pid'"
        ).fetchone()[0]
        owner = ", ".join(OWNER_COLUMNS) if has_owner else "'', NULL, NULL"
        return conn.execute(
            f"SELECT {', '.join(COLUMNS)}, {owner} FROM schedule_jobs WHERE batch_id = ? ORDER BY rowid", (found,)
        ).fetchall()

    host = socket.gethostname()
    jobs = []
    for r in ledger.transaction(work, write=False):
        values = tuple(r)
        job = JobRow(**dict(zip(COLUMNS, values)))
        owner_host, owner_pid, owner_started_at = values[len(COLUMNS) :]
        if job.status not in JobStatus.FINAL and _owner_gone(owner_host, owner_pid, owner_started_at, host):
            job = dataclasses.replace(job, status=JobStatus.INCOMPLETE)
        jobs.append(job)
    return jobs


def list_batches(ledger: Ledger, limit: int = 20) -> list[BatchRow]:
    """Batches, newest first."""

    def work(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        return conn.execute(
            "SELECT batch_id, min(submitted_at), count(*), sum(status = 'completed'),"
            " sum(status = 'failed'), total(energy_j) FROM schedule_jobs GROUP BY batch_id"
            " ORDER BY max(rowid) DESC LIMIT ?",
            (limit,),
        ).fetchall()

    return [BatchRow(*tuple(r)) for r in ledger.transaction(work, write=False)]


def _update(conn: sqlite3.Connection, batch_id: str, job_id: str, assignments: str, values: Sequence[object]) -> None:
    # `assignments` is built in this module from fixed column names, never from input.
    cursor = conn.execute(
        f"UPDATE schedule_jobs SET {assignments} WHERE batch_id = ? AND job_id = ?", (*values, batch_id, job_id)
    )
    if cursor.rowcount == 0:
        raise LedgerError(f"no job {job_id!r} in batch {batch_id!r} of the ledger")


def _owner() -> tuple[str, int, float]:
    """This process, as the owner of the jobs it adds or runs (see reconcile.process_gone)."""
    return socket.gethostname(), os.getpid(), time.time()


def _owner_gone(owner_host: object, owner_pid: object, owner_started_at: object, host: str) -> bool:
    if not isinstance(owner_pid, int) or not isinstance(owner_started_at, (int, float)):
        return False  # written before owners were recorded (or damaged): nothing to judge by
    return process_gone(str(owner_host), owner_pid, float(owner_started_at), host)


def _check_status(status: str) -> None:
    if status not in JobStatus.ALL:
        raise ValueError(f"unknown job status {status!r}; expected one of {', '.join(JobStatus.ALL)}")


def _values(row: JobRow) -> tuple[object, ...]:
    return tuple(getattr(row, c) for c in COLUMNS)
