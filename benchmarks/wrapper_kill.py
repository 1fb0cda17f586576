"""How soon the programs a killed wrapper tracked are gone: SIGKILL `greenai run` (or
`greenai schedule run`) and time until the program it started has exited.

    python benchmarks/wrapper_kill.py --write        # the figure in docs/benchmarks.md
    python benchmarks/wrapper_kill.py --kills 1      # smoke run

Each kill starts a fresh wrapper (`--simulate`, a ledger of its own) around a program that
writes its pid and sleeps, waits for the pid and half a second more (the tracker runs), then
SIGKILLs the wrapper and waits for the program's exit on a pidfd (Linux 5.3+: the moment it
exits, zombie or not, with no polling interval; psutil polled every millisecond elsewhere).
The program dies by the kernel's parent-death signal (`greenai run` and the local executor set
it); a batch's job's process group is besides killed by the batch's guard. The cases alternate
kill by kill (ABAB...), each kill waits for a quiet machine first, and each records its co-load:
the CPUs other processes kept busy from the wrapper's start to the program's end (this process
and the wrappers it reaped are not others; the sleeping program is, and adds next to nothing).
"""

from __future__ import annotations

import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness

CASES = ("run", "schedule")
GIVE_UP_S = 5.0  # a program still there this long after the kill: the promise is broken
# writes its pid, then sleeps until killed (a minute at most, should the wrapper not take it along)
SLEEPER = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n"


