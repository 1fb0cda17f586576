"""Online tuning inside a running job, in the spirit of Zeus (You, Chung, Chowdhury, NSDI 2023).

The job's own iterations are the profiling runs: the tuner applies a candidate setting,
lets `warmup_iterations` steps run unmeasured (caches, allocator, clocks settle after a
change), measures `iterations_per_trial` steps, moves to the next candidate, and once the
search is done applies the setting of least cost and keeps it for the rest of the job.
Profiling spends at most `max_profile_fraction` of `total_iterations`.

    with OnlineTuner([threads, batch], Energy(), total_iterations=2000, tracker=run) as tuner:
        for _ in range(2000):
            with tuner.step() as step:
                loss = train_step(batch.value)
                step.work = batch.value           # the unit the cost is per: samples

Per-trial energy comes from the tracker: each measured step runs inside a tracker phase of
its own trial, and the phase's energy total is read once the sampler has ticked past the
trial's end. Phase energy is exact for counters and simulated meters; where the tracker
estimates (the CPU model on a VM) the trial's provenance says `estimated`. Energy is split
between phases in proportion to time within one sampler tick, so a trial should span
several ticks (raise `sample_hz` for short trials). When the grid fits the budget the search
is successive halving (every setting once, then the better half re-measured, down to two
finalists, while the budget lasts), else coordinate descent (tuner_search.py). A setting's
cost pools all its trials. All trials, their settings' costs and the chosen setting go to the
ledger's `tuning_trials` table (ledger/tuning.py).

A busy machine (hardware/coload.py): each trial's co-load (the CPUs other processes and the
hypervisor kept busy while it ran) comes from the tracker's sampler (from two reads of
/proc/stat when there is no tracker). A trial at or above the threshold (the tracker's
`coload_threshold_cores`) is disturbed and measured again at once, at most
MAX_DISTURBED_RETRIES times per setting and within the profiling budget; a setting's cost
leaves its disturbed trials out when it has a quiet one. A setting measured only while the
machine was busy is not chosen over one measured quiet, and the outcome says so; if every
setting was measured busy, the choice is made and the outcome says it rests on a busy
machine's figures.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from greenai.errors import ConfigError, GreenAIError
from greenai.hardware.coload import DISTURBED_CORES, Probe
from greenai.ledger.records import RunSnapshot
from greenai.ledger.store import Ledger
from greenai.ledger.tuning import TuningTrialRow, write_trials
from greenai.tracking.phases import phase_sum
from greenai.tune.knobs.base import Knob
from greenai.tune.objectives import Objective, TrialStats, pool
from greenai.tune.search import (
    Setting,
    coordinate_descent,
    exhaustive,
    grid_size,
    pass_size,
    successive_halving,
)

log = logging.getLogger("greenai.tune")

STRATEGIES = ("auto", "exhaustive", "halving", "coordinate")
MAX_DISTURBED_RETRIES = 2  # a setting whose trial was disturbed is measured again at most this often
_TOLERANCE_S = 1e-6  # a phase total within this of the trial's own timing is complete


@dataclass
class _Trial:
    """The trial in progress."""

    index: int
    setting: Setting
    phase: str
    warmup_left: int
    warmup_done: int = 0
    work: float = 0.0
    duration_s: float = 0.0
    step_durations_s: list[float] = field(default_factory=list)
    coload_mark: Any = None  # the tracker's mark (or a Probe) at the first measured step
    coload_cores: float | None = None  # CPUs other processes kept busy while it was measured


class TuningStep:
    """One iteration of the job: `with tuner.step() as step:`. `step.setting` is the setting
    in effect (knob name -> value); set `step.work` to the units of work done (default 1)."""

    __slots__ = ("_phase", "_t0", "_tuner", "setting", "work")

    def __init__(self, tuner: OnlineTuner) -> None:
        self._tuner = tuner
        self.setting: dict[str, Any] = {}
        self.work: float = 1.0
        self._t0 = 0.0
        self._phase: Any = None

    def __enter__(self) -> TuningStep:
        self._tuner._enter(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._tuner._exit(self, failed=exc_type is not None)


class OnlineTuner:
    """Profiles settings of `knobs` on the job's own iterations and keeps the cheapest by
    `objective` (Energy, Time, ZeusCost, EnergyWithinSlowdown, JoulesPerRequest)."""

    def __init__(
        self,
        knobs: Sequence[Knob],
        objective: Objective,
        *,
        total_iterations: int,
        iterations_per_trial: int = 10,
        warmup_iterations: int = 2,
        max_profile_fraction: float = 0.1,
        tracker: Any = None,
        ledger: Ledger | Path | str | None = None,
        strategy: str = "auto",
        max_passes: int = 3,
    ) -> None:
        """`tracker`: a started greenai Tracker (needed by energy objectives); `ledger`: where
        the trials are recorded (a Ledger or a path; None records nothing)."""
        _check_int("total_iterations", total_iterations, 1)
        _check_int("iterations_per_trial", iterations_per_trial, 1)
        _check_int("warmup_iterations", warmup_iterations, 0)
        _check_int("max_passes", max_passes, 1)
        if not (isinstance(max_profile_fraction, (int, float)) and 0 < max_profile_fraction <= 1):
            raise ConfigError(f"max_profile_fraction must be in (0, 1] (got {max_profile_fraction!r})")
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
        if getattr(objective, "needs_energy", True) and tracker is None:
            raise ConfigError(
                f"objective {objective.describe()!r} needs energy: pass tracker= "
                "(a started greenai Tracker), or use Time()"
            )
        names = [k.name for k in knobs]
        if not knobs or len(set(names)) != len(names):
            raise ConfigError(f"the tuner needs one or more knobs with distinct names (got {names})")
        self.tuning_id = uuid.uuid4().hex
        self.objective = objective
        self.total_iterations = total_iterations
        self.iterations_per_trial = iterations_per_trial
        self.warmup_iterations = warmup_iterations
        self.budget_iterations = math.floor(max_profile_fraction * total_iterations)
        self._tracker = tracker
        self._ledger = ledger
        self.skipped: dict[str, str] = {}  # knob name -> why it is not tuned
        self._knobs: dict[str, Knob] = {}
        axes: list[tuple[str, tuple[Any, ...]]] = []
        for knob in knobs:
            found = _usable_values(knob)
            if isinstance(found, str):
                self.skipped[knob.name] = found
                log.warning("greenai: knob %s skipped: %s", knob.name, found)
            else:
                self._knobs[knob.name] = knob
                axes.append((knob.name, found))
        self.axes = tuple(axes)
        self.strategy = self._pick_strategy(strategy, max_passes)
        self._start: Setting = tuple((name, _start_value(self._knobs[name], vals)) for name, vals in axes)
        self._search: Iterator[Setting] = {
            "exhaustive": lambda: exhaustive(axes, self._start),
            "halving": lambda: successive_halving(axes, self._start, self._cost_of),
            "coordinate": lambda: coordinate_descent(axes, self._start, self._cost_of, max_passes),
        }[self.strategy]()
        self._applied: dict[str, Any] = {}
        self._trial: _Trial | None = None
        self._retry: Setting | None = None  # a setting whose trial was disturbed, to measure again
        self._retries: dict[Setting, int] = {}
        config = getattr(tracker, "config", None)
        self.coload_threshold_cores = float(getattr(config, "coload_threshold_cores", DISTURBED_CORES))
        self._finished: list[_Trial | TrialStats] = []  # in trial order; resolved lazily
        self._resolved: dict[int, TrialStats] = {}
        self.iterations = 0
        self.profile_iterations = 0
        self.costs: dict[Setting, float] = {}  # per setting, over all its trials
        self.chosen: TrialStats | None = None  # the kept setting, its trials pooled
        self.outcome = ""  # why profiling ended, and what was kept
        self._done = not self._knobs
        if self._done:
            self.outcome = "no usable knob: " + "; ".join(self.skipped.values())
            log.warning("greenai: nothing to tune (%s)", self.outcome)

    # -- the user's loop -----------------------------------------------------------------
    def step(self) -> TuningStep:
        return TuningStep(self)

    @property
    def profiling(self) -> bool:
        return not self._done

    @property
    def setting(self) -> dict[str, Any]:
        """The setting in effect now (knob name -> value)."""
        return {name: self._applied.get(name, self._knobs[name].current()) for name in self._knobs}

    @property
    def trials(self) -> list[TrialStats]:
        """Finished trials, in order (energy resolved)."""
        return [self._stats(t) for t in self._finished]

    def settings(self) -> list[TrialStats]:
        """One entry per profiled setting, its trials pooled, in order of first trial."""
        groups: dict[Setting, list[TrialStats]] = {}
        for t in self.trials:
            groups.setdefault(t.setting, []).append(t)
        return [pool(group) for group in groups.values()]

    def close(self) -> None:
        """End profiling early if the job stops before it is done, then restore every knob
        to the value it had before tuning."""
        if not self._done:
            self._finish("the job ended before profiling finished")
        for knob in reversed(list(self._knobs.values())):
            try:
                knob.restore()
            except Exception as e:  # restoring one knob must not stop the others
                log.warning("greenai: could not restore knob %s: %s", knob.name, e)
        self._applied = {}

    def __enter__(self) -> OnlineTuner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def summary(self) -> dict[str, Any]:
        """A JSON-able account of the tuning."""
        return {
            "tuning_id": self.tuning_id,
            "objective": self.objective.describe(),
            "strategy": self.strategy,
            "skipped": dict(self.skipped),
            "profile_iterations": self.profile_iterations,
            "budget_iterations": self.budget_iterations,
            "total_iterations": self.total_iterations,
            "outcome": self.outcome,
            "chosen": dict(self.chosen.setting) if self.chosen else None,
            "settings": [
                {
                    "setting": dict(t.setting),
                    "notes": t.notes,
                    "trials": sum(1 for x in self.trials if x.setting == t.setting),
                    "iterations": t.iterations,
                    "work": t.work,
                    "duration_s": t.duration_s,
                    "energy_j": t.energy_j,
                    "provenance": t.provenance,
                    "cost": _finite(self.costs.get(t.setting)),
                    "error": t.error,
                    "coload_cores": t.coload_cores,
                    "disturbed": t.disturbed,
                }
                for t in self.settings()
            ],
            "trials": [
                {
                    "trial": t.index,
                    "setting": dict(t.setting),
                    "iterations": t.iterations,
                    "work": t.work,
                    "duration_s": t.duration_s,
                    "energy_j": t.energy_j,
                    "provenance": t.provenance,
                    "error": t.error,
                    "notes": t.notes,
                    "coload_cores": t.coload_cores,
                    "disturbed": t.disturbed,
                }
                for t in self.trials
            ],
        }

    # -- state machine ---------------------------------------------------------------------
    def _enter(self, step: TuningStep) -> None:
        if not self._done and self._trial is None:
            self._next_trial()
        trial = self._trial
        if self._done or trial is None:
            step.setting = dict(self._applied)
            return
        step.setting = dict(trial.setting)
        if trial.warmup_left == 0:
            if trial.coload_mark is None:
                trial.coload_mark = self._coload_mark()
            if self._tracker is not None:
                step._phase = self._tracker.phase(trial.phase)
                step._phase.__enter__()
            step._t0 = time.perf_counter()

    def _exit(self, step: TuningStep, failed: bool) -> None:
        t1 = time.perf_counter()
        if step._phase is not None:
            step._phase.__exit__(None, None, None)
        self.iterations += 1
        trial = self._trial
        if self._done or trial is None:
            return
        self.profile_iterations += 1
        if trial.warmup_left > 0:
            trial.warmup_left -= 1
            trial.warmup_done += 1
        elif not failed:
            trial.duration_s += t1 - step._t0
            trial.step_durations_s.append(t1 - step._t0)
            trial.work += float(step.work)
            if len(trial.step_durations_s) >= self.iterations_per_trial:
                trial.coload_cores = self._coload_since(trial.coload_mark)
                self._finished.append(trial)
                self._trial = None
                if self._is_disturbed(trial.coload_cores):
                    done = self._retries.get(trial.setting, 0)
                    if done < MAX_DISTURBED_RETRIES:
                        self._retries[trial.setting] = done + 1
                        self._retry = trial.setting

    def _next_trial(self) -> None:
        """Apply the search's next setting, skipping settings that cannot be applied."""
        per_trial = self.warmup_iterations + self.iterations_per_trial
        while True:
            if self.budget_iterations - self.profile_iterations < per_trial:
                self._finish("profiling budget spent")
                return
            setting: Setting | None = self._retry  # a disturbed trial, measured again at once
            self._retry = None
            if setting is None:
                setting = next(self._search, None)  # may read costs: resolves finished trials
            if setting is None:
                self._finish("search complete")
                return
            index = len(self._finished)
            try:
                self._apply(setting)
            except GreenAIError as e:
                log.warning("greenai: setting %s skipped: %s", dict(setting), e)
                self._finished.append(TrialStats(index, setting, error=str(e)))
                continue
            self._trial = _Trial(index, setting, f"tune-{self.tuning_id[:8]}-{index}", self.warmup_iterations)
            return

    def _apply(self, setting: Setting) -> None:
        """Apply the knobs whose value changes; on failure put the changed ones back."""
        changed: list[tuple[str, Any]] = []
        try:
            for name, value in setting:
                if name in self._applied and self._applied[name] == value:
                    continue
                previous = self._applied.get(name, _MISSING)
                self._knobs[name].apply(value)
                changed.append((name, previous))
                self._applied[name] = value
        except GreenAIError:
            for name, previous in reversed(changed):
                try:
                    if previous is _MISSING:
                        self._knobs[name].restore()
                        self._applied.pop(name, None)
                    else:
                        self._knobs[name].apply(previous)
                        self._applied[name] = previous
                except Exception as e:
                    log.warning("greenai: could not put knob %s back: %s", name, e)
            raise

    def _finish(self, reason: str) -> None:
        self._done = True
        self._trial = None  # a trial cut short by close() is not counted
        settings = self.settings()
        costs = self.objective.costs(settings) if settings else []
        self.costs = {t.setting: c for t, c in zip(settings, costs)}
        feasible = [(c, k) for k, c in enumerate(costs) if math.isfinite(c)]
        # a setting measured only on a busy machine is not chosen over one measured quiet
        quiet = [(c, k) for c, k in feasible if not settings[k].disturbed]
        busy_note = self._busy_note(settings, bool(quiet and len(quiet) < len(feasible)))
        feasible = quiet or feasible
        measured = [t for t in settings if t.ok]
        if feasible:
            best = settings[min(feasible)[1]]
            note = f"kept the least {self.objective.describe()}" + busy_note
        elif measured:
            best = min(measured, key=lambda t: t.time_per_work_s)
            note = f"no setting met {self.objective.describe()}: kept the fastest"
            log.warning("greenai: tuning %s: %s", self.tuning_id[:8], note)
        else:
            best = None
            note = "no setting was measured: kept the starting setting"
        target = best.setting if best is not None else self._start
        try:
            self._apply(target)
        except GreenAIError as e:
            log.warning("greenai: could not apply the chosen setting %s: %s", dict(target), e)
            best, note = None, f"the chosen setting failed to apply ({e})"
        self.chosen = best
        self.outcome = f"{reason}; {note}"
        log.info(
            "greenai: tuning %s: %s: %s after %d profiling iterations",
            self.tuning_id[:8],
            self.outcome,
            dict(target),
            self.profile_iterations,
        )
        self._record(self.trials)

    def _record(self, trials: list[TrialStats]) -> None:
        if self._ledger is None or not trials:
            return
        pooled = {t.setting: t for t in self.settings()}
        run_id = getattr(self._tracker, "run_id", None)
        now = time.time()
        rows = [
            TuningTrialRow(
                tuning_id=self.tuning_id,
                trial=t.index,
                run_id=run_id,
                created_at=now,
                setting=dict(t.setting),
                iterations=len(t.step_durations_s),
                warmup_iterations=t.warmup_iterations,
                work=t.work if t.ok else None,
                duration_s=t.duration_s if t.ok else None,
                energy_j=t.energy_j,
                rel_uncertainty=t.rel_uncertainty,
                provenance=t.provenance,
                objective=self.objective.describe(),
                cost=_finite(self.costs.get(t.setting)),
                chosen=self.chosen is not None and t.setting == self.chosen.setting,
                notes=_notes(t, pooled[t.setting], self.costs.get(t.setting, math.inf), self.objective),
            )
            for t in trials
        ]
        try:
            if isinstance(self._ledger, Ledger):
                write_trials(self._ledger, rows)
            else:
                with Ledger(Path(self._ledger)) as ledger:
                    write_trials(ledger, rows)
        except Exception as e:  # the tuner never breaks the job over its record
            log.warning("greenai: could not record tuning %s in the ledger: %s", self.tuning_id[:8], e)

    # -- measurements ------------------------------------------------------------------------
    def _stats(self, trial: _Trial | TrialStats) -> TrialStats:
        if isinstance(trial, TrialStats):
            return trial
        if trial.index not in self._resolved:
            base = TrialStats(
                trial.index,
                trial.setting,
                iterations=len(trial.step_durations_s),
                warmup_iterations=trial.warmup_done,
                work=trial.work,
                duration_s=trial.duration_s,
                step_durations_s=tuple(trial.step_durations_s),
                coload_cores=trial.coload_cores,
                disturbed=self._is_disturbed(trial.coload_cores),
            )
            stats = self._with_energy(base, trial.phase)
            if stats.disturbed:
                stats = replace(
                    stats,
                    notes="; ".join(
                        p
                        for p in (
                            stats.notes,
                            f"disturbed: other processes kept {trial.coload_cores:.2f} CPUs busy while it ran "
                            f"(threshold {self.coload_threshold_cores:g})",
                        )
                        if p
                    ),
                )
            self._resolved[trial.index] = stats
        return self._resolved[trial.index]

    def _with_energy(self, stats: TrialStats, phase: str) -> TrialStats:
        """Energy of the trial's phase from the tracker, once the sampler has ticked past it."""
        if self._tracker is None:
            return stats
        sample_hz = getattr(getattr(self._tracker, "config", None), "sample_hz", 10.0)
        deadline = time.perf_counter() + max(0.5, 3.0 / sample_hz)
        while True:
            try:
                snapshot = self._tracker.snapshot()
            except Exception as e:  # e.g. the tracker was never started
                return replace(stats, notes=f"no energy: tracker snapshot failed ({e})")
            share = phase_share(snapshot, phase)
            if share.duration_s >= stats.duration_s - _TOLERANCE_S or time.perf_counter() > deadline:
                break
            time.sleep(0.002)
        energy_j, notes = share.energy_j, share.describe()
        if share.duration_s < stats.duration_s - _TOLERANCE_S:
            if share.duration_s <= 0:
                return replace(stats, notes="no energy: the tracker saw none of this trial")
            energy_j *= stats.duration_s / share.duration_s
            notes += f"; scaled from {share.duration_s:.3g} s the tracker had apportioned"
            duration_s = stats.duration_s
        else:
            # time and energy over the same interval: the phase's (it holds our own timing,
            # plus the phase boundaries and any time the thread was descheduled there)
            duration_s = share.duration_s
        return replace(
            stats,
            duration_s=duration_s,
            energy_j=energy_j,
            rel_uncertainty=share.rel_uncertainty,
            provenance=share.provenance,
            notes=notes,
        )

    def _coload_mark(self) -> Any:
        """Where a trial's measured steps begin, for its co-load: the tracker's mark (no
        reading on this thread), else a Probe of /proc/stat."""
        mark = getattr(self._tracker, "coload_mark", None)
        if callable(mark):
            return ("tracker", mark())
        return ("probe", Probe())

    def _coload_since(self, mark: Any) -> float | None:
        try:
            kind, value = mark
            if kind == "tracker":
                return self._tracker.coload_since(value)
            return float(value.cores())
        except Exception:  # co-load is a caveat, never a failure of the tuning
            return None

    def _is_disturbed(self, cores: float | None) -> bool:
        return cores is not None and cores >= self.coload_threshold_cores

    def _busy_note(self, settings: list[TrialStats], some_left_out: bool) -> str:
        busy = [t for t in settings if t.disturbed and t.ok]
        if not busy:
            return ""
        cores = [t.coload_cores for t in busy if t.coload_cores is not None]
        figure = f"other processes kept {max(cores):.2f} CPUs busy" if cores else "the machine was busy"
        if some_left_out:
            return (
                f"; {len(busy)} setting(s) measured only while {figure} (threshold "
                f"{self.coload_threshold_cores:g}), even after re-measuring, were not chosen"
            )
        return (
            f"; every setting was measured while {figure} (threshold {self.coload_threshold_cores:g}): "
            "the choice rests on a busy machine's figures"
        )

    def _cost_of(self, setting: Setting) -> float:
        """The setting's cost over all its trials so far (inf if never measured)."""
        settings = self.settings()
        costs = self.objective.costs(settings)
        return next((c for t, c in zip(settings, costs) if t.setting == setting), math.inf)

    def _pick_strategy(self, strategy: str, max_passes: int) -> str:
        per_trial = self.warmup_iterations + self.iterations_per_trial
        grid = grid_size(self.axes)
        if strategy == "auto":
            fits = grid * per_trial <= self.budget_iterations
            strategy = "coordinate" if not fits else "exhaustive" if grid == 1 else "halving"
        needed = pass_size(self.axes) if strategy == "coordinate" else grid
        if self._knobs and needed * per_trial > self.budget_iterations:
            what = "one coordinate-descent pass" if strategy == "coordinate" else "the grid"
            raise ConfigError(
                f"the profiling budget of {self.budget_iterations} iterations "
                f"({self.budget_iterations / self.total_iterations:.0%} of {self.total_iterations}) "
                f"cannot cover {what}: {needed} trials x {per_trial} iterations "
                f"({self.warmup_iterations} warm-up + {self.iterations_per_trial} measured) = "
                f"{needed * per_trial}; lower iterations_per_trial or warmup_iterations, offer "
                "fewer values, or raise max_profile_fraction"
            )
        return strategy


