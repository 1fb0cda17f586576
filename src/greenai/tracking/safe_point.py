"""The hand-off of budget breaches from the sampler thread to the user's thread.

The sampler records a breach (`record`); the user's thread acts on it only at a safe point
(`at_safe_point`): outside any phase, in the thread that started the run, while the run is
live. There `on_budget(run, breach)` is called and, for a `stop` budget, `BudgetExceeded`
is raised (see budget.py for where safe points are and why). `pending` is a plain
attribute so that the check on the training hot path costs one attribute read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from greenai.errors import ConfigError
from greenai.tracking.budget import BudgetBreach, BudgetExceeded

log = logging.getLogger("greenai.tracking")


class SafePointGate:
    def __init__(self, run_name: str, on_budget: Callable[[Any, BudgetBreach], None] | None) -> None:
        if on_budget is not None and not callable(on_budget):
            raise ConfigError("on_budget must be callable as on_budget(run, breach)")
        self.run_name = run_name
        self.on_budget = on_budget
        self.pending: bool | None = None  # set by the sampler thread; read at safe points
        self.breaches: list[BudgetBreach] = []  # every breach, in order
        self.stopped_by: BudgetBreach | None = None
        self.owner_thread: int | None = None
        self._queue: list[BudgetBreach] = []
        self._lock = threading.Lock()

    def detach(self) -> None:
        """In a forked child: nothing to act on there (the run is the parent's), fresh lock."""
        self._lock = threading.Lock()
        self._queue = []
        self.pending = None

    def record(self, breach: BudgetBreach) -> None:
        """Sampler thread: log the breach; queue it when a safe point must act on it."""
        self.breaches.append(breach)
        if breach.action == "stop":
            log.warning("greenai: run %r: %s; stopping at the next safe point", self.run_name, breach.message())
        else:
            log.warning("greenai: run %r: %s", self.run_name, breach.message())
        if breach.action == "stop" or self.on_budget is not None:
            with self._lock:
                self._queue.append(breach)
                self.pending = True

    def at_safe_point(self, run: Any, inside_phase: bool) -> None:
        """User's thread, a breach pending: call on_budget for each, raise if one stops."""
        if threading.get_ident() != self.owner_thread or inside_phase:
            return
        with self._lock:
            queued, self._queue = self._queue, []
            self.pending = None
        stop: BudgetBreach | None = None
        callback_error: Exception | None = None
        for breach in queued:
            if self.on_budget is not None:
                try:
                    self.on_budget(run, breach)
                except Exception as e:  # the budget stop still happens
                    log.exception("greenai: on_budget callback failed")
                    callback_error = callback_error or e
            if breach.action == "stop" and stop is None:
                stop = breach
        if stop is not None:
            self.stopped_by = stop
            raise BudgetExceeded(stop) from callback_error
