"""The tracker: `with greenai.track("name") as run:`, a decorator, or start()/stop().

Start-up is strict (a meter the user named that is missing, a bad config, a corrupt ledger:
errors before the user's code runs); once running, nothing raises into the user's code, with
one documented exception: a `stop` budget raises `BudgetExceeded` at a safe point (budget.py).

Bounds on the user's thread: meters are only ever called in a worker thread, a tick's
reads waited for METER_TIMEOUT_S (1 s) at most together; `stop()` waits STOP_TIMEOUT_S (3 s) at most for
the sampler's last reading and FINAL_WRITE_TIMEOUT_S (5 s) at most for the final write
(retried with backoff while the ledger is locked or the disk full), then up to 1 s to close:
it returns within STOP_BOUND_S (10 s) whatever the meters and the ledger do, and never raises.
A rank of a distributed job then ends its part of the job, within its membership's
`end_bound_s()` more (5 s, and the aggregation timeout on the job's writer), before the run's
ledger connection is closed. If the end of the run could not be stored, the result says so
(`stored=False`, `notes`).

fork(): a child process does not own its parent's runs. After a fork the child's copies of
running trackers, and of those another thread of the parent was ending (until its stop()
returned), are detached (os.register_at_fork): they never touch the parent's ledger
connection, locks or meters, `stop()` and the child's exit record nothing, and phases and
counts in the child are ignored. Only the process that started a run ends it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import logging
import math
import numbers
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from greenai.carbon.accounting import CarbonAccount
from greenai.carbon.held import HeldIntensity
from greenai.carbon.resolve import configured_intensity
from greenai.config import Config, load_config
from greenai.errors import ConfigError, TerminatedBySignal  # the latter re-exported here
from greenai.hardware.coload import CoLoadSummary
from greenai.ledger.records import RunSnapshot, RunStart, RunStatus, SampleRow, storable_name
from greenai.ledger.run_forecasts import ForecastRow
from greenai.ledger.store import Ledger, default_ledger_path
from greenai.meters.base import Meter, Provenance
from greenai.meters.discover import discover
from greenai.meters.process import ProcessScope
from greenai.text import visible
from greenai.tracking.accumulator import RunAccumulator
from greenai.tracking.budget import Budget, BudgetBreach, BudgetExceeded, BudgetMonitor
from greenai.tracking.coload import CoLoadRecorder
from greenai.tracking.environment import describe_environment
from greenai.tracking.forecast import Forecast, NotYet, Plan, make_forecast
from greenai.tracking.joining import Membership, joiner, launched_as_rank
from greenai.tracking.phases import PhaseLane, PhaseTimeline, checked_phase_name
from greenai.tracking.progress import DEFAULT_PERIODIC_PHASES, ProgressRecorder, ProgressSeries
from greenai.tracking.reading import MeterSlot
from greenai.tracking.result import RunResult
from greenai.tracking.safe_point import SafePointGate
from greenai.tracking.sampler import STOP_TIMEOUT_S, Sampler

log = logging.getLogger("greenai.tracking")
F = TypeVar("F", bound=Callable[..., Any])

_active: set[Tracker] = set()  # running: ended at interpreter exit if the program forgot to
_ending: set[Tracker] = set()  # inside stop(): not for the exit hook, still for the fork hooks
_active_lock = threading.Lock()  # guards both

FLUSH_TIMEOUT_S = 1.0  # a periodic flush waits this long at most (then the next one retries)
FINAL_WRITE_TIMEOUT_S = 5.0  # the final write is retried with backoff for this long at most
CLOSE_TIMEOUT_S = 0.5
# what stop() can take at most: the last reading, the final write, two lock waits (the
# sampler's snapshot, the ledger's close) and a second of slack for everything else: 10 s
STOP_BOUND_S = STOP_TIMEOUT_S + FINAL_WRITE_TIMEOUT_S + 2 * CLOSE_TIMEOUT_S + 1.0
FORK_LOCK_TIMEOUT_S = 0.5  # fork() waits this long at most for a flush under way to finish


class _Phase:
    """Context manager for one phase; cheap: a timestamped deque append on entering and one on
    leaving (PhaseTimeline; about 0.3 us each here, docs/benchmarks.md). A phase exit is
    never a budget safe point: with flat phases (forward, backward, optimizer_step) it would
    fall between a backward and its optimizer step."""

    __slots__ = ("_timeline", "_name")

    def __init__(self, timeline: PhaseTimeline, name: str) -> None:
        self._timeline = timeline
        self._name = name

    def __enter__(self) -> None:
        self._timeline.enter(self._name)

    def __exit__(self, exc_type: object = None, exc: object = None, tb: object = None) -> None:
        self._timeline.exit()


class Tracker(contextlib.ContextDecorator):
    """Tracks the energy of a block of code, a function, or (with `pid`) another process tree."""

    def __init__(
        self,
        name: str = "run",
        *,
        tags: Mapping[str, str | float] | None = None,
        config: Config | None = None,
        meters: Sequence[Meter] | None = None,
        store: bool = True,
        pid: int | None = None,
        handle_signals: bool = True,
        planned_steps: int | None = None,
        planned_epochs: int | None = None,
        progress_counter: str = "steps",
        epoch_counter: str = "epochs",
        eval_phases: Sequence[str] = DEFAULT_PERIODIC_PHASES,
        budgets: Sequence[Budget] = (),
        on_budget: Callable[[Tracker, BudgetBreach], None] | None = None,
        distributed: Any = None,
        **settings: Any,
    ) -> None:
        """`planned_steps` (or `planned_epochs`, with `run.count("epochs")` at each epoch's
        end) is what `forecast()` extrapolates to, progress being the `progress_counter`
        ("steps"); phases named in `eval_phases` are modelled as periodic. `budgets` warn or
        stop the run; `on_budget(run, breach)` is called in this thread at a safe point.
        `distributed` joins the run to a job of several ranks (tracking/joining.py): None
        (default) when launched as a rank, True, False, or a greenai.distributed spec."""
        self.name = storable_name("the run name", name, empty=True)
        self.tags = _storable_tags(tags)
        self._args = dict(
            tags=tags,
            config=config,
            meters=meters,
            store=store,
            pid=pid,
            handle_signals=handle_signals,
            planned_steps=planned_steps,
            planned_epochs=planned_epochs,
            progress_counter=progress_counter,
            epoch_counter=epoch_counter,
            eval_phases=eval_phases,
            budgets=budgets,
            on_budget=on_budget,
            distributed=distributed,
            **settings,
        )
        self.config = config if config is not None else load_config(**settings)
        self.run_id = uuid.uuid4().hex
        self._given_meters = meters
        self._store = store
        self._pid = pid if pid is not None else os.getpid()
        self._handle_signals = handle_signals
        self._timeline = PhaseTimeline()
        self._counters: dict[str, float] = {}
        self._counter_lock = threading.Lock()
        self._counter_names: set[str] = set()  # names tally() has checked: later calls skip the check
        self._phase_names: set[str] = set()  # the same for phase()
        self._sampler: Sampler | None = None
        self._ledger: Ledger | None = None
        self._ledger_path: Path | None = None
        self._previous_sigterm: Any = None
        self.result: RunResult | None = None
        # forecast and budgets
        self._plan = _validated_plan(planned_steps, planned_epochs)
        self._progress_counter, self._epoch_counter = progress_counter, epoch_counter
        self._eval_phases = tuple(eval_phases)
        self._budgets = tuple(budgets)
        if not all(isinstance(b, Budget) for b in self._budgets):
            raise ConfigError("budgets must be greenai Budget(...) objects")
        self._gate = SafePointGate(self.name, on_budget)
        self._recorder: ProgressRecorder | None = None
        self._intensity: HeldIntensity | None = None
        self._coload: CoLoadRecorder | None = None
        self.forecast_reason = "the run has not started"  # why forecast() last returned None
        self._owner_pid = os.getpid()
        self._forked_from: int | None = None  # set in a forked child: the run is that process's
        self._distributed = distributed
        self.membership: Membership | None = None  # this run's part in a distributed job

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Tracker:
        if self._sampler is not None:
            raise RuntimeError("this tracker was already started; create a new one per run")
        cfg = self.config
        intensity = configured_intensity(cfg.intensity)
        # a source that cannot give the intensity now (a trace that ends before the run starts)
        # is refused here, in its own words, before anything is joined or recorded; past its
        # end later, its last value is held (carbon/held.py): the value read now, if the trace
        # ends before the first tick's midpoint
        self._intensity = HeldIntensity.started(intensity, time.time())
        scope = ProcessScope(self._pid)
        if self._given_meters is not None:
            meters, unavailable = list(self._given_meters), []
        else:
            found = discover(cfg, scope)
            meters, unavailable = found.meters, found.unavailable
        self.membership = self._join()
        if self.membership is not None:  # each physical device read by one rank of the job
            meters = self.membership.select(meters, scope, cfg)
        slots = [MeterSlot(m) for m in meters]  # each meter's info() asked once, safely
        account = CarbonAccount(
            self._intensity,
            pue=cfg.pue,
            price_per_kwh=cfg.price_per_kwh or 0.0,
            currency=cfg.currency,
        )
        started_at = time.time()
        if self._store:
            self._ledger_path = cfg.ledger or default_ledger_path()
            self._ledger = Ledger(self._ledger_path)
            environment = self._describe_plan(describe_environment(slots, unavailable, cfg, scope))
            if self.membership is not None:
                environment["distributed"] = self.membership.describe()
            self._ledger.begin_run(
                RunStart(
                    run_id=self.run_id,
                    name=self.name,
                    started_at=started_at,
                    host=socket.gethostname(),
                    pid=self._pid,
                    tags=self.tags,
                    environment=environment,
                )
            )
        if self.membership is not None:
            self.membership.started(self.run_id, self.name, started_at, self._ledger)
        sink = self._flush_to_ledger if self._ledger is not None else None
        self._gate.owner_thread = threading.get_ident()
        self._recorder = ProgressRecorder(
            self._counters.get, self._progress_counter, self._epoch_counter, self._eval_phases
        )
        monitor = BudgetMonitor(self._budgets, self._on_breach, self._forecast_in_sampler)
        self._sampler = Sampler(
            slots,
            self._timeline,
            RunAccumulator(account),
            self.counters,
            sink,
            1.0 / cfg.sample_hz,
            cfg.flush_interval_s,
            _RunObserver(self._recorder, monitor, self._observe_for_job if self.membership is not None else None),
        )
        # the co-load this run runs under, read in the sampler thread before the forecast's trace
        self._coload = CoLoadRecorder(
            ProcessScope(self._pid).cpu_seconds, cfg.coload_threshold_cores, keep_windows=self._ledger is not None
        )
        self._coload.start()
        if self._coload.available:
            self._recorder.coload_threshold_cores = cfg.coload_threshold_cores
        self._sampler.add_observer(self._coload, first=True)
        self._owner_pid = os.getpid()
        self._sampler.start()
        with _active_lock:
            _active.add(self)
        self._install_sigterm()
        return self

    def record_command(self, argv: Sequence[str], timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Store the command line this run tracks with it (`greenai run`), through the run's own
        ledger connection, within `timeout_s` (LedgerError past it); nothing for a run not
        stored."""
        if self._sampler is None:
            raise RuntimeError("record_command() called before start()")
        if self._ledger is not None:
            self._ledger.set_command(self.run_id, argv, timeout_s=timeout_s)

    def stop(self, status: str = RunStatus.COMPLETED) -> RunResult:
        """End the run (idempotent) and return its result. Never raises into user code, and
        returns within STOP_BOUND_S (see the module's docstring)."""
        if self.result is not None:
            return self.result
        if self._sampler is None:
            raise RuntimeError("stop() called before start()")
        if self._forked_from is not None:
            self.result = self._detached_result()
            return self.result
        try:
            self.result = self._end(self._sampler, status)
        except Exception as e:  # the tracker never breaks the user's program
            log.exception("greenai: ending run %s failed", self.run_id[:8])
            self.result = self._make_result(
                status, self._sampler.snapshot(timeout_s=CLOSE_TIMEOUT_S), False, (f"internal error at the end: {e}",)
            )
        finally:
            # covered by the fork hooks until here: its last reading and final write use the
            # ledger connection and locks a child must never take over
            with _active_lock:
                _ending.discard(self)
            if self.membership is not None:
                # a SIGTERM held back for the job's end is delivered however the end went
                with contextlib.suppress(Exception):
                    self.membership.release_sigterm()
        return self.result

    def _end(self, sampler: Sampler, status: str) -> RunResult:
        with contextlib.suppress(Exception):
            self._restore_sigterm()
            if self.membership is not None:  # SIGTERM waits for the job's last write (bounded)
                self.membership.hold_sigterm()
        with _active_lock:
            _active.discard(self)
            _ending.add(self)
        snapshot = sampler.stop(STOP_TIMEOUT_S)
        coload = self._finish_coload()
        if coload is not None:
            snapshot = dataclasses.replace(snapshot, coload=coload)
        if status == RunStatus.COMPLETED and self._gate.stopped_by is not None:
            status = RunStatus.INTERRUPTED  # the user caught BudgetExceeded to leave the loop
        notes = list(sampler.notes)
        held = self._intensity.note() if self._intensity is not None else None
        if held is not None:
            notes.append(held)
        stored: bool | None = None
        job = None
        try:
            if self._ledger is not None:
                try:
                    self._ledger.end_run(
                        self.run_id,
                        status,
                        time.time(),
                        snapshot,
                        sampler.take_unflushed(),
                        timeout_s=FINAL_WRITE_TIMEOUT_S,
                        coload=self._coload.take_windows() if self._coload is not None else (),
                    )
                    stored = True
                except Exception as e:
                    stored = False
                    note = (
                        f"the end of the run could not be written to the ledger ({e}); the ledger keeps "
                        "the run as of its last flush, shown as incomplete once this process has exited"
                    )
                    log.warning("greenai: run %s: %s", self.run_id[:8], visible(note))  # the ledger's path, as text
                    notes.append(note)
            if self.membership is not None:
                # through this run's ledger connection, still open; within the membership's
                # end_bound_s() (the aggregation timeout on the job's writer); never raises
                try:
                    job, job_notes = self.membership.ended(status, snapshot)
                    notes.extend(job_notes)
                except Exception as e:
                    log.exception("greenai: run %s: adding up the distributed job failed", self.run_id[:8])
                    notes.append(f"the distributed job could not be added up: {e}")
        finally:
            if self._ledger is not None:
                self._ledger.close(timeout_s=CLOSE_TIMEOUT_S)
        result = self._make_result(status, snapshot, stored, tuple(notes))
        return dataclasses.replace(result, job=job) if job is not None else result

    def _make_result(
        self, status: str, snapshot: RunSnapshot, stored: bool | None, notes: tuple[str, ...]
    ) -> RunResult:
        return RunResult(
            self.run_id,
            self.name,
            status,
            snapshot,
            self._ledger_path,
            self.config.price_per_kwh is not None,
            self.forecast(),
            tuple(self._gate.breaches),
            self._gate.stopped_by,
            stored=stored if self._store else None,
            notes=notes,
        )

    def _detached_result(self) -> RunResult:
        """stop() in a forked child: the run is its parent's; nothing is read or written."""
        note = (
            f"process {os.getpid()} was forked from process {self._forked_from} during run "
            f"{self.run_id[:8]}; only process {self._forked_from} records and ends that run"
        )
        empty = RunSnapshot(0.0, 0.0, 0.0, Provenance.ESTIMATED, 0.0, 0.0, 0.0, self.config.currency)
        return RunResult(
            self.run_id,
            self.name,
            RunStatus.RUNNING,
            empty,
            self._ledger_path,
            self.config.price_per_kwh is not None,
            stored=False if self._store else None,
            notes=(note,),
        )

    def _detach_after_fork(self) -> None:
        """In the child of a fork (no other thread survives there): forget the parent's run
        without touching its connection, locks or meters."""
        self._forked_from = self._owner_pid
        self._counter_lock = threading.Lock()
        self._coload = None  # its lock may be held by the parent's sampler thread
        self._timeline.detach()
        self._gate.detach()
        if self._sampler is not None:
            self._sampler.detach()
        if self.membership is not None:
            self.membership.detach()
        if self._ledger is not None:
            conn = self._ledger.abandon()
            if conn is not None:
                # Never closed here: closing runs SQLite code on the parent's connection (whose
                # mutex a parent thread may have held at the fork). Leaked on purpose, one
                # reference that is never released, so not even interpreter exit closes it.
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop(_status_for(exc))
        except Exception:  # never replace the user's exception (stop() does not raise; belt and braces)
            log.exception("greenai: ending run %r failed", self.name)

    def _recreate_cm(self) -> Tracker:
        # each call of a decorated function is its own run
        return Tracker(self.name, **self._args)

    # -- inside the run ----------------------------------------------------------------
    def phase(self, name: str) -> _Phase:
        """`with run.phase("forward"):` — nestable; energy is apportioned by time."""
        if name.__class__ is not str or name not in self._phase_names:  # a name seen before: checked
            name = checked_phase_name(name)  # a plain str (a str subclass or enum gives its text)
            self._phase_names.add(name)
        return _Phase(self._timeline, name)

    def lane(self, name: str) -> PhaseLane:
        """A phase bound to no thread, for work one thread begins and another ends (a
        collective in flight: greenai.distributed's communication phase). See PhaseLane."""
        return PhaseLane(self._timeline, name)

    def count(self, counter: str, amount: float = 1) -> None:
        """Add to a user counter (samples, tokens, steps) so results read as J/sample.
        Outside any phase this is also a budget safe point. `counter` is a non-empty string
        and `amount` a finite real number (anything else, NaN, inf and bools included, is
        refused with a ConfigError: the ledger could not store it)."""
        self.tally(counter, amount)
        if self._gate.pending is not None:
            self._at_safe_point()

    def tally(self, counter: str, amount: float = 1) -> None:
        """Add to a counter as `count` does, without being a budget safe point: for code that
        counts in callbacks or on other threads (greenai.distributed counts its collectives
        so), where a `stop` budget must not raise and must be left to the program's own next
        safe point. The same ConfigError as `count` for a bad name or amount."""
        # the hot path (a counter named before, an int or a float): two type checks and a dict
        # add under the lock; anything else is checked in full
        if counter.__class__ is not str or counter not in self._counter_names:
            counter = storable_name("the counter name", counter)  # a plain str
            self._counter_names.add(counter)
        kind = amount.__class__
        if kind is int and -_EXACT_INT < amount < _EXACT_INT or kind is float and amount - amount == 0.0:
            value = amount
        else:
            value = _finite_amount(counter, amount)
        with self._counter_lock:
            self._counters[counter] = self._counters.get(counter, 0.0) + value

    def safe_point(self) -> None:
        """A place where a `stop` budget may end the run (raising `BudgetExceeded` after
        calling `on_budget`); does nothing inside a phase. Costs one attribute read."""
        if self._gate.pending is not None:
            self._at_safe_point()

    def plan(self, steps: int | None = None, epochs: int | None = None) -> None:
        """Set or change the planned steps (or epochs) the forecast extrapolates to."""
        self._plan = _validated_plan(steps, epochs)

    def forecast(self) -> Forecast | None:
        """Where the run is heading (energy, time, carbon, cost, with ~95 % bands), or None
        before enough of it has run (`forecast_reason` says why). Computed now, from the
        sampler's trace; costs about a millisecond, so call it at most every few steps."""
        if self._sampler is None or self._recorder is None:
            return None
        try:
            series = self._sampler.locked(self._recorder.series)
            return self._forecast_from(series)
        except Exception:  # the tracker never breaks the user's program
            log.exception("greenai: forecast failed")
            self.forecast_reason = "internal error (logged)"
            return None

    def coload(self) -> CoLoadSummary | None:
        """The co-load the run has run under so far (CPUs other processes kept busy, over
        windows of about a second; `disturbed` past the threshold), or None if it cannot be
        read here (or before the first second)."""
        return self._coload.summary() if self._coload is not None else None

    def coload_mark(self) -> tuple[float, float] | None:
        """A mark for `coload_since`: the co-load of a stretch of the run (a round, a trial)."""
        return self._coload.mark() if self._coload is not None and self._coload.available else None

    def coload_since(self, mark: tuple[float, float] | None) -> float | None:
        """Mean CPUs other processes (steal included) kept busy from `mark` to the sampler's
        latest tick; None when unknown. Costs a lock, no reading."""
        if mark is None or self._coload is None:
            return None
        return self._coload.cores_since(mark)

    def counters(self) -> dict[str, float]:
        with self._counter_lock:
            return dict(self._counters)

    def snapshot(self) -> RunSnapshot:
        """Totals so far, while the run goes on."""
        if self._sampler is None:
            raise RuntimeError("the tracker has not started")
        return self._sampler.snapshot()

    def intensity(self) -> HeldIntensity:
        """The intensity the run is charged with, held past a trace's end (carbon/held.py):
        `greenai monitor`'s figures read this one, so they show what the run is charged."""
        if self._intensity is None:
            raise RuntimeError("the tracker has not started")
        return self._intensity

    # -- plumbing --------------------------------------------------------------------
    def _forecast_from(self, series: ProgressSeries) -> Forecast | None:
        outcome = make_forecast(series, self._plan)
        if isinstance(outcome, NotYet):
            self.forecast_reason = outcome.reason
            return None
        return outcome

    def _forecast_in_sampler(self) -> Forecast | None:
        # the sampler thread is the recorder's only writer, so it reads it without the lock
        assert self._recorder is not None
        return self._forecast_from(self._recorder.series())

    def _on_breach(self, breach: BudgetBreach) -> None:
        """Sampler thread: the breach's counter goes to the ledger at the next flush; the
        gate logs it and leaves stops (and callbacks) to a safe point."""
        with self._counter_lock:
            self._counters[breach.counter] = 1.0
        self._gate.record(breach)

    def _at_safe_point(self) -> None:
        if self.result is None:
            self._gate.at_safe_point(self, inside_phase=bool(self._timeline.depth))

    def _describe_plan(self, environment: dict[str, Any]) -> dict[str, Any]:
        if self._plan.steps or self._plan.epochs:
            environment["plan"] = {
                "planned_steps": self._plan.steps,
                "planned_epochs": self._plan.epochs,
                "progress_counter": self._progress_counter,
                "eval_phases": list(self._eval_phases),
            }
        if self._budgets:
            environment["budgets"] = [dataclasses.asdict(b) for b in self._budgets]
        return environment

    def _flush_to_ledger(self, snapshot: RunSnapshot, rows: list[SampleRow]) -> None:
        """Sampler thread: totals, new samples and, with a plan, the current forecast."""
        assert self._ledger is not None
        row = None
        if self._plan.is_set:
            try:
                forecast = self._forecast_in_sampler()
                row = ForecastRow.of(forecast) if forecast is not None else None
            except Exception:  # a forecast bug must not cost the flush its data
                log.exception("greenai: forecast failed; flushing without it")
        windows = self._coload.take_windows() if self._coload is not None else []
        try:
            self._ledger.flush(self.run_id, snapshot, rows, row, timeout_s=FLUSH_TIMEOUT_S, coload=windows)
        except Exception:
            if self._coload is not None:
                self._coload.put_back(windows)  # the sampler keeps its rows for the next flush too
            raise

    def _join(self) -> Membership | None:
        """This run's part in a distributed job, if it is one (tracking/joining.py): strict
        when asked for (`distributed=True` or a spec), a warning when only detected."""
        wanted = self._distributed
        if wanted is False or (wanted is None and not launched_as_rank()):
            return None
        join = joiner()
        if join is None:
            if wanted is None:
                log.debug("greenai: launched as a rank, but greenai.distributed is not imported: tracked alone")
                return None
            raise ConfigError(
                "distributed=... needs greenai.distributed: use greenai.track / greenai.Tracker, "
                "or import greenai.distributed first"
            )
        if wanted is not None:
            return join(self, wanted)
        try:
            return join(self, None)
        except Exception as e:  # detected, not asked for: the run goes on alone
            log.warning("greenai: could not join the distributed job (%s); this rank is tracked alone", e)
            return None

    def _observe_for_job(self) -> None:
        """Sampler thread, after each tick: the membership publishes this rank's totals."""
        if self.membership is not None and self._sampler is not None:
            self.membership.observe(self._sampler.snapshot)

    def _finish_coload(self) -> CoLoadSummary | None:
        """The last co-load reading, once the sampler has stopped; never raises."""
        try:
            return self._coload.finish() if self._coload is not None else None
        except Exception:  # the tracker never breaks the user's program
            log.exception("greenai: the last co-load reading failed")
            return self._coload.summary() if self._coload is not None else None

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


