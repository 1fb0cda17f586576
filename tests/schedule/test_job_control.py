"""JobControl's `paused` phase is bound to no thread: the batch runner pauses, attaches and
resumes a job from whichever threads it runs them on, and the phase covers the pause only."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from greenai.config import Config
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.schedule.job_control import PAUSED_PHASE, JobControl
from greenai.tracking.tracker import Tracker


def on_a_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_a_pause_attached_and_resumed_on_other_threads_covers_the_pause_only(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    config = Config(ledger=tmp_path / "l.db", intensity="100", sample_hz=50.0, flush_interval_s=0.2).validate()
    control = JobControl()
    try:
        tracker = Tracker(
            "job", config=config, meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0)], pid=proc.pid
        ).start()
        on_a_thread(control.pause)  # asked before the process is attached: applied at attach
        on_a_thread(lambda: control.attach(proc.pid, tracker))  # the phase begins on this thread
        time.sleep(0.4)
        control.resume()  # ... and ends on another one
        time.sleep(1.2)
        control.detach()
        result = tracker.stop()
    finally:
        proc.kill()
        proc.wait()
    paused = [p for p in result.snapshot.phases if p.phase == PAUSED_PHASE]
    assert paused and paused[0].calls == 1
    assert 0.3 <= paused[0].duration_s <= 0.8  # the pause, not the rest of the job
    unpaused = sum(p.duration_s for p in result.snapshot.phases if p.phase == "(no phase)")
    assert unpaused >= 1.0
