"""`greenai run`'s last write, the program's exit code, under a locked ledger: retried with
backoff for a bounded time (run_cmd.EXIT_CODE_WRITE_TIMEOUT_S, opening the ledger included),
then a warning; greenai always exits with the program's exit code, also when its summary cannot
be written. The ledger is locked by another connection right after the tracker's final write
(Tracker.stop wrapped in the greenai process), as tests/faults/test_final_write.py locks it
before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.helpers import greenai

from greenai.ledger.store import Ledger

# greenai run in a process of its own, the ledger locked once the tracker's stop() is over;
# released after sys.argv[1] seconds (never when negative); prints how long greenai took
# from there to its exit
LOCK_AFTER_STOP = textwrap.dedent(
    """
    import atexit, os, sqlite3, sys, threading, time
    from greenai.tracking import tracker

    ledger, release_after_s = os.environ["GREENAI_LEDGER"], float(sys.argv[1])
    stop = tracker.Tracker.stop
    locked_at = []

    def stop_then_lock(self, *args, **kwargs):
        result = stop(self, *args, **kwargs)
        other = sqlite3.connect(ledger, isolation_level=None, timeout=0.1, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # kept until released, or until this process exits
        if release_after_s >= 0:
            threading.Timer(release_after_s, other.rollback).start()
        locked_at.append(time.monotonic())
        return result

    tracker.Tracker.stop = stop_then_lock
    atexit.register(lambda: print(f"after stop: {time.monotonic() - locked_at[0]:.2f} s", file=sys.stderr))
    from greenai.cli.main import main

    main(["run", "--simulate", "--json", "--", sys.executable, "-c", "import sys; sys.exit(3)"])
    """
)


def greenai_run(ledger: Path, release_after_s: float) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env["GREENAI_LEDGER"] = str(ledger)
    proc = subprocess.run(
        [sys.executable, "-c", LOCK_AFTER_STOP, str(release_after_s)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    took = [line for line in proc.stderr.splitlines() if line.startswith("after stop: ")]
    assert took, proc.stderr[-3000:]
    return proc, float(took[-1].split()[2])


def run_of(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    text = proc.stderr
    start = text.rindex("\n{\n") + 1 if not text.startswith("{\n") else 0
    return json.loads(text[start : text.rindex("\n}\n") + 3])


def test_a_ledger_locked_after_the_run_ended_holds_greenai_run_no_longer_than_its_bound(tmp_path: Path) -> None:
    """The exit code's write used to open a ledger of its own and wait on the lock with
    SQLite's 30 s busy handler, retried for 30 s besides (31 s here, longer when the ledger
    had runs to mark incomplete). Now: given up after EXIT_CODE_WRITE_TIMEOUT_S with a
    warning, and greenai exits with the program's code."""
    from greenai.cli.run_cmd import EXIT_CODE_WRITE_TIMEOUT_S

    ledger = tmp_path / "l.db"
    proc, took_s = greenai_run(ledger, release_after_s=-1)
    assert proc.returncode == 3, proc.stderr[-3000:]  # the program's exit code
    assert took_s < EXIT_CODE_WRITE_TIMEOUT_S + 2.0, proc.stderr[-3000:]
    assert proc.stderr.count("could not record the exit code") == 1, proc.stderr[-3000:]
    data = run_of(proc)
    assert data["exit_code"] == 3
    with Ledger(ledger) as store:
        record = store.get_run(str(data["run_id"]))
    assert record.status == "failed" and record.exit_code is None  # the run's end is there, not the code


def test_a_ledger_locked_for_a_while_after_the_run_gets_the_exit_code_once_free(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    proc, _ = greenai_run(ledger, release_after_s=1.0)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "could not record the exit code" not in proc.stderr
    with Ledger(ledger) as store:
        record = store.get_run(str(run_of(proc)["run_id"]))
    assert record.exit_code == 3


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_summary_that_cannot_be_written_leaves_the_programs_exit_code(tmp_path: Path) -> None:
    """--json-out to a full disk (/dev/full): a warning, and greenai exits with the program's
    code (it used to end with exit code 1, 'internal error: OSError')."""
    proc = greenai(
        "run", "--simulate", "-q", "--json-out", "/dev/full", "--", "sh", "-c", "exit 7", ledger=tmp_path / "l.db"
    )
    assert proc.returncode == 7, proc.stderr
    assert "could not write the run's summary" in proc.stderr and "internal error" not in proc.stderr


def test_a_warning_to_a_broken_stderr_is_lost_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the program ended, a warning that cannot be written (stderr a closed pipe) must not
    become greenai's exit code 1 in place of the program's."""
    from greenai.cli import run_cmd

    class BrokenPipe:
        attempts = 0

        def write(self, text: str) -> int:
            BrokenPipe.attempts += 1
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stderr", BrokenPipe())
    run_cmd._warn("could not record the exit code: ledger busy")  # raised BrokenPipeError before
    assert BrokenPipe.attempts == 1  # the warning was tried, and its failure kept from greenai's exit
