"""Incomplete runs: a run still marked `running` whose process is gone.

On this host the process is looked up by pid (a pid reused by a process created after the
run started does not count). Runs from other hosts are judged by their last flush. Marking
a run incomplete only changes its status and sets `ended_at` to its last flush; its rows
stay. A tracker that is in fact alive and flushes again turns it back to `running`.

A ledger opened read-only cannot be marked: its readers show such runs as `incomplete`
(`as_marked`). Scheduled jobs use the same test on the process that runs their batch
(`process_gone`, from ledger/jobs.py).
"""

from __future__ import annotations

import dataclasses
import math
import socket
import sqlite3
import time
from collections.abc import Sequence

import psutil

from greenai.ledger.records import RunRecord, RunStatus

OTHER_HOST_STALE_S = 600.0
# psutil derives create_time from the boot time in whole seconds: allow for that rounding.
CREATE_TIME_SLACK_S = 2.0


def find_abandoned(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    """(run_id, updated_at) of running runs whose process is gone."""
    host, now = socket.gethostname(), time.time()
    rows = conn.execute(
        "SELECT run_id, host, pid, started_at, updated_at FROM runs WHERE status = ?",
        (RunStatus.RUNNING,),
    ).fetchall()
    return [
        (row["run_id"], row["updated_at"])
        for row in rows
        if is_abandoned(row["host"], row["pid"], row["started_at"], row["updated_at"], host, now)
    ]


def mark_incomplete(conn: sqlite3.Connection, abandoned: Sequence[tuple[str, float]]) -> None:
    """Mark runs incomplete unless they flushed since `find_abandoned` looked at them."""
    conn.executemany(
        "UPDATE runs SET status = ?, ended_at = updated_at WHERE run_id = ? AND status = ? AND updated_at = ?",
        [(RunStatus.INCOMPLETE, run_id, RunStatus.RUNNING, at) for run_id, at in abandoned],
    )


def as_marked(records: Sequence[RunRecord], abandoned: Sequence[tuple[str, float]]) -> list[RunRecord]:
    """`records` as `mark_incomplete(abandoned)` would have left them in the ledger (for a
    ledger that cannot be written)."""
    gone = dict(abandoned)
    return [
        dataclasses.replace(r, status=RunStatus.INCOMPLETE, ended_at=r.updated_at)
        if r.status == RunStatus.RUNNING and gone.get(r.start.run_id) == r.updated_at
        else r
        for r in records
    ]


def is_abandoned(run_host: str, pid: int, started_at: float, updated_at: float, host: str, now: float) -> bool:
    """Whether a `running` run's process is gone. A damaged row (a pid or time that is not a
    number) says nothing about its process: not abandoned, left as it is for `runs check`."""
    if not (_is_real(updated_at) and _is_real(started_at)):
        return False
    if run_host != host:
        return bool(now - updated_at > OTHER_HOST_STALE_S)
    return not process_alive(pid, started_at)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def process_gone(process_host: str, pid: int, started_at: float, host: str) -> bool:
    """True if the process `pid`, recorded on `process_host` at `started_at`, is known to be
    gone: it runs on this host (`host`) and is dead, or its pid now belongs to a younger
    process. A process on another host cannot be looked up: False."""
    return process_host == host and not process_alive(pid, started_at)


def process_alive(pid: int, started_at: float) -> bool:
    """True if `pid` is a live process that already existed when the run started; also when
    `pid` is no process id at all (a damaged row: nothing can be told, so it is not declared
    dead)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; we cannot tell more, so do not declare it dead
    return bool(created <= started_at + CREATE_TIME_SLACK_S)
