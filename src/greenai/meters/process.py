"""The tracked process tree: CPU time, memory and I/O of a root process and its descendants.

Accounting (Linux): when a parent waits for a child, the kernel folds the child's CPU time
into the parent's cutime/cstime (psutil `children_user`/`children_system`) and its I/O into
the parent's `/proc/<pid>/io` (kernel/exit.c, `wait_task_zombie`). So each live process counts
itself plus what it reaped, and a process that disappears keeps its last seen value; growth
of its nearest live ancestor's folded counter first pays that value back, so a reaped child
is never counted twice. With `include_children=False` only the root's own CPU time counts;
its I/O counter cannot be split and includes reaped children.

Descendants are found at most every `refresh_s`, among the processes born since the last
look, with their full history; one that lived and was reaped in between is counted through
its parent. A descendant re-parented out of the tree (an orphan adopted by init) stays
tracked until it exits; its last value is then withheld from its old ancestor's later reaps
(an under-count bounded by that value, since no member reaped it).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path

import psutil

from greenai.errors import MeterError
from greenai.hardware.cpu import usable_cpus

Reading = tuple[int, float, float]  # (ppid, own counter, counter folded in from reaped children)


class _TreeCounter:
    """A cumulative counter summed over a process tree whose members come and go.

    A vanished member's last value stays in the total and becomes a debt of its nearest live
    ancestor; that ancestor's folded counter pays the debt before its growth is counted again.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._last: dict[int, Reading] = {}
        self._debt: dict[int, float] = {}

    def update(self, now: dict[int, Reading], hold: Collection[int]) -> float:
        """Add the growth since the last update; members in `hold` missing from `now` (not
        readable this time) keep their last reading."""
        last, debt = self._last, self._debt
        for pid in last.keys() - now.keys():
            if pid in hold:
                now[pid] = last[pid]
                continue
            owed = last[pid][1] + last[pid][2] + debt.pop(pid, 0.0)
            ancestor = _nearest(last[pid][0], now, last)
            if ancestor is not None:
                debt[ancestor] = debt.get(ancestor, 0.0) + owed
        for pid, (_, own, folded) in now.items():
            prev = last.get(pid)
            if prev is None:  # new member: all of its history happened inside the tree
                self.total += own + folded
                continue
            grown = max(0.0, folded - prev[2])
            paid = min(grown, debt.get(pid, 0.0))
            if paid:
                debt[pid] -= paid
            self.total += max(0.0, own - prev[1]) + grown - paid
        self._last = now
        return self.total


def _nearest(pid: int, now: dict[int, Reading], last: dict[int, Reading]) -> int | None:
    """`pid` or its nearest ancestor that is in `now`, following ppids recorded in `last`."""
    for _ in range(len(last) + 1):  # a ppid chain cannot be longer than the tree
        if pid in now:
            return pid
        if pid not in last:
            return None
        pid = last[pid][0]
    return None


