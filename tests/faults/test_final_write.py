"""The final write under a locked or full ledger: retried with backoff for a bounded time
(FINAL_WRITE_TIMEOUT_S), the user's thread never held longer than STOP_BOUND_S, and the
result always says what the ledger holds (`stored`, `notes`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from greenai.errors import LedgerError
from greenai.ledger.records import RunSnapshot
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.tracker import FINAL_WRITE_TIMEOUT_S, STOP_BOUND_S, Tracker


def gpu(power_w: float = 100.0) -> SimulatedMeter:
    return SimulatedMeter("gpu:0", DeviceKind.GPU, power_w)


def lock_ledger(path) -> sqlite3.Connection:
    """Another connection takes the write lock and keeps it until rolled back."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0.1, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_ledger_locked_past_the_bound_gives_a_result_that_says_it_was_not_stored(make_config, tmp_path):
    path = tmp_path / "ledger.db"
    tracker = Tracker("locked", config=make_config(), meters=[gpu()]).start()
    time.sleep(0.5)  # a few flushes go through
    other = lock_ledger(path)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        result = tracker.stop()  # never raises
        took_s = time.monotonic() - t0
    finally:
        other.rollback()
        other.close()
    assert FINAL_WRITE_TIMEOUT_S - 0.5 < took_s < STOP_BOUND_S  # retried, then given up, within the bound
    assert result.status == "completed"
    assert result.stored is False
    assert any("could not be written" in note and "locked" in note for note in result.notes)
    with Ledger(path) as ledger:
        record = ledger.get_run(tracker.run_id)
    # what the ledger holds is what the result says: the run as of its last flush, still
    # `running` while this process lives (incomplete once it has exited)
    assert record.status == "running" and record.ended_at is None
    assert 0 < record.snapshot.energy_j < result.energy_j


def test_a_ledger_locked_for_a_while_is_written_once_free(make_config, tmp_path):
    path = tmp_path / "ledger.db"
    tracker = Tracker("busy", config=make_config(), meters=[gpu()]).start()
    time.sleep(0.3)
    other = lock_ledger(path)
    unlock = threading.Timer(2.0, other.rollback)
    unlock.start()
    try:
        t0 = time.monotonic()
        result = tracker.stop()
        took_s = time.monotonic() - t0
    finally:
        unlock.join()
        other.close()
    assert 1.5 < took_s < FINAL_WRITE_TIMEOUT_S + 1.0
    assert result.stored is True and result.notes == ()
    with Ledger(path) as ledger:
        record = ledger.get_run(tracker.run_id)
        samples = ledger.samples(tracker.run_id)
    assert record.status == "completed"
    assert record.snapshot.energy_j == pytest.approx(result.energy_j)
    assert samples[-1].energy_j == pytest.approx(result.energy_j)


FULL_DISK = textwrap.dedent("""
    import json, resource, signal, sys, time
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    ledger = sys.argv[1]
    cfg = Config(ledger=ledger, intensity="100", sample_hz=20.0, flush_interval_s=0.2).validate()
    tracker = Tracker("disk-full", config=cfg, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)]).start()
    time.sleep(0.6)
    # the disk fills: from now on no file of this process may grow (writes fail with EFBIG)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    time.sleep(0.6)
    t0 = time.monotonic()
    result = tracker.stop()
    took_s = time.monotonic() - t0
    print(json.dumps({"run_id": tracker.run_id, "took_s": took_s, "status": result.status,
                      "stored": result.stored, "notes": list(result.notes), "energy_j": result.energy_j}))
""")


def test_a_full_disk_at_stop_is_retried_within_the_bound_and_said_in_the_result(tmp_path):
    path = tmp_path / "ledger.db"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["took_s"] < STOP_BOUND_S
    assert out["status"] == "completed" and out["stored"] is False
    assert any("could not be written" in note for note in out["notes"])
    with Ledger(path) as ledger:
        record = ledger.get_run(out["run_id"])
    # the process has exited: the ledger shows the run incomplete, with its last flush
    assert record.status == "incomplete"
    assert 100.0 * 0.4 < record.snapshot.energy_j < out["energy_j"]


def test_a_write_error_retrying_cannot_fix_fails_at_once_and_says_so(tmp_path):
    """A constraint failure is not retried: it fails at once, and the error says what
    happened (it used to say 'gave up after 5 s' as a locked ledger's does)."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        t0 = time.monotonic()
        with pytest.raises(LedgerError) as refused:
            ledger.write(
                lambda conn: conn.execute("INSERT INTO counters (run_id, name, value) VALUES ('x', NULL, 1)"),
                timeout_s=FINAL_WRITE_TIMEOUT_S,
            )
        took_s = time.monotonic() - t0
    message = str(refused.value)
    assert took_s < 1.0
    assert "NOT NULL constraint failed" in message and "not retried" in message
    assert "gave up" not in message and f"{FINAL_WRITE_TIMEOUT_S:g} s" not in message


def test_a_write_given_up_on_a_locked_ledger_says_how_long_it_was_tried(tmp_path):
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        other = lock_ledger(path)
        try:
            with pytest.raises(LedgerError, match=r"database is locked \(tried for 0\.[3-9] s"):
                ledger.write(lambda conn: conn.execute("SELECT 1"), timeout_s=0.4)
        finally:
            other.rollback()
            other.close()


def test_a_flush_that_comes_after_the_end_changes_nothing(tmp_path):
    """A sampler thread given up at stop() may still flush once the final totals are written:
    the run's row, totals and samples are no longer a flush's to change."""
    from greenai.ledger.records import DeviceTotal, RunStart, SampleRow
    from greenai.meters.base import Provenance

    def snapshot(energy_j: float):
        device = DeviceTotal("gpu:0", DeviceKind.GPU, energy_j, Provenance.SIMULATED, 0.0)
        return RunSnapshot(1.0, energy_j, 0.0, Provenance.SIMULATED, energy_j, 1.0, 0.0, "", devices=(device,))

    def sample(t: float, energy_j: float):
        return SampleRow(t, "gpu:0", DeviceKind.GPU, 100.0, energy_j, Provenance.SIMULATED, None)

    with Ledger(tmp_path / "ledger.db") as ledger:
        ledger.begin_run(RunStart("r1", "late", 1000.0, "host", 1))
        ledger.flush("r1", snapshot(50.0), [sample(1000.5, 50.0)], timeout_s=1.0)
        ledger.end_run("r1", "completed", 1002.0, snapshot(100.0), [sample(1001.0, 100.0)], timeout_s=1.0)
        ledger.flush("r1", snapshot(120.0), [sample(1001.2, 120.0)], timeout_s=1.0)  # too late: nothing
        record = ledger.get_run("r1")
        samples = ledger.samples("r1")
    assert (record.status, record.ended_at) == ("completed", 1002.0)
    assert record.snapshot.energy_j == 100.0 and record.snapshot.devices[0].energy_j == 100.0
    assert [s.energy_j for s in samples] == [50.0, 100.0]
