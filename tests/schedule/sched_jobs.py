"""Callables for scheduler tests, imported by job subprocesses and Ray workers by name
(`sched_jobs:spin`); the tests put this directory on their PYTHONPATH."""

from __future__ import annotations

import time


def spin(seconds: float = 0.2) -> int:
    """Keep one CPU busy for `seconds`; return the loop count."""
    end, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        count += 1
    return count


def fail(seconds: float = 0.1, message: str = "the job broke") -> None:
    """Work a little, then raise."""
    spin(seconds)
    raise RuntimeError(message)


def heartbeat(path: str, beats: int = 120, every_s: float = 0.01) -> int:
    """Append the wall-clock time to `path` every `every_s` of busy work, `beats` times: a
    gap between beats shows the process was stopped."""
    with open(path, "w") as out:
        for _ in range(beats):
            spin(every_s)
            out.write(f"{time.time()}\n")
            out.flush()
    return beats


def burn_cpu(seconds: float = 0.5) -> float:
    """Use `seconds` of this process's CPU time (a paused job does not advance); return it."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return seconds
