"""What `greenai monitor` reads from a big ledger at each refresh (monitor/figures.py
`RunsWatch`): one query of at most RUNS_SCANNED rows of the runs table, never the runs' child
rows, however many runs, running or not, the ledger holds."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

from tests.ledger.ledger_factories import make_snapshot

from greenai.ledger import queries
from greenai.ledger.records import DeviceTotal, PhaseTotal, RunStart, RunStatus
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.monitor.figures import MAX_RUN_SERIES, RUNS_SCANNED, RunsWatch

ALIVE = RUNS_SCANNED + 150  # runs in progress whose process (this one) is alive
GONE = 40  # running runs of another host, silent for an hour: judged gone
DONE = 300  # completed runs, with many child rows


def _big_ledger(path: Path) -> None:
    host, now = socket.gethostname(), time.time()
    devices = tuple(DeviceTotal(f"gpu:{d}", DeviceKind.GPU, 1.0, Provenance.MEASURED, 0.01) for d in range(8))
    phases = tuple(PhaseTotal(f"phase-{p}", "gpu:0", 1.0, 1.0, 1) for p in range(50))

    def work(conn: sqlite3.Connection) -> None:
        for k in range(ALIVE + GONE + DONE):
            run_id = f"{k:06d}" + "0" * 26
            if k < ALIVE:  # started (a little) after this process, so it is its process
                start = RunStart(run_id, f"alive-{k}", now - 1.0 + k * 1e-4, host, os.getpid())
            elif k < ALIVE + GONE:  # the newest of all: gone runs must not push the alive ones out
                start = RunStart(run_id, f"gone-{k}", now + k * 1e-4, "elsewhere", 1)
            else:
                start = RunStart(run_id, f"done-{k}", now - 7200 + k, host, 1)
            queries.insert_run(conn, start, start.started_at if k >= ALIVE else now - 3600)
            snapshot = make_snapshot(energy_j=10.0 + k, devices=devices, phases=phases)
            queries.write_snapshot(conn, run_id, snapshot, (), now - 3600 if ALIVE <= k < ALIVE + GONE else now)
            if k >= ALIVE + GONE:
                queries.set_status(conn, run_id, RunStatus.COMPLETED, now)

    with Ledger(path) as ledger:
        ledger.transaction(work, write=True)


def test_a_refresh_reads_one_bounded_query_of_the_runs_table(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _big_ledger(path)
    watch = RunsWatch(path)
    try:
        watch.update()  # opens the ledger
        statements: list[str] = []
        assert watch._ledger is not None and watch._ledger._conn is not None
        watch._ledger._conn.set_trace_callback(statements.append)
        figures = watch.update()
    finally:
        watch.close()
    assert figures.ledger_up
    # the newest RUNS_SCANNED runs marked running are looked at: the gone ones among them not counted
    assert figures.in_progress == RUNS_SCANNED - GONE
    assert len(figures.runs) == MAX_RUN_SERIES
    assert [r.name for r in figures.runs[:2]] == [f"alive-{ALIVE - 1}", f"alive-{ALIVE - 2}"]
    assert not any(r.name.startswith("gone") for r in figures.runs)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements
    assert "FROM runs" in selects[0] and f"LIMIT {RUNS_SCANNED}" in selects[0], selects
    for table in ("devices", "phases", "tags", "counters", "samples"):
        assert not any(f"FROM {table}" in s for s in statements), (table, statements)


def test_power_of_a_run_between_two_refreshes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        start = RunStart("r" * 32, "train", time.time() - 1.0, socket.gethostname(), os.getpid())
        ledger.begin_run(start)
        ledger.flush(start.run_id, make_snapshot(energy_j=100.0, duration_s=10.0), [])
        watch = RunsWatch(path)
        try:
            (first,) = watch.update().runs
            ledger.flush(start.run_id, make_snapshot(energy_j=160.0, duration_s=12.0), [])
            (second,) = watch.update().runs
            ledger.end_run(start.run_id, RunStatus.COMPLETED, time.time(), make_snapshot(energy_j=160.0))
            assert watch.update().runs == ()
        finally:
            watch.close()
    assert (first.name, first.energy_j, first.power_w) == ("train", 100.0, 10.0)  # mean power so far
    assert (second.energy_j, second.power_w) == (160.0, 30.0)  # between the two flushes
