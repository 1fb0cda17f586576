"""SIGKILL on the wrapper: the programs it tracks die with it (issue 16, item 7).

`greenai run -- CMD` and `greenai schedule run` (local executor) start what they track as
their children, which the kernel kills when the wrapper goes (hardware/parent_death.py); a
batch's guard kills the process groups of its jobs, so what a job started dies too. The
ledger then reads the runs `incomplete` and the batch's jobs as not running. Real processes,
real signals, a real ledger."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from tests.helpers import as_json, greenai

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")

# writes its pid, then sleeps until killed (a minute at most, should the test fail)
SLEEPER = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n"


def env_for(ledger: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env["GREENAI_LEDGER"] = str(ledger)
    return env


def wait_for_pids(files: list[Path], wrapper: subprocess.Popen[bytes], timeout_s: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert wrapper.poll() is None, "the wrapper ended before its programs started"
        texts = [f.read_text() if f.exists() else "" for f in files]
        if all(texts):
            return [int(t) for t in texts]
        time.sleep(0.05)
    raise AssertionError("the programs never started")


def gone(pid: int) -> bool:
    """Dead, or a zombie that nothing reaps (a container's pid 1 may not)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_and_watch(wrapper: subprocess.Popen[bytes], pids: list[int]) -> float:
    """SIGKILL the wrapper; seconds until every program is gone (AssertionError after 5 s)."""
    wrapper.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wrapper.wait(10)
    try:
        while not all(gone(pid) for pid in pids):
            assert time.monotonic() - killed < 5.0, f"still running: {[p for p in pids if not gone(p)]}"
            time.sleep(0.02)
        return time.monotonic() - killed
    finally:
        for pid in pids:  # a failed test leaves nothing behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_greenai_run_killed_takes_its_program_with_it(tmp_path: Path) -> None:
    ledger, pid_file = tmp_path / "l.db", tmp_path / "pid"
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "greenai", "run", "--simulate", "--name", "sleeper", "--"]
        + [sys.executable, "-c", SLEEPER, str(pid_file)],
        env=env_for(ledger),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (pid,) = wait_for_pids([pid_file], wrapper)
    deadline = time.monotonic() + 30  # the run is in the ledger (its tracker started)
    while not (ledger.exists() and "running" in greenai("runs", "list", ledger=ledger).stdout):
        assert time.monotonic() < deadline, "the run never showed as running"
        time.sleep(0.1)
    assert kill_and_watch(wrapper, [pid]) < 5.0
    (run,) = as_json(greenai("runs", "list", "--json", ledger=ledger))
    assert (run["name"], run["status"]) == ("sleeper", "incomplete")


def test_schedule_run_killed_takes_its_jobs_with_it(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    pid_files = [tmp_path / "cmd.pid", tmp_path / "fn.pid"]
    module = tmp_path / "sleepy.py"
    module.write_text(
        textwrap.dedent("""
            import os, time

            def sleep(pid_file):
                open(pid_file, "w").write(str(os.getpid()))
                time.sleep(60)
        """)
    )
    jobs = tmp_path / "jobs.json"
    jobs.write_text(
        json.dumps(
            {
                "job": [
                    {"id": "cmd", "command": [sys.executable, "-c", SLEEPER, str(pid_files[0])]},
                    {"id": "fn", "callable": f"{module}:sleep", "kwargs": {"pid_file": str(pid_files[1])}},
                ]
            }
        )
    )
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "greenai", "schedule", "run", str(jobs), "--simulate", "--parallel", "2"]
        + ["--batch-id", "killed"],
        env=env_for(ledger),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids = wait_for_pids(pid_files, wrapper)
    time.sleep(0.5)  # past the gate: the jobs' trackers run
    assert kill_and_watch(wrapper, pids) < 5.0
    shown = as_json(greenai("schedule", "show", "killed", "--json", ledger=ledger))
    assert sorted((j["job_id"], j["status"]) for j in shown) == [("cmd", "incomplete"), ("fn", "incomplete")]
    runs = as_json(greenai("runs", "list", "--json", ledger=ledger))
    assert sorted(r["status"] for r in runs) == ["incomplete", "incomplete"]


def test_schedule_run_killed_takes_the_processes_its_jobs_started_with_it(tmp_path: Path) -> None:
    """A job's shell killed with its scheduler would leave the programs it started running;
    the batch's guard kills the whole group of every job still running."""
    ledger, pid_file = tmp_path / "l.db", tmp_path / "grandchild.pid"
    script = f"{shlex.quote(sys.executable)} -c {shlex.quote(SLEEPER)} {shlex.quote(str(pid_file))} & wait"
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({"job": [{"id": "shell", "command": ["sh", "-c", script]}]}))
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "greenai", "schedule", "run", str(jobs), "--simulate", "--batch-id", "b"],
        env=env_for(ledger),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (grandchild,) = wait_for_pids([pid_file], wrapper)
    helpers = [p.pid for p in psutil.Process(wrapper.pid).children()]  # the job's shell (and the guard)
    assert psutil.Process(grandchild).ppid() in helpers
    assert kill_and_watch(wrapper, [grandchild, *helpers]) < 5.0
    assert [j["status"] for j in as_json(greenai("schedule", "show", "b", "--json", ledger=ledger))] == ["incomplete"]


def test_a_child_whose_parent_is_already_gone_dies_at_once(tmp_path: Path) -> None:
    """The race the parent-death signal leaves open: set after the parent died, it never
    comes; the child sees that its parent is not the process that started it, and dies."""
    code = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[2] / 'src')!r})\n"
        "from greenai.hardware.parent_death import die_with_parent\n"
        "armed = die_with_parent(os.getppid())\n"  # the real parent: nothing happens
        "print(armed, flush=True)\n"
        "die_with_parent(os.getppid() + 1_000_000)\n"  # a pid that is not its parent: killed
        "print('still alive', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "True\n" and proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr)
