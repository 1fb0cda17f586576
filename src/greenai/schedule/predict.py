"""Fill in a job's predicted duration and energy: given, from past runs, or from the estimator.

Order of preference for a job that does not give both figures:
1. **ledger**: the median duration and energy of the last completed runs of the same job in
   `schedule_jobs` (at least one, at most `HISTORY`), measured as they ran. The same job is the
   same name *and* the same work (`Job.key`: its command, or its callable and kwargs) and,
   when the executor is known to run it here (local), the same node: two unrelated jobs that
   share a name never share a prediction, nor do two machines. Rows written before schema v8
   have no key and are not used;
2. **estimator**: for a job with `estimate = "module:factory"` and `estimate_steps`, the
   analytical estimate of that many training steps (greenai.estimation, calibrated on this
   machine when a profile exists);
3. none: the policy's placeholder (batch.py), and `prediction_source` stays "none".
What a prediction came from is kept in `Job.prediction_source` and shown by the CLI.

For placement, `with_node_history` gives each node the median energy that the same job (name
and key) measured *on that node* (the `node` column: a host name for the local executor, a Ray
node id on Ray, which changes when the cluster restarts), so a node that proved cheaper for
a job is preferred over the user's energy factor.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from greenai.errors import GreenAIError
from greenai.ledger.store import Ledger
from greenai.schedule.jobs import Job

if TYPE_CHECKING:  # policies import numpy: not needed to predict
    from greenai.schedule.policies import Node

HISTORY = 10  # past runs a prediction looks at: recent enough to follow code changes


def history(
    ledger: Ledger, name: str, key: str, node: str | None = None, limit: int = HISTORY
) -> list[tuple[float, float]]:
    """(duration_s, energy_j) of the most recent completed runs of the job named `name` that
    runs `key` (``Job.key``), on `node` when given, newest first."""

    def work(conn: sqlite3.Connection) -> list[tuple[float, float]]:
        if not _has_keys(conn):
            return []
        return conn.execute(
            "SELECT duration_s, energy_j FROM schedule_jobs WHERE name = ? AND job_key = ? "
            "AND (? IS NULL OR node = ?) AND status = 'completed' "
            "AND duration_s IS NOT NULL AND energy_j IS NOT NULL ORDER BY ended_at DESC LIMIT ?",
            (name, key, node, node, limit),
        ).fetchall()

    return ledger.transaction(work, write=False)


def node_history(ledger: Ledger, name: str, key: str, node: str, limit: int = HISTORY) -> list[float]:
    """Energy (J) of the most recent completed runs of the job `name` running `key` on `node`."""

    def work(conn: sqlite3.Connection) -> list[float]:
        if not _has_keys(conn):
            return []
        return [
            row[0]
            for row in conn.execute(
                "SELECT energy_j FROM schedule_jobs WHERE name = ? AND job_key = ? AND node = ? "
                "AND status = 'completed' AND energy_j IS NOT NULL ORDER BY ended_at DESC LIMIT ?",
                (name, key, node, limit),
            )
        ]

    return ledger.transaction(work, write=False)


def _has_keys(conn: sqlite3.Connection) -> bool:
    """Whether the ledger records what jobs run (schema v8; a read-only older one does not)."""
    return (
        conn.execute("SELECT 1 FROM pragma_table_info('schedule_jobs') WHERE name = 'job_key'").fetchone() is not None
    )


def with_node_history(
    nodes: Sequence[Node], node_ids: Sequence[str], jobs: Sequence[Job], ledger: Ledger
) -> list[Node]:
    """`nodes` (whose executor ids are `node_ids`) with `energy_j` filled, per job, by the
    median measured energy of past runs of that job's name on that node; a figure the node
    already has wins."""
    placed = []
    for node, node_id in zip(nodes, node_ids, strict=True):
        learned = {}
        for job in jobs:
            past = node_history(ledger, job.name or job.job_id, job.key, node_id)
            if past and job.job_id not in node.energy_j:
                learned[job.job_id] = statistics.median(past)
        placed.append(replace(node, energy_j={**learned, **node.energy_j}) if learned else node)
    return placed


def predict_jobs(jobs: Sequence[Job], ledger: Ledger | None, node: str | None = None) -> list[Job]:
    """The jobs with missing predictions filled where history or the estimator allows;
    `node`: where they will run when that is known (the local executor: this host)."""
    return [_predict(job, ledger, node) for job in jobs]


def _predict(job: Job, ledger: Ledger | None, node: str | None = None) -> Job:
    if job.predicted_duration_s is not None and job.predicted_energy_j is not None:
        return job
    past = history(ledger, job.name or job.job_id, job.key, node) if ledger is not None else []
    if past:
        return replace(
            job,
            predicted_duration_s=job.predicted_duration_s or statistics.median(d for d, _ in past),
            predicted_energy_j=(
                job.predicted_energy_j if job.predicted_energy_j is not None else statistics.median(e for _, e in past)
            ),
            prediction_source=f"ledger: median of {len(past)} past run(s)",
        )
    if job.estimate_factory is not None:
        return _from_estimator(job)
    return replace(job, prediction_source="given" if (job.predicted_duration_s or job.predicted_energy_j) else "none")


def _from_estimator(job: Job) -> Job:
    from greenai.estimation.api import estimate, load_factory

    model, example = load_factory(job.estimate_factory or "")
    try:
        result = estimate(model, example, training=True, steps=job.estimate_steps)
    except GreenAIError:
        raise
    except Exception as e:  # a model that does not run on its example: say which job
        raise GreenAIError(f"job {job.job_id!r}: estimating {job.estimate_factory} failed: {e}") from e
    run = result.run
    if run is None:
        raise GreenAIError(f"job {job.job_id!r}: give estimate_steps to estimate a whole run")
    return replace(
        job,
        predicted_duration_s=job.predicted_duration_s or run.time_s,
        predicted_energy_j=job.predicted_energy_j if job.predicted_energy_j is not None else run.energy_j,
        prediction_source=f"estimator ({run.provenance})",
    )
