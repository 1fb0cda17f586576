"""Runs whose process is gone are shown as incomplete, and keep all their rows."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
from ledger_factories import make_samples, make_snapshot, make_start, raw

from greenai.ledger import Ledger
from greenai.ledger.records import RunStart, RunStatus


def _track(ledger: Ledger, start: RunStart) -> float:
    """Begin and flush once; return the flush's updated_at."""
    ledger.begin_run(start)
    ledger.flush(start.run_id, make_snapshot(80.0), make_samples(start.started_at, 6))
    return ledger.get_run(start.run_id).updated_at


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(done.stdout)
    assert not psutil.pid_exists(pid)
    return pid


def _age(path: Path, run_id: str, seconds: float) -> float:
    """Pretend the run's last flush was `seconds` ago (as if its host went quiet)."""
    conn = raw(path)
    updated_at = time.time() - seconds
    conn.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", (updated_at, run_id))
    conn.close()
    return updated_at


def test_run_of_a_dead_process_is_incomplete_on_open(db_path: Path) -> None:
    start = make_start(pid=_dead_pid())
    with Ledger(db_path) as ledger:
        updated_at = _track(ledger, start)
    with Ledger(db_path) as ledger:
        conn = raw(db_path)  # reconciled on open, before any read
        assert conn.execute("SELECT status FROM runs").fetchone() == ("incomplete",)
        conn.close()
        record = ledger.get_run(start.run_id)
        assert record.status == RunStatus.INCOMPLETE
        assert record.ended_at == updated_at
        assert record.snapshot == make_snapshot(80.0)
        assert ledger.samples(start.run_id) == make_samples(start.started_at, 6)


def test_run_of_a_live_process_stays_running(db_path: Path) -> None:
    start = make_start()  # this test process, started before the run
    with Ledger(db_path) as ledger:
        _track(ledger, start)
    with Ledger(db_path) as ledger:
        assert ledger.get_run(start.run_id).status == RunStatus.RUNNING
        assert [r.status for r in ledger.list_runs()] == [RunStatus.RUNNING]


def test_reused_pid_does_not_keep_a_run_alive(db_path: Path) -> None:
    created = psutil.Process().create_time()
    start = make_start(started_at=created - 3600.0)  # our pid, but the run is older than us
    with Ledger(db_path) as ledger:
        updated_at = _track(ledger, start)
        assert ledger.list_runs(status=RunStatus.INCOMPLETE)[0].ended_at == updated_at
        assert ledger.list_runs(status=RunStatus.RUNNING) == []


def test_other_host_runs_go_incomplete_after_ten_quiet_minutes(db_path: Path) -> None:
    fresh = make_start(host="node-a", pid=1)
    quiet = make_start(host="node-b", pid=1)
    with Ledger(db_path) as ledger:
        _track(ledger, fresh)
        _track(ledger, quiet)
        _age(db_path, fresh.run_id, 540.0)
        quiet_at = _age(db_path, quiet.run_id, 660.0)

        assert ledger.get_run(fresh.run_id).status == RunStatus.RUNNING
        record = ledger.get_run(quiet.run_id)
        assert (record.status, record.ended_at) == (RunStatus.INCOMPLETE, quiet_at)
        assert len(ledger.samples(quiet.run_id)) == 6


def test_a_flush_revives_a_run_wrongly_marked_incomplete(db_path: Path) -> None:
    start = make_start(host="node-c", pid=1)
    with Ledger(db_path) as ledger:
        _track(ledger, start)
        _age(db_path, start.run_id, 3600.0)
        assert ledger.get_run(start.run_id).status == RunStatus.INCOMPLETE

        ledger.flush(start.run_id, make_snapshot(90.0), make_samples(start.started_at + 1, 2))
        record = ledger.get_run(start.run_id)
        assert (record.status, record.ended_at, record.snapshot.energy_j) == (
            RunStatus.RUNNING,
            None,
            90.0,
        )
        assert len(ledger.samples(start.run_id)) == 8


def test_ended_runs_are_never_reconciled(db_path: Path) -> None:
    start = make_start(pid=_dead_pid())
    with Ledger(db_path) as ledger:
        _track(ledger, start)
        ledger.end_run(start.run_id, RunStatus.INTERRUPTED, 1234.5, make_snapshot(81.0))
    with Ledger(db_path) as ledger:
        record = ledger.get_run(start.run_id)
        assert (record.status, record.ended_at) == (RunStatus.INTERRUPTED, 1234.5)
