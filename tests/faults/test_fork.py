"""fork() inside a tracked run: the child never touches its parent's tracker, ledger
connection or locks (os.register_at_fork), whether it leaves the `with` block normally,
calls sys.exit or falls off the end of the program; the parent's run goes on, unaffected,
and no child deadlocks, with hundreds of forks while the sampler runs at 1000 Hz."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from greenai.ledger.store import Ledger

FORKING_PARENT = textwrap.dedent("""
    import json, os, signal, sys, time
    from greenai.config import Config
    from greenai.ledger.store import Ledger
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    ledger, n_children = sys.argv[1], int(sys.argv[2])
    cfg = Config(ledger=ledger, intensity="100", sample_hz=1000.0, flush_interval_s=0.05).validate()
    meters = [SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0), SimulatedMeter("cpu:0", DeviceKind.CPU, 20.0)]
    child_index = None
    pids = []
    with Tracker("forking", config=cfg, meters=meters) as run:
        for i in range(n_children):
            with run.phase("parent_step"):
                run.count("steps")
                pid = os.fork()
            if pid == 0:
                child_index = i
                # the child uses the run it inherited, then leaves the `with` block normally
                with run.phase("in_child"):
                    run.count("child_steps")
                break
            pids.append(pid)
            time.sleep(0.001)
        if child_index is None:
            # every child must be gone within 20 s: a child stuck on an inherited lock is not
            deadline, hung = time.monotonic() + 20, 0
            for pid in pids:
                while True:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        break
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        hung += 1
                        break
                    time.sleep(0.005)
            with Ledger(ledger) as reader:  # the run as the children left it
                mid = reader.get_run(run.run_id)
            time.sleep(0.3)
    if child_index is not None:
        result = run.result
        assert result.status == "running" and result.stored is False, result
        if child_index % 2:
            sys.exit(0)  # atexit hooks run
        # even: fall off the end of the program (interpreter exit, atexit hooks too)
    else:
        print(json.dumps({
            "run_id": run.run_id, "hung": hung, "mid_status": mid.status, "mid_ended_at": mid.ended_at,
            "status": run.result.status, "energy_j": run.result.energy_j, "duration_s": run.result.duration_s,
            "gpu_j": run.result.device_energy_j("gpu:0"), "steps": run.result.snapshot.counters.get("steps"),
            "child_steps": run.result.snapshot.counters.get("child_steps"),
            "phases": sorted({p.phase for p in run.result.snapshot.phases}),
        }))
""")


@pytest.mark.parametrize("n_children", [200])
def test_forked_children_leave_the_parents_run_alone(tmp_path, n_children):
    ledger = tmp_path / "ledger.db"
    proc = subprocess.run(
        [sys.executable, "-c", FORKING_PARENT, str(ledger), str(n_children)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hung"] == 0
    # after all the children had exited, the parent's run was still running
    assert out["mid_status"] == "running" and out["mid_ended_at"] is None
    assert out["status"] == "completed"
    assert out["steps"] == n_children and out["child_steps"] is None  # nothing from the children
    assert "in_child" not in out["phases"]
    assert out["gpu_j"] == pytest.approx(100.0 * out["duration_s"], rel=0.05)
    with Ledger(ledger) as store:
        record = store.get_run(out["run_id"])
        runs = store.list_runs()
    assert len(runs) == 1
    assert record.status == "completed"
    assert record.snapshot.energy_j == pytest.approx(out["energy_j"])
    assert record.snapshot.duration_s == pytest.approx(out["duration_s"])


FORK_DURING_STOP = textwrap.dedent("""
    import json, os, signal, sqlite3, sys, threading, time
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    ledger = sys.argv[1]
    cfg = Config(ledger=ledger, intensity="100", sample_hz=50.0, flush_interval_s=0.1).validate()
    tracker = Tracker("ending", config=cfg, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)]).start()
    time.sleep(0.3)
    other = sqlite3.connect(ledger, isolation_level=None, timeout=0.1, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the final write waits on it (SQLite's busy handler)
    threading.Timer(1.5, other.rollback).start()
    stopping = threading.Thread(target=tracker.stop)
    stopping.start()
    time.sleep(0.5)  # the stopping thread is inside the final write
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        # the child ends the run it inherited (a `with` block's exit would): nothing of it is its
        t0 = time.monotonic()
        result = tracker.stop()
        took_s = time.monotonic() - t0
        os.write(write_end, json.dumps({"status": result.status, "stored": result.stored,
                                        "notes": list(result.notes), "took_s": took_s}).encode())
        sys.exit(0)
    os.close(write_end)
    deadline, hung = time.monotonic() + 15, False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            hung = True
            break
        time.sleep(0.01)
    child = json.loads(os.read(read_end, 65536) or b"null")
    stopping.join(20)
    print(json.dumps({"hung": hung, "child": child, "stored": tracker.result.stored,
                      "status": tracker.result.status, "energy_j": tracker.result.energy_j}))
""")


def test_a_fork_while_another_thread_is_in_stop_leaves_the_parents_run_alone(tmp_path):
    """A tracker being ended is still covered by the fork hooks until stop() returns: a child
    forked while another thread is in the run's final write (held ~1 s here by a lock another
    connection keeps) does not own the run. Its stop() records nothing at once; it used to
    end the parent's run through the inherited connection, here waiting 5 s on the parent's
    lock, which the parent's stopping thread held at the fork."""
    proc = subprocess.run(
        [sys.executable, "-c", FORK_DURING_STOP, str(tmp_path / "ledger.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hung"] is False
    child = out["child"]
    assert child["status"] == "running" and child["stored"] is False
    assert any("forked" in note for note in child["notes"]) and child["took_s"] < 1.0
    assert out["stored"] is True and out["status"] == "completed"
    with Ledger(tmp_path / "ledger.db") as store:
        (record,) = store.list_runs()
    assert record.status == "completed" and record.snapshot.energy_j == pytest.approx(out["energy_j"])
