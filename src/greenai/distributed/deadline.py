"""A call the rank's own thread waits for no longer than a deadline.

A store whose process is frozen blocks a read for ever, whatever its client's timeout (a
TCP store's socket stays open and says nothing), so a bound on each operation bounds
nothing. The rank's start (joining) and end (adding up) run their store and ledger steps
in a daemon thread of their own through `within`, and the rank's thread goes on at the
deadline; the thread left behind finishes or stays blocked, with nobody waiting for it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def within(work: Callable[[], T], deadline: float, name: str) -> T:
    """`work()` in a daemon thread named `name`, waited for until `deadline` (a
    `time.monotonic()` time, or math.inf): its result, or what it raised; TimeoutError past the deadline
    (the thread is left to itself: `work` must not change anything it shares once given up)."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            failure.append(e)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(None if deadline == math.inf else max(deadline - time.monotonic(), 0.0))
    if failure:
        raise failure[0]
    if not outcome:
        raise TimeoutError(f"{name} did not finish in time")
    return outcome[0]
