"""Real processes that track into one ledger: killed, terminated, and running side by side."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from greenai.ledger.store import Ledger

TRACKED_LOOP = textwrap.dedent("""
    import json, sys, time
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    ledger, seconds = sys.argv[1], float(sys.argv[2])
    cfg = Config(ledger=ledger, intensity="100", sample_hz=20.0, flush_interval_s=0.25).validate()
    tracker = Tracker("worker", config=cfg, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)])
    with tracker as run:
        print(json.dumps({"run_id": run.run_id}), flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with run.phase("step"):
                time.sleep(0.01)
            run.count("steps")
    print(json.dumps({"energy_j": tracker.result.energy_j}), flush=True)
""")


def start_worker(ledger, seconds: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", TRACKED_LOOP, str(ledger), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    first = proc.stdout.readline()
    return proc, json.loads(first)["run_id"]


def test_sigkill_leaves_a_valid_ledger_with_the_run_incomplete(tmp_path):
    ledger = tmp_path / "ledger.db"
    proc, run_id = start_worker(ledger, seconds=60)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
    with Ledger(ledger) as store:
        record = store.get_run(run_id)
        samples = store.samples(run_id)
    assert record.status == "incomplete"
    # energy up to the last flush (flushes every 0.25 s at 100 W): at least ~1 s of it
    assert record.snapshot.energy_j == pytest.approx(samples[-1].energy_j)
    assert 100.0 * 0.75 < record.snapshot.energy_j < 100.0 * 1.6
    assert record.snapshot.counters["steps"] > 10


def test_sigterm_ends_the_run_cleanly_as_interrupted(tmp_path):
    ledger = tmp_path / "ledger.db"
    proc, run_id = start_worker(ledger, seconds=60)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    with Ledger(ledger) as store:
        record = store.get_run(run_id)
    assert record.status == "interrupted"
    assert record.ended_at is not None
    assert record.snapshot.energy_j == pytest.approx(100.0 * record.snapshot.duration_s, rel=0.05)


def test_concurrent_trackers_lose_no_rows(tmp_path):
    ledger = tmp_path / "ledger.db"
    workers = [start_worker(ledger, seconds=2.0) for _ in range(4)]
    finals = {}
    for proc, run_id in workers:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        finals[run_id] = json.loads(out.strip().splitlines()[-1])["energy_j"]
    with Ledger(ledger) as store:
        runs = {r.start.run_id: r for r in store.list_runs()}
        assert set(runs) == set(finals)
        for run_id, energy_j in finals.items():
            record = runs[run_id]
            samples = store.samples(run_id)
            assert record.status == "completed"
            assert record.snapshot.energy_j == pytest.approx(energy_j)
            # every tick's row is there: cumulative energy rises sample by sample to the total
            energies = [s.energy_j for s in samples]
            assert energies == sorted(energies)
            assert energies[-1] == pytest.approx(energy_j)
            assert len(samples) >= 2.0 * 20 * 0.8  # ~20 Hz for 2 s
            # no tick is missing: consecutive samples are one sampling interval (50 ms) apart
            gaps = [b.t - a.t for a, b in zip(samples, samples[1:])]
            assert max(gaps) < 0.5
