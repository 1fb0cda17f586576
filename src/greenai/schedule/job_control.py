"""Pause and resume a local job: SIGSTOP/SIGCONT to its process group, a `paused` phase in its run.

A local subprocess job runs in a session (and process group) of its own, so one signal
reaches the whole tree it spawned — a shell and its children, a launcher and its workers —
unless a process moved itself to another group (`setsid`), which then keeps running. While
stopped, the processes use no CPU time; the time and the energy the meters still attribute to
the job in that interval (on estimated meters: the idle share of its CPUs) go to the run's
`paused` phase, so they are visible rather than mixed into the job's work.

A pause asked for before the process exists (or before its tracker runs) is applied as soon
as it does.

A job's group dies with its scheduler (issue 16, item 7): each job's first process gets the
kernel's parent-death signal (hardware/parent_death.py, set by its bootstrap), and a
`GroupGuard`, one small process per batch in a session of its own, SIGKILLs the groups of the
jobs still running when the scheduler's end of its pipe closes: at its normal end with none
left, or when it is killed, SIGKILL included. So the processes a job started (a shell
script's commands, a launcher's workers) die too, unless they left the group. SIGSTOP cannot be caught, so the job needs no cooperation; a job that must not be
frozen (it holds a lease, talks to a peer with a timeout) should not be marked interruptible.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from greenai.tracking.phases import PhaseLane
    from greenai.tracking.tracker import Tracker

PAUSED_PHASE = "paused"


# The guard's program: "+PGID" and "-PGID" lines on stdin; at end of file, SIGKILL to every
# group still listed. It ignores the terminal (a session of its own) and imports nothing else.
_GUARD = """\
import os, signal, sys
groups = set()
for line in sys.stdin:
    (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class GroupGuard:
    """Kills the process groups of the jobs still running when this process ends, however it
    ends: a process of its own, started with the first job, that waits for the end of a pipe
    only this process writes. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def add(self, pgid: int) -> None:
        """The job's group `pgid` is running: kill it if this process dies."""
        self._send(f"+{pgid}\n", start=True)

    def remove(self, pgid: int) -> None:
        """The job's first process has exited (not yet reaped, so `pgid` is still its group)."""
        self._send(f"-{pgid}\n", start=False)

    def close(self) -> None:
        """No job runs any more: the guard ends (killing any group still listed)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            proc.wait()

    def _send(self, line: str, start: bool) -> None:
        with self._lock:
            if self._proc is None:
                if not start:
                    return
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _GUARD], stdin=subprocess.PIPE, start_new_session=True
                )
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except OSError:  # the guard is gone: each job's first process still dies with us
                pass


class JobControl:
    """The pause switch of one running local job. Thread-safe: the batch runner flips it
    while the executor's thread waits for the process. With a `guard`, the job's group is
    killed if this process dies while the job runs."""

    def __init__(self, guard: GroupGuard | None = None) -> None:
        self._guard = guard
        self._lock = threading.Lock()
        self._pgid: int | None = None
        self._tracker: Tracker | None = None
        self._paused = False
        # the open `paused` phase: a lane, bound to no thread, since the batch runner may
        # pause, attach and resume the job from different threads (a thread's phase ended on
        # another thread would stay open for the rest of the job)
        self._phase: PhaseLane | None = None
        self._ending: signal.Signals | None = None  # asked to end: the signal, kept for attach

    def attach(self, pgid: int, tracker: Tracker) -> None:
        """The job's process group now exists and its tracker runs: apply a pending pause,
        or the end asked for before it existed."""
        with self._lock:
            self._pgid, self._tracker = pgid, tracker
            if self._guard is not None:
                self._guard.add(pgid)
            if self._ending is not None:
                self._end(self._ending)
            elif self._paused:
                self._stop()

    def detach(self) -> None:
        """The job's process has exited (not yet reaped, so its group id cannot have been
        reused): no more signals; close the phase."""
        with self._lock:
            self._close_phase()
            if self._guard is not None and self._pgid is not None:
                self._guard.remove(self._pgid)
            self._pgid, self._tracker = None, None

    def pause(self) -> None:
        with self._lock:
            if self._paused:
                return
            self._paused = True
            if self._pgid is not None:
                self._stop()

    def resume(self) -> None:
        with self._lock:
            if not self._paused:
                return
            self._paused = False
            if self._pgid is not None:
                self._signal(signal.SIGCONT)
                self._close_phase()

    def terminate(self) -> None:
        """Ask the whole group to end (SIGTERM: a job may checkpoint on it), now or as soon
        as it exists."""
        self._ask_end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole group, now or as soon as it exists."""
        self._ask_end(signal.SIGKILL)

    def _ask_end(self, sig: signal.Signals) -> None:
        with self._lock:
            self._ending = sig
            if self._pgid is not None:
                self._end(sig)

    def _end(self, sig: signal.Signals) -> None:
        self._signal(sig)
        self._signal(signal.SIGCONT)  # stopped members act on it at once

    def _stop(self) -> None:
        if self._tracker is not None and self._phase is None:
            self._phase = self._tracker.lane(PAUSED_PHASE)
            self._phase.begin()
        self._signal(signal.SIGSTOP)

    def _close_phase(self) -> None:
        if self._phase is not None:
            self._phase.end()
            self._phase = None

    def _signal(self, sig: signal.Signals) -> None:
        assert self._pgid is not None
        try:
            os.killpg(self._pgid, sig)
        except ProcessLookupError:  # the job ended between the decision and the signal
            pass
