"""A run killed (SIGKILL) before its first regular flush keeps its energy: the first sample
is written right after the first tick (FIRST_TICK_S = 0.2 s), and the ledger is never more
than one flush interval behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from greenai.ledger.store import Ledger

TRACKED = textwrap.dedent("""
    import json, sys, time
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    cfg = Config(ledger=sys.argv[1], intensity="100").validate()  # defaults: 10 Hz, a flush per second
    with Tracker("short", config=cfg, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)]) as run:
        print(json.dumps({"run_id": run.run_id}), flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("kill_after_s", [0.5, 2.5])
def test_a_run_killed_early_keeps_its_energy(tmp_path, kill_after_s):
    ledger = tmp_path / "ledger.db"
    proc = subprocess.Popen([sys.executable, "-c", TRACKED, str(ledger)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = json.loads(proc.stdout.readline())["run_id"]
    started = time.monotonic()
    time.sleep(kill_after_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    ran_s = time.monotonic() - started
    with Ledger(ledger) as store:
        record = store.get_run(run_id)
        samples = store.samples(run_id)
    assert record.status == "incomplete"
    assert samples and record.snapshot.energy_j == pytest.approx(samples[-1].energy_j)
    # at most about a second lost (flush interval 1 s, plus the write itself)
    assert record.snapshot.energy_j > 100.0 * max(ran_s - 1.25, 0.1)
    assert record.snapshot.energy_j < 100.0 * (ran_s + 0.3)