class ProcessScope:
    """A root process and (optionally) its descendants, read through psutil."""

    def __init__(
        self,
        root_pid: int,
        include_children: bool = True,
        *,
        cgroup_root: str | Path | None = None,
        proc_root: str | Path | None = None,
        refresh_s: float = 1.0,
        usable_refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            self._root = psutil.Process(root_pid)
        except psutil.Error as e:
            raise MeterError(f"cannot track process {root_pid}: {e}") from e
        self.root_pid = root_pid
        self.include_children = include_children
        # None: hardware.cgroup's roots (/sys/fs/cgroup, /proc); tests pass fake trees
        self._cgroup_root = None if cgroup_root is None else Path(cgroup_root)
        self._proc_root = None if proc_root is None else Path(proc_root)
        self._refresh_s = refresh_s
        # affinity and cgroup quota rarely change and cost several /proc and cgroupfs reads
        self._usable_refresh_s = usable_refresh_s
        self._clock = clock
        self._is_self = root_pid == os.getpid()
        self._members: dict[int, tuple[psutil.Process, int]] = {}  # pid -> (process, ppid)
        self._seen_pids: set[int] = set()  # every pid on the host at the last refresh
        self._members_until = -math.inf
        self._usable = 1.0
        self._usable_until = -math.inf
        self._cpu, self._read, self._write = _TreeCounter(), _TreeCounter(), _TreeCounter()

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the tree, including descendants that have exited."""
        return self._cpu.update(self._sample(_cpu, self._root_cpu), self._members.keys())

    def rss_bytes(self) -> int:
        """Resident set size summed over the tree (pages shared between members count twice)."""
        sizes = self._sample(lambda p: (float(p.memory_info().rss), 0.0))
        return int(sum(own for _, own, _ in sizes.values()))

    def io_bytes(self) -> tuple[int, int]:
        """(read_bytes, write_bytes) of the tree at the storage layer (page-cache hits excluded).
        /proc/<pid>/io already includes reaped children, so it is all "folded"."""
        both = self._sample(_io)
        hold = self._members.keys()
        read = self._read.update({pid: (pp, 0.0, r) for pid, (pp, r, _) in both.items()}, hold)
        write = self._write.update({pid: (pp, 0.0, w) for pid, (pp, _, w) in both.items()}, hold)
        return int(read), int(write)

    def usable_cpus(self) -> float:
        """CPUs the root process may use: min(affinity, cgroup CPU quota), the one rule of
        `hardware.cpu.usable_cpus`. Re-read every usable_refresh_s."""
        if self._clock() >= self._usable_until:
            self._usable = usable_cpus(self.root_pid, cgroup_root=self._cgroup_root, proc_root=self._proc_root)
            self._usable_until = self._clock() + self._usable_refresh_s
        return self._usable

    def _root_cpu(self, root: psutil.Process) -> tuple[float, float]:
        if self._is_self:  # times(2) is a syscall: far cheaper than parsing /proc/self/stat
            t = os.times()
            own, folded = t.user + t.system, t.children_user + t.children_system
        else:
            own, folded = _cpu(root)
        return own, folded if self.include_children else 0.0

    def _sample(
        self,
        read: Callable[[psutil.Process], tuple[float, float]],
        read_root: Callable[[psutil.Process], tuple[float, float]] | None = None,
    ) -> dict[int, Reading]:
        """Apply `read` to the root, then to each descendant, parents before children (the
        order psutil lists them), so a reap is seen in the parent no later than the child
        vanishes. Processes that vanish or deny access are skipped silently."""
        out: dict[int, Reading] = {}
        try:
            out[self.root_pid] = (0, *(read_root or read)(self._root))
        except psutil.Error:
            pass
        if not self.include_children:
            return out
        if self._clock() >= self._members_until:
            self._refresh_members()
        for pid, (proc, ppid) in list(self._members.items()):
            try:
                out[pid] = (ppid, *read(proc))
            except (psutil.ZombieProcess, psutil.AccessDenied):
                pass  # still listed: its last reading is held
            except psutil.NoSuchProcess:
                del self._members[pid]
        return out

    def _refresh_members(self) -> None:
        """Adopt processes born since the last refresh whose parent is in the tree. Only the
        newcomers' /proc/<pid>/stat is read, where psutil's children() reads every process's
        on the host: a tenth of the cost on a quiet host of 70 processes, less on a busy one."""
        pids = set(psutil.pids())
        born: dict[int, tuple[psutil.Process, int]] = {}
        for pid in pids - self._seen_pids:
            try:
                proc = psutil.Process(pid)
                born[pid] = (proc, proc.ppid())
            except psutil.Error:
                pass
        self._seen_pids = pids
        tree = {self.root_pid, *self._members}
        while joined := [pid for pid, (_, ppid) in born.items() if ppid in tree]:
            for pid in joined:  # parents join before their children: the order _sample needs
                self._members[pid] = born.pop(pid)
                tree.add(pid)
        self._members_until = self._clock() + self._refresh_s


def _cpu(proc: psutil.Process) -> tuple[float, float]:
    t = proc.cpu_times()
    return t.user + t.system, t.children_user + t.children_system


def _io(proc: psutil.Process) -> tuple[float, float]:
    io = proc.io_counters()
    return float(io.read_bytes), float(io.write_bytes)
