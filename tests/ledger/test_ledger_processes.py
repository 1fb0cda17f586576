"""Real processes: concurrent writers into one file, and a writer killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from ledger_factories import flush_many, make_samples, make_snapshot, raw

from greenai.ledger import Ledger
from greenai.ledger.records import RunStatus

HERE = Path(__file__).parent


def test_four_processes_write_one_ledger_without_losing_rows(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    run_ids = [uuid.uuid4().hex for _ in range(4)]
    workers = [ctx.Process(target=flush_many, args=(str(db_path), run_id, 50, 10, barrier)) for run_id in run_ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]

    with Ledger(db_path) as ledger:
        runs = {r.start.run_id: r for r in ledger.list_runs()}
        assert set(runs) == set(run_ids)
        for run_id in run_ids:
            record = runs[run_id]
            samples = ledger.samples(run_id)
            assert record.status == RunStatus.COMPLETED
            assert len(samples) == 500
            assert record.snapshot == make_snapshot(15.0 * 10 * 50)
            assert samples[-1].energy_j == 7500.0
            assert len({s.t for s in samples}) == 500
    conn = raw(db_path)
    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM samples").fetchone() == (2000,)
    conn.close()


_CRASHING_CHILD = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {here!r})
from ledger_factories import make_samples, make_snapshot, make_start
from greenai.ledger import Ledger

ledger = Ledger(Path({path!r}))
start = make_start(run_id={run_id!r})
ledger.begin_run(start)
for k in range(3):
    samples = make_samples(start.started_at + k, 5)
    ledger.flush(start.run_id, make_snapshot(100.0 * (k + 1)), samples)
print(ledger.get_run(start.run_id).updated_at, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_process_leaves_a_valid_ledger_with_an_incomplete_run(db_path: Path) -> None:
    run_id = uuid.uuid4().hex
    code = textwrap.dedent(_CRASHING_CHILD).format(here=str(HERE), path=str(db_path), run_id=run_id)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    last_flush_at = float(child.stdout)

    conn = raw(db_path)
    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("running",)  # as the child left it
    conn.close()

    with Ledger(db_path) as ledger:
        record = ledger.get_run(run_id[:8])
        assert record.status == RunStatus.INCOMPLETE
        assert record.ended_at == record.updated_at == last_flush_at
        assert record.snapshot == make_snapshot(300.0)
        t0 = record.start.started_at
        expected = [s for k in range(3) for s in make_samples(t0 + k, 5)]
        assert ledger.samples(run_id) == expected
