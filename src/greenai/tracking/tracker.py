"""The tracker: `with greenai.track("name") as run:`, a decorator, or start()/stop().

Start-up is strict (a meter the user named that is missing, a bad config, a corrupt ledger:
errors before the user's code runs); once running, nothing raises into the user's code.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Sequence, TypeVar

from greenai.carbon.accounting import CarbonAccount
from greenai.carbon import ConstantIntensity, resolve_intensity
from greenai.config import WORLD_INTENSITY_G_PER_KWH, Config, load_config
from greenai.ledger.records import RunStart, RunStatus
from greenai.ledger.store import Ledger, default_ledger_path
from greenai.meters.base import Meter
from greenai.meters.discover import discover
from greenai.meters.process import ProcessScope
from greenai.tracking.accumulator import RunAccumulator
from greenai.tracking.environment import describe_environment
from greenai.tracking.phases import PhaseTimeline
from greenai.tracking.result import RunResult
from greenai.tracking.sampler import Sampler

log = logging.getLogger("greenai.tracking")
F = TypeVar("F", bound=Callable[..., Any])

_active: set["Tracker"] = set()
_active_lock = threading.Lock()


class _Phase:
    """Context manager for one phase; cheap: two deque appends under a lock."""

    __slots__ = ("_timeline", "_name")

    def __init__(self, timeline: PhaseTimeline, name: str) -> None:
        self._timeline = timeline
        self._name = name

    def __enter__(self) -> None:
        self._timeline.enter(self._name)

    def __exit__(self, *exc: object) -> None:
        self._timeline.exit()


def intensity_from_config(config: Config) -> Any:
    if config.intensity:
        return resolve_intensity(config.intensity)
    return ConstantIntensity(WORLD_INTENSITY_G_PER_KWH, "world average, no intensity configured",
                             "Ember, Global Electricity Review 2024")


class Tracker(contextlib.ContextDecorator):
    """Tracks the energy of a block of code, a function, or (with `pid`) another process tree."""

    def __init__(
        self,
        name: str = "run",
        *,
        tags: dict[str, str] | None = None,
        config: Config | None = None,
        meters: Sequence[Meter] | None = None,
        store: bool = True,
        pid: int | None = None,
        handle_signals: bool = True,
        **settings: Any,
    ) -> None:
        self.name = name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self._args = dict(tags=tags, config=config, meters=meters, store=store, pid=pid,
                          handle_signals=handle_signals, **settings)
        self.config = config if config is not None else load_config(**settings)
        self.run_id = uuid.uuid4().hex
        self._given_meters = meters
        self._store = store
        self._pid = pid if pid is not None else os.getpid()
        self._handle_signals = handle_signals
        self._timeline = PhaseTimeline()
        self._counters: dict[str, float] = {}
        self._counter_lock = threading.Lock()
        self._sampler: Sampler | None = None
        self._ledger: Ledger | None = None
        self._ledger_path: Path | None = None
        self._previous_sigterm: Any = None
        self.result: RunResult | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Tracker:
        if self._sampler is not None:
            raise RuntimeError("this tracker was already started; create a new one per run")
        cfg = self.config
        scope = ProcessScope(self._pid)
        if self._given_meters is not None:
            meters, unavailable = list(self._given_meters), []
        else:
            found = discover(cfg, scope)
            meters, unavailable = found.meters, found.unavailable
        account = CarbonAccount(
            intensity_from_config(cfg), pue=cfg.pue, price_per_kwh=cfg.price_per_kwh or 0.0,
            currency=cfg.currency,
        )
        if self._store:
            self._ledger_path = cfg.ledger or default_ledger_path()
            self._ledger = Ledger(self._ledger_path)
            self._ledger.begin_run(RunStart(
                run_id=self.run_id, name=self.name, started_at=time.time(),
                host=socket.gethostname(), pid=self._pid, tags=self.tags,
                environment=describe_environment(meters, unavailable, cfg, scope),
            ))
        sink = self._flush_to_ledger if self._ledger is not None else None
        self._sampler = Sampler(meters, self._timeline, RunAccumulator(account),
                                self.counters, sink, 1.0 / cfg.sample_hz, cfg.flush_interval_s)
        self._sampler.start()
        with _active_lock:
            _active.add(self)
        self._install_sigterm()
        return self

    def stop(self, status: str = RunStatus.COMPLETED) -> RunResult:
        """End the run (idempotent) and return its result. Never raises into user code."""
        if self.result is not None:
            return self.result
        if self._sampler is None:
            raise RuntimeError("stop() called before start()")
        self._restore_sigterm()
        with _active_lock:
            _active.discard(self)
        snapshot = self._sampler.stop()
        if self._ledger is not None:
            try:
                self._ledger.end_run(self.run_id, status, time.time(), snapshot,
                                     self._sampler.take_unflushed())
            except Exception as e:
                log.warning("greenai: could not record the end of run %s: %s", self.run_id[:8], e)
            finally:
                self._ledger.close()
        self.result = RunResult(self.run_id, self.name, status, snapshot, self._ledger_path,
                                self.config.price_per_kwh is not None)
        return self.result

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop(_status_for(exc))

    def _recreate_cm(self) -> Tracker:
        # each call of a decorated function is its own run
        return Tracker(self.name, **self._args)

    # -- inside the run ----------------------------------------------------------------
    def phase(self, name: str) -> _Phase:
        """`with run.phase("forward"):` — nestable; energy is apportioned by time."""
        if not name or "/" in name:
            raise ValueError(f"phase names must be non-empty and contain no '/': {name!r}")
        return _Phase(self._timeline, name)

    def count(self, counter: str, amount: float = 1) -> None:
        """Add to a user counter (samples, tokens, steps) so results read as J/sample."""
        with self._counter_lock:
            self._counters[counter] = self._counters.get(counter, 0.0) + amount

    def counters(self) -> dict[str, float]:
        with self._counter_lock:
            return dict(self._counters)

    def snapshot(self) -> Any:
        """Totals so far, while the run goes on."""
        if self._sampler is None:
            raise RuntimeError("the tracker has not started")
        return self._sampler.snapshot()

    # -- plumbing --------------------------------------------------------------------
    def _flush_to_ledger(self, snapshot: Any, rows: list[Any]) -> None:
        assert self._ledger is not None
        self._ledger.flush(self.run_id, snapshot, rows)

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit so `with` blocks unwind and the run ends cleanly."""
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_on_sigterm)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


class TerminatedBySignal(SystemExit):
    """Raised in the main thread when SIGTERM arrives during a tracked run."""


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise TerminatedBySignal(128 + signum)


def _status_for(exc: BaseException | None) -> str:
    if exc is None:
        return RunStatus.COMPLETED
    if isinstance(exc, (KeyboardInterrupt, TerminatedBySignal)):
        return RunStatus.INTERRUPTED
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return RunStatus.COMPLETED
    return RunStatus.FAILED


@atexit.register
def _stop_forgotten_runs() -> None:
    """Runs started with start() and never stopped are ended when the interpreter exits."""
    with _active_lock:
        forgotten = list(_active)
    for tracker in forgotten:
        log.warning("greenai: run %r was not stopped; ending it at exit", tracker.name)
        tracker.stop(RunStatus.COMPLETED if sys.exc_info()[0] is None else RunStatus.FAILED)


def track(name: str | Callable[..., Any] = "run", **kwargs: Any) -> Any:
    """`with track("train") as run:` or `@track("train")` or bare `@track`."""
    if callable(name):
        func = name
        return Tracker(getattr(func, "__qualname__", "run"), **kwargs)(func)
    return Tracker(name, **kwargs)