def own_cpu_s() -> float:
    """CPU seconds of this process and of the children it reaped (the wrappers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def wrapper_command(case: str, pid_file: Path, scratch: Path) -> list[str]:
    program = [sys.executable, "-c", SLEEPER, str(pid_file)]
    if case == "run":
        return [sys.executable, "-m", "greenai", "run", "--simulate", "--name", "killed", "--", *program]
    jobs = scratch / "jobs.json"
    jobs.write_text(json.dumps({"job": [{"id": "sleeper", "command": program}]}))
    return [sys.executable, "-m", "greenai", "schedule", "run", str(jobs), "--simulate", "--batch-id", "killed"]


def wait_for_pid(pid_file: Path, wrapper: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if wrapper.poll() is not None:
            raise RuntimeError(f"the wrapper ended (exit {wrapper.returncode}) before its program started")
        text = pid_file.read_text() if pid_file.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise RuntimeError("the program never started")


def kill_once(case: str, scratch: Path) -> tuple[float, float]:
    """(seconds from SIGKILL of the wrapper to the program's exit, co-load in CPUs)."""
    pid_file = scratch / "pid"
    pid_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env["GREENAI_LEDGER"] = str(scratch / "ledger.db")
    (scratch / "ledger.db").unlink(missing_ok=True)  # a fresh ledger: a batch id is used once
    before = _harness.cpu_sample(own_s=own_cpu_s())
    with open(scratch / "stderr", "wb") as stderr:
        wrapper = subprocess.Popen(
            wrapper_command(case, pid_file, scratch), env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        try:
            pid = wait_for_pid(pid_file, wrapper)
        except RuntimeError as e:
            raise RuntimeError(f"{e}:\n{(scratch / 'stderr').read_text()[-2000:]}") from None
        time.sleep(0.5)  # the tracker is running
        watch = Watch(pid)
        killed = time.perf_counter()
        wrapper.send_signal(signal.SIGKILL)
        gone_s = watch.wait(killed)
        wrapper.wait(10)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait(10)
        pid = int(pid_file.read_text() or 0) if pid_file.exists() else 0
        if pid:
            try:  # a failed kill leaves nothing behind
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    load = _harness.cpu_sample(own_s=own_cpu_s()).others_cores(before)
    return gone_s, load


class Watch:
    """Waits for a process that is not our child to exit: on a pidfd where there is one
    (readable the moment it exits), else by polling psutil every millisecond."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None

    def wait(self, since: float) -> float:
        """Seconds from `since` (time.perf_counter()) until the process exits."""
        try:
            if self.fd is not None:
                poller = select.poll()
                poller.register(self.fd, select.POLLIN)
                if not poller.poll(GIVE_UP_S * 1000):
                    raise RuntimeError(f"program {self.pid} still running {GIVE_UP_S:g} s after the kill")
                return time.perf_counter() - since
            import psutil

            while time.perf_counter() - since < GIVE_UP_S:
                try:
                    if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE:
                        break
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.001)
            else:
                raise RuntimeError(f"program {self.pid} still running {GIVE_UP_S:g} s after the kill")
            return time.perf_counter() - since
        finally:
            if self.fd is not None:
                os.close(self.fd)


def main() -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--kills", type=int, default=10, help="kills per case (default 10)")
    ap.add_argument("--cases", type=_harness.names, default=list(CASES), help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--quiet-wait", type=float, default=10.0, help="seconds to wait for a quiet machine per kill")
    _harness.add_write(ap, "wrapper-kill")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("the parent-death signal is Linux's: nothing to measure here")
    times: dict[str, list[float]] = {c: [] for c in args.cases}
    loads: dict[str, list[float]] = {c: [] for c in args.cases}
    with tempfile.TemporaryDirectory(prefix="greenai-wrapper-kill-") as scratch:
        for k, order in _harness.rotations(args.cases, args.kills):
            for case in order:
                _harness.wait_for_quiet(args.quiet_wait)
                directory = Path(scratch) / case
                directory.mkdir(exist_ok=True)
                gone_s, load = kill_once(case, directory)
                times[case].append(gone_s)
                loads[case].append(load)
                _harness.log(f"kill {k + 1} {case}: program gone {gone_s * 1000:.1f} ms after; co-load {load:.2f}")
    text = report(times, loads, args.quiet_wait)
    print(text)
    if args.write:
        _harness.write_section(args.write, "wrapper-kill", text)


LABELS = {"run": "`greenai run -- PROGRAM`", "schedule": "`greenai schedule run` (a command job)"}


def report(times: dict[str, list[float]], loads: dict[str, list[float]], quiet_wait_s: float) -> str:
    lines = [
        "## A killed wrapper: its programs die with it (issue 16, item 7)",
        "",
        f"`{_harness.command(__file__, None)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Linux {os.uname().release}): SIGKILL of the "
        "wrapper half a second after its program (a Python process sleeping) started; the time until the program "
        "had exited, read on a pidfd. The cases alternate kill by kill, each after waiting (at most "
        f"{quiet_wait_s:g} s) for a quiet machine.",
        "",
        "| wrapper | kills | median | min ... max | 95 % CI of the median | co-load median (max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case, values in times.items():
        ms = [v * 1000 for v in values]
        low, high, conf = _harness.median_ci(ms)
        lines.append(
            f"| {LABELS[case]} | {len(ms)} | {statistics.median(ms):.1f} ms | {min(ms):.1f} ... {max(ms):.1f} ms | "
            f"{low:.1f} ... {high:.1f} ms ({conf:.0%}) | {statistics.median(loads[case]):.2f} "
            f"({max(loads[case]):.2f}) CPUs |"
        )
    worst = max(max(v) for v in times.values()) * 1000
    lines += [
        "",
        f"Every program was gone, the slowest {worst:.1f} ms after its wrapper was killed (the tests, "
        "`tests/faults/test_wrapper_killed.py`, allow 5 s). The programs die by the kernel's parent-death "
        "signal, set when they were started; a batch's job's process group is besides killed by the batch's guard "
        "when the scheduler's end of its pipe closes. Co-load: the CPUs other processes kept busy from "
        "the wrapper's start to the program's end (the wrappers, reaped by the benchmark, are its own). "
        + _harness.machine_words(max(statistics.median(v) for v in loads.values())),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