@dataclass(frozen=True)
class PhaseShare:
    """A tracker phase's totals, over every device and every phase nested in it."""

    energy_j: float
    duration_s: float
    rel_uncertainty: float | None
    provenance: str
    devices: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.devices) or "no device"
        return f"tracker phase totals over {shown} ({self.provenance or 'no provenance'})"


def phase_share(snapshot: RunSnapshot, phase: str) -> PhaseShare:
    """Totals of `phase` (and phases nested in it, wherever it sits) in a RunSnapshot, by
    the one phase-naming rule (``tracking.phases.phase_sum``)."""
    totals = phase_sum(snapshot.phases, phase)
    energy = totals.energy_j_by_device
    devices = [d for d in snapshot.devices if d.device in energy]
    total = sum(energy.values())
    band = sum(energy[d.device] * d.rel_uncertainty for d in devices)
    weakest = max((d.provenance for d in devices), key=lambda p: p.rank, default=None)
    return PhaseShare(
        energy_j=total,
        duration_s=totals.duration_s,
        rel_uncertainty=band / total if total > 0 else None,
        provenance=weakest.value if weakest is not None else "",
        devices=tuple(d.device for d in devices),
    )


_MISSING = object()


def _usable_values(knob: Knob) -> tuple[Any, ...] | str:
    """The knob's candidate values, or why it cannot be tuned here."""
    try:
        reason = knob.available()
        if reason:
            return reason
        values = tuple(knob.values())
    except GreenAIError as e:
        return str(e)
    except OSError as e:
        return f"{knob.name}: {e}"
    if not values:
        return f"{knob.name}: no candidate values"
    return values


def _start_value(knob: Knob, values: tuple[Any, ...]) -> Any:
    try:
        now = knob.current()
    except Exception:  # an unreadable current value just means "start elsewhere"
        return values[0]
    return now if now in values else values[0]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low} (got {value!r})")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _notes(t: TrialStats, pooled: TrialStats, cost: float, objective: Objective) -> str:
    parts = [p for p in (t.notes, t.error) if p]
    if pooled.iterations != t.iterations and not t.error:
        parts.append(f"cost of the setting {pooled.notes}")
    if not math.isfinite(cost) and not t.error:
        parts.append("infeasible: " + objective.explain(pooled))
    return "; ".join(parts)
