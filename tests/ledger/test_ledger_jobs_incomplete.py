"""Jobs whose batch's process (`greenai schedule run`) is gone are read `incomplete`, not `running` for ever;
judged by the same process test as runs (ledger/reconcile.py)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
from ledger_factories import raw
from tests.helpers import as_json, greenai

from greenai.ledger import Ledger
from greenai.ledger.jobs import JobRow, JobStatus, add_jobs, batch_jobs, finish_job, list_batches, mark_running


def _killed_scheduler(path: Path) -> None:
    """A scheduler that recorded its batch, started two jobs, finished one, and was killed."""
    code = f"""
        import os
        from greenai.ledger import Ledger
        from greenai.ledger.jobs import JobRow, JobStatus, add_jobs, finish_job, mark_paused, mark_running
        ledger = Ledger({str(path)!r})
        add_jobs(ledger, [JobRow("b1", j, j, JobStatus.PENDING) for j in ("run", "paused", "wait", "done")])
        for j in ("run", "paused", "done"):
            mark_running(ledger, "b1", j, 100.0)
        mark_paused(ledger, "b1", "paused", 1)
        finish_job(ledger, JobRow("b1", "done", "done", JobStatus.COMPLETED, energy_j=3.0))
        os._exit(0)  # SIGKILL, as far as the ledger can tell
        """
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, timeout=120)


def test_jobs_of_a_killed_scheduler_read_incomplete(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    _killed_scheduler(db_path)
    with Ledger(db_path) as ledger:
        jobs = {j.job_id: j.status for j in batch_jobs(ledger, "b1")}
        batches = list_batches(ledger)
    assert jobs == {"run": "incomplete", "paused": "incomplete", "wait": "incomplete", "done": "completed"}
    assert (batches[0].jobs, batches[0].completed) == (4, 1)
    # shown, never written: the stored status stays what the scheduler last wrote
    conn = raw(db_path)
    assert conn.execute("SELECT status FROM schedule_jobs WHERE job_id = 'run'").fetchone() == ("running",)
    conn.close()


def test_jobs_of_a_live_scheduler_stay_running(ledger: Ledger) -> None:
    add_jobs(ledger, [JobRow("b2", "a", "a", JobStatus.PENDING), JobRow("b2", "b", "b", JobStatus.PENDING)])
    mark_running(ledger, "b2", "a", 10.0)
    assert [j.status for j in batch_jobs(ledger, "b2")] == [JobStatus.RUNNING, JobStatus.PENDING]


def test_a_reused_pid_does_not_keep_a_batch_alive(ledger: Ledger, db_path: Path) -> None:
    add_jobs(ledger, [JobRow("b3", "a", "a", JobStatus.PENDING)])
    mark_running(ledger, "b3", "a", 10.0)
    conn = raw(db_path)  # recorded long before this (live) process with the same pid was created
    conn.execute("UPDATE schedule_jobs SET owner_pid = ?, owner_started_at = 1000.0", (os.getpid(),))
    conn.close()
    assert batch_jobs(ledger, "b3")[0].status == JobStatus.INCOMPLETE


def test_jobs_of_another_host_or_without_an_owner_are_read_as_recorded(ledger: Ledger, db_path: Path) -> None:
    add_jobs(ledger, [JobRow("b4", "far", "far", JobStatus.PENDING), JobRow("b4", "old", "old", JobStatus.PENDING)])
    for job in ("far", "old"):
        mark_running(ledger, "b4", job, 10.0)
    conn = raw(db_path)
    conn.execute("UPDATE schedule_jobs SET owner_host = 'elsewhere', owner_pid = 999999999 WHERE job_id = 'far'")
    conn.execute("UPDATE schedule_jobs SET owner_pid = NULL, owner_started_at = NULL WHERE job_id = 'old'")
    conn.close()
    assert [j.status for j in batch_jobs(ledger, "b4")] == [JobStatus.RUNNING, JobStatus.RUNNING]
    finish_job(ledger, JobRow("b4", "far", "far", JobStatus.FAILED, error="x"))
    assert batch_jobs(ledger, "b4")[0].status == JobStatus.FAILED


def test_schedule_show_after_the_scheduler_was_killed(tmp_path: Path) -> None:
    """SIGKILL on `greenai schedule run`: `schedule show` reads its unfinished jobs as incomplete."""
    ledger_path = tmp_path / "ledger.db"
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[job]]\nid = "long"\ncommand = ["sleep", "61.25"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env["GREENAI_LEDGER"] = str(ledger_path)
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "greenai", "schedule", "run", str(jobs), "--batch-id", "killed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ledger_path.exists():
                conn = raw(ledger_path)
                try:
                    running = conn.execute(
                        "SELECT count(*) FROM schedule_jobs WHERE batch_id = 'killed' AND status = 'running'"
                    ).fetchone()[0]
                except sqlite3.OperationalError:
                    running = 0
                finally:
                    conn.close()
                if running:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the batch never started a job")
        children = psutil.Process(wrapper.pid).children(recursive=True)
        wrapper.kill()
        wrapper.wait(30)
        shown = as_json(greenai("schedule", "show", "killed", "--json", ledger=ledger_path))
        assert [(j["job_id"], j["status"]) for j in shown] == [("long", "incomplete")]
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
        for child in children:  # the job itself, if nothing ended it with its wrapper
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