class _RunObserver:
    """Sampler-thread hooks: record the forecast trace, then check the budgets."""

    def __init__(
        self, recorder: ProgressRecorder, monitor: BudgetMonitor, on_tick: Callable[[], None] | None = None
    ) -> None:
        self._recorder = recorder
        self._monitor = monitor
        self._on_tick = on_tick

    def observe(self, elapsed_s: float, accumulator: RunAccumulator) -> None:
        self._recorder.observe(elapsed_s, accumulator)

    def after_tick(self, elapsed_s: float) -> None:
        latest = self._recorder.latest
        if latest is not None and self._monitor.active:
            self._monitor.check(latest.t_s, latest.energy_j, latest.carbon_g)
        if self._on_tick is not None:
            self._on_tick()


def _validated_plan(steps: int | None, epochs: int | None) -> Plan:
    for key, value in (("planned_steps", steps), ("planned_epochs", epochs)):
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{key} must be a number > 0 (got {value!r})")
    return Plan(steps, epochs)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise TerminatedBySignal(128 + signum)


def _status_for(exc: BaseException | None) -> str:
    if exc is None:
        return RunStatus.COMPLETED
    if isinstance(exc, (KeyboardInterrupt, TerminatedBySignal, BudgetExceeded)):
        return RunStatus.INTERRUPTED
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return RunStatus.COMPLETED
    return RunStatus.FAILED


_held_for_fork: list[Ledger] = []
_fork_state = {"active_lock": False}


def _before_fork() -> None:
    """In the forking thread: no ledger transaction of a running tracker is under way while
    the process is copied (bounded: a flush stuck on a locked ledger is not waited for, nor
    a lock this very thread might hold, e.g. a fork from a signal handler)."""
    _fork_state["active_lock"] = _active_lock.acquire(timeout=FORK_LOCK_TIMEOUT_S)
    for tracker in [*_active, *_ending]:  # a run being ended still writes through its ledger
        ledger = tracker._ledger
        if ledger is not None and ledger.hold(FORK_LOCK_TIMEOUT_S):
            _held_for_fork.append(ledger)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()
    if _fork_state["active_lock"]:
        _fork_state["active_lock"] = False
        _active_lock.release()


def _after_fork_in_child() -> None:
    global _active_lock
    _active_lock = threading.Lock()  # the parent's may be held by a thread that is not here
    _held_for_fork.clear()
    trackers = [*_active, *_ending]  # those being ended by a parent thread too: not the child's
    _active.clear()  # the child's exit must not end its parent's runs
    _ending.clear()
    for tracker in trackers:
        try:
            tracker._detach_after_fork()
        except Exception:  # pragma: no cover - the child must go on whatever happens
            log.exception("greenai: detaching run %s after fork failed", tracker.run_id[:8])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


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


def _storable_tags(tags: object) -> dict[str, str]:
    """The run's tags as text: keys non-empty strings, values strings or numbers (kept as
    their text); anything the ledger could not store is a ConfigError before the run starts."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ConfigError(f"tags must be a mapping of names to values (got {type(tags).__name__})")
    out: dict[str, str] = {}
    for key, value in tags.items():
        name = storable_name("a tag name", key)
        if isinstance(value, numbers.Real) and not isinstance(value, str):
            value = str(value)
        out[name] = storable_name(f"the value of tag {name!r}", value, empty=True)
    return out


_EXACT_INT = 2**53  # ints below this in magnitude are finite floats, exactly


def _finite_amount(counter: str, amount: object) -> float:
    """`run.count`'s amount as a float: a real number (numpy's too), finite, not a bool."""
    if isinstance(amount, numbers.Real) and not isinstance(amount, bool):
        try:
            value = float(amount)
        except OverflowError:
            value = math.inf
        if math.isfinite(value):
            return value
    raise ConfigError(f"count({counter!r}, {amount!r}): the amount must be a finite number")
