"""The kernel's parent-death signal: a program greenai starts dies with the greenai process
that started it.

`greenai run -- CMD` and the local executor of `greenai schedule run` start the program they
track as their child. Killed with SIGKILL (the OOM killer, `kill -9`, a crashed node agent),
they run no handler and cannot pass anything on; without this the program ran on, untracked,
its run left `incomplete`. Linux's `prctl(PR_SET_PDEATHSIG, SIGKILL)`, set in the child, makes
the kernel send the child SIGKILL when its parent goes.

Three details of the kernel's rule:

* The signal follows the parent *thread*, the one that forked the child: start the child from
  a thread that outlives it (the main thread, or the thread that waits for the child).
* Set in the child, it can come too late: the parent may already be gone (the child was then
  adopted by another process). After setting it, the child compares its parent's pid with the
  pid of the process that started it, and kills itself if they differ.
* It covers the child only, not the processes the child starts in turn, and it is cleared when
  the child executes a set-user-ID or file-capability program (`sudo`, `ping`).

Elsewhere than Linux there is no such signal: nothing is set, and the functions say so.

This file imports the standard library only (no other module of greenai, not even the
package), so a job's bootstrap can load it alone, before any import of greenai (see
`schedule/executor.py`).
"""

from __future__ import annotations

import ctypes
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing would cost a job's bootstrap ~10 ms
if TYPE_CHECKING:
    from collections.abc import Callable

    _Prctl = Callable[..., int]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# SIGKILL (9 on Linux, every architecture; the signal module is not imported: it costs a job's
# bootstrap more than the rest). A program that can clean up is sent SIGTERM by a live wrapper.
DEATH_SIGNAL = 9


def die_with_parent(parent_pid: int) -> bool:
    """In a child process: be sent SIGKILL when the thread that forked it exits; die at once if
    `parent_pid` (the process that started this one) is already gone. False where the kernel
    has no parent-death signal (not Linux) or refused it."""
    prctl = _prctl()
    return prctl is not None and _arm(prctl, parent_pid)


def _arm(prctl: _Prctl, parent_pid: int) -> bool:
    if prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent died before the signal was set: it will not come
        os.kill(os.getpid(), DEATH_SIGNAL)
    return True


def _prctl() -> _Prctl | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: _Prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl
