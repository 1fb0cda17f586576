"""What a tuning trial measured, and the costs the tuner minimises over trials.

Every cost is per unit of useful work (a sample, a request: whatever `step.work` counts), so
settings that change the work per step (batch size) compare fairly. A cost of `inf` marks a
setting that breaks the objective's constraint.

Zeus's cost (You, Chung, Chowdhury, "Zeus: Understanding and Optimizing GPU Energy
Consumption of DNN Training", NSDI 2023, eq. 2) trades energy against time:

    C = eta * E + (1 - eta) * MAXPOWER * T

with E and T here per unit of work and MAXPOWER in watts (Zeus uses the GPU's maximum power
limit), so both terms are joules and eta = 1 is pure energy, eta = 0 pure time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from greenai.errors import ConfigError
from greenai.meters.base import Provenance

INF = math.inf


@dataclass(frozen=True)
class TrialStats:
    """One profiled setting: its measured iterations (warm-up excluded)."""

    index: int
    setting: tuple[tuple[str, Any], ...]  # (knob name, value), in knob order
    iterations: int = 0
    warmup_iterations: int = 0
    work: float = 0.0
    duration_s: float = 0.0
    energy_j: float | None = None  # None: no tracker, or measuring failed
    rel_uncertainty: float | None = None
    provenance: str = ""
    step_durations_s: tuple[float, ...] = field(default=(), repr=False)
    error: str = ""  # the setting could not be applied
    notes: str = ""
    # CPUs other processes kept busy while the trial ran (None: unknown), and whether that
    # passed the threshold (hardware/coload.py): such a trial is re-measured, and left out of its
    # setting's cost when a quiet one exists
    coload_cores: float | None = None
    disturbed: bool = False

    @property
    def ok(self) -> bool:
        return not self.error and self.iterations > 0 and self.work > 0

    @property
    def time_per_work_s(self) -> float:
        return self.duration_s / self.work if self.work > 0 else INF

    @property
    def energy_per_work_j(self) -> float:
        if self.energy_j is None or self.work <= 0:
            return INF
        return self.energy_j / self.work

    def latency_s(self, percentile: float) -> float:
        """Nearest-rank percentile of the step durations (a step serves its requests together)."""
        if not self.step_durations_s:
            return INF
        ordered = sorted(self.step_durations_s)
        rank = max(math.ceil(percentile / 100 * len(ordered)), 1)
        return ordered[rank - 1]


class Objective(Protocol):
    """Costs of trials (lower is better; `inf` breaks a constraint)."""

    needs_energy: bool

    def costs(self, trials: Sequence[TrialStats]) -> list[float]:
        """One cost per trial; a cost may depend on the other trials (e.g. a slowdown bound)."""

    def describe(self) -> str: ...

    def explain(self, trial: TrialStats) -> str:
        """Why this trial's cost is infinite (for the ledger's notes)."""


def _unmeasured(trial: TrialStats) -> str:
    if trial.error:
        return trial.error
    if trial.work <= 0:
        return "no work counted (step.work must be > 0)"
    return "no energy measured" if trial.energy_j is None else "cost not finite"


def zeus_cost(energy_j: float, time_s: float, eta: float, max_power_w: float) -> float:
    """Zeus's energy-time cost (NSDI 2023, eq. 2): eta*E + (1-eta)*MAXPOWER*T, in joules."""
    return eta * energy_j + (1 - eta) * max_power_w * time_s


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else INF


@dataclass(frozen=True)
class Energy:
    """Joules per unit of work."""

    needs_energy: bool = field(default=True, init=False)

    def costs(self, trials: Sequence[TrialStats]) -> list[float]:
        return [t.energy_per_work_j if t.ok else INF for t in trials]

    def describe(self) -> str:
        return "energy"

    def explain(self, trial: TrialStats) -> str:
        return _unmeasured(trial)


@dataclass(frozen=True)
class Time:
    """Seconds per unit of work."""

    needs_energy: bool = field(default=False, init=False)

    def costs(self, trials: Sequence[TrialStats]) -> list[float]:
        return [t.time_per_work_s if t.ok else INF for t in trials]

    def describe(self) -> str:
        return "time"

    def explain(self, trial: TrialStats) -> str:
        return _unmeasured(trial)


@dataclass(frozen=True)
class ZeusCost:
    """eta x joules + (1 - eta) x max_power_w x seconds, per unit of work."""

    eta: float
    max_power_w: float
    needs_energy: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.eta, (int, float)) and 0.0 <= self.eta <= 1.0):
            raise ConfigError(f"ZeusCost: eta must be in [0, 1] (got {self.eta!r})")
        if not (
            isinstance(self.max_power_w, (int, float)) and math.isfinite(self.max_power_w) and self.max_power_w > 0
        ):
            raise ConfigError(f"ZeusCost: max_power_w must be positive watts (got {self.max_power_w!r})")

    def costs(self, trials: Sequence[TrialStats]) -> list[float]:
        return [
            _finite_or_inf(zeus_cost(t.energy_per_work_j, t.time_per_work_s, self.eta, self.max_power_w))
            if t.ok
            else INF
            for t in trials
        ]

    def describe(self) -> str:
        return f"zeus(eta={self.eta:g}, max_power_w={self.max_power_w:g})"

    def explain(self, trial: TrialStats) -> str:
        return _unmeasured(trial)


@dataclass(frozen=True)
class EnergyWithinSlowdown:
    """Least joules per unit of work among settings at most `max_slowdown` times slower (per
    unit of work) than the fastest setting profiled; e.g. 1.1 allows 10 % (Zeus's
    `MaxSlowdownConstraint`, relative there to the maximum power limit)."""

    max_slowdown: float
    needs_energy: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.max_slowdown, (int, float)) and self.max_slowdown >= 1.0):
            raise ConfigError(
                f"EnergyWithinSlowdown: max_slowdown is a factor >= 1, e.g. 1.1 for 10 % (got {self.max_slowdown!r})"
            )

    def costs(self, trials: Sequence[TrialStats]) -> list[float]:
        fastest = min((t.time_per_work_s for t in trials if t.ok), default=INF)
        return [
            t.energy_per_work_j if t.ok and t.time_per_work_s <= self.max_slowdown * fastest else INF for t in trials
        ]

    def describe(self) -> str:
        return f"energy within {self.max_slowdown:g}x slowdown"

    def explain(self, trial: TrialStats) -> str:
        if not trial.ok or trial.energy_j is None:
            return _unmeasured(trial)
        return f"more than {self.max_slowdown:g}x slower per unit of work than the fastest setting"


@dataclass(frozen=True)
class JoulesPerRequest:
    """Inference: joules per request (set `step.work` to the requests served by the step)
    among settings whose `percentile` step latency stays within `latency_target_s`."""

    latency_target_s: float
    percentile: float = 95.0
    needs_energy: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.latency_target_s, (int, float)) and self.latency_target_s > 0):
            raise ConfigError(f"JoulesPerRequest: latency_target_s must be > 0 (got {self.latency_target_s!r})")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"JoulesPerRequest: percentile must be in (0, 100] (got {self.percentile!r})")

    def costs(self, trials: Sequence[TrialStats]) -> list[float]:
        return [
            t.energy_per_work_j if t.ok and t.latency_s(self.percentile) <= self.latency_target_s else INF
            for t in trials
        ]

    def describe(self) -> str:
        return f"joules per request, p{self.percentile:g} latency <= {self.latency_target_s:g} s"

    def explain(self, trial: TrialStats) -> str:
        latency = trial.latency_s(self.percentile)
        if not trial.ok or trial.energy_j is None or latency <= self.latency_target_s:
            return _unmeasured(trial)
        return f"p{self.percentile:g} latency {latency:.4g} s > target {self.latency_target_s:g} s"


def pool(trials: Sequence[TrialStats]) -> TrialStats:
    """Several trials of one setting as one: sums of work, time and energy (energy None if
    any trial lacks it), all step durations, the weakest provenance. Failed trials are left
    out unless all failed; trials measured on a busy machine (`disturbed`) are left out
    unless all were."""
    ok = [t for t in trials if t.ok] or list(trials[:1])
    quiet = [t for t in ok if not t.disturbed]
    left_out = len(ok) - len(quiet) if quiet else 0
    ok = quiet or ok
    if len(ok) == 1:
        if not left_out:
            return ok[0]
        return replace(ok[0], notes=_joined(ok[0].notes, f"{left_out} disturbed trial(s) left out"))
    energies = [t.energy_j for t in ok]
    energy_j = None if any(e is None for e in energies) else sum(e for e in energies if e is not None)
    band = sum((t.energy_j or 0.0) * (t.rel_uncertainty or 0.0) for t in ok)
    ranks = {p.value: p.rank for p in Provenance}
    provenance = max((t.provenance for t in ok), key=lambda p: ranks.get(p, -1))
    return TrialStats(
        index=ok[0].index,
        setting=ok[0].setting,
        iterations=sum(t.iterations for t in ok),
        warmup_iterations=sum(t.warmup_iterations for t in ok),
        work=sum(t.work for t in ok),
        duration_s=sum(t.duration_s for t in ok),
        energy_j=energy_j,
        rel_uncertainty=band / energy_j if energy_j else None,
        provenance=provenance,
        step_durations_s=tuple(d for t in ok for d in t.step_durations_s),
        notes=f"pooled over {len(ok)} trials" + (f"; {left_out} disturbed trial(s) left out" if left_out else ""),
        coload_cores=_median([t.coload_cores for t in ok if t.coload_cores is not None]),
        disturbed=all(t.disturbed for t in ok),
    )


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
