"""Forecast: where a run is heading (energy, time, carbon, cost), with a confidence interval.

Progress is the user's "steps" counter (`run.count("steps")`), the target `planned_steps`
(or `planned_epochs`, converted with the mean steps per completed epoch). The sampler
thread records a compact trace at every tick (`greenai.tracking.progress`, bounded memory); the
forecast is computed from it lazily (`run.forecast()`, or every 10th tick in the sampler
thread when a budget watches the forecast), never on the training hot path. There is no
forecast before 5 % of the planned steps, nor before the trace holds a few windows.

Method. The baseline is CarbonTracker's (Anthony, Kanding and Selvan, "Carbontracker:
Tracking and Predicting the Carbon Footprint of Training Deep Learning Models", ICML
Workshop on Challenges in Deploying and Monitoring ML Systems, 2020; arXiv:2007.03051):
measure the first epoch(s) and extrapolate linearly, `predict_energy(total_epochs,
epoch_energy_usages) = total_epochs * mean(epoch_energy_usages)` (carbontracker/predictor.py).
That rule is biased whenever the first epoch is not typical: warm-up steps (allocator and
kernel warm-up, a data cache filling, a learning-rate or batch-size ramp), evaluation run
at a period that is not one epoch, epochs of unequal length. Here, instead:

    E_total = E_spent + r_train * (N - n) + sum over periodic phases p of K_p * e_p

- `r_train`: steady-state training energy per step. Training energy is the total minus the
  energy the tracker already apportions to the periodic phases (by default phases named
  "eval" or "evaluation", at any depth). The trace is cut into up to 24 windows of equal
  step span (each over at least 4 samples). The reference level is the median rate of the
  most recent third of the windows; going back from there, warm-up ends after the latest
  pair of consecutive windows more than max(5 %, 3 robust SDs) off that level ("discard
  steps until the per-step cost has stabilised", judged from the present backwards, so an
  isolated noisy window is not mistaken for warm-up). `r_train` is the ratio of energy to
  steps over the remaining (steady) span.
- `e_p`: mean energy of one occurrence of periodic phase p (a first occurrence that is an
  outlier is treated as warm-up); `K_p`: occurrences still expected. If every occurrence
  starts at an epoch end (the "epochs" counter), one per epoch still to end
  (`planned_epochs`, or estimated from the mean epoch length so far, which is biased when
  epochs grow); otherwise from their period in steps (mean gap between starts) up to the
  planned step count.
- Time uses the same model on wall time; carbon and cost charge the remaining energy at
  the carbon (cost) per joule of the steady span, so a time-varying intensity trace is
  followed up to the last sample.

Uncertainty (~95 %, like the meters' bands), reported as two bands:
- statistical: prediction interval of the remaining energy. With window rates r_1..r_n
  (SD s, lag-1 autocorrelation rho, n_eff = n(1-rho)/(1+rho)), M future windows of w steps
  and R = N - n remaining steps: var = M (w s)^2 + (R s)^2 / n_eff, half-width
  t_{0.975, n_eff-1} * sqrt(var) (noise of the future windows plus the error of the
  estimated mean). Periodic phases add K s_e^2 + (K s_e)^2 / m and one occurrence (the
  count may be off by one: a final evaluation, alignment with the last step); the parts
  are combined in quadrature (independent), with a drift term: the rest of the run may cost
  DRIFT_REL (20 %) more or less per step than the steady part seen so far, so
  DRIFT_REL x the remaining energy (and time) is added in quadrature. That is a judgement from
  evidence, not a statistic of this run: in 24 runs of benchmarks/forecast_accuracy.py on two
  shared VMs the energy per step after the 10 % mark moved 1-23 % from the rate measured
  there (other jobs, Adam's state turning denormal, glibc's allocator thresholds). Without the
  term the band held the final energy in 14 of the 24 at 10 %; with 15 %, chosen on the first
  16, it held 6 of the next 8 (22 of 24); with 20 %, 24 of 24 (docs/benchmarks.md).
  This band answers "what will the meter read".
- meter: the meters' own relative uncertainty times the forecast (their error is
  systematic, so it applies to spent and future energy alike). `energy_low_j`/`high_j`
  are the linear sum of both bands (conservative, as for run totals).
A busy machine (tracking/coload.py): each trace point carries the CPU-seconds other processes
(and hypervisor steal) took since the start, so each window of the steady span has its mean
co-load. Windows at or above the run's threshold (`coload_threshold_cores`) are disturbed: the
energy per step measured under that load is not what the run costs alone, nor what it will cost
if the load goes on changing. If some windows are disturbed and some quiet (load that came or
went: the warm-up detection may then take the part before the change for warm-up), the band is
widened to hold the rest of the run at the quiet windows' median rate and at the disturbed
ones' (whichever way the machine goes), and a note says so; if every window is disturbed there
is nothing to compare, and the forecast withholds itself (`NotYet`, saying why) until quiet
windows have been seen. Whatever the bands, the lower bound is never below the
energy already spent (measured: the meters' band applies to what remains).
Beyond the drift term, the statistical band assumes the future looks like the steady part
seen so far; it cannot cover a run whose cost per step changes by more (a schedule change the
tracker is not told about, a recurrent model whose backward turns denormal: 13-20x slower,
benchmarks/denormals.py). benchmarks/forecast_accuracy.py measures both bands.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from greenai.meters.base import Provenance
from greenai.tracking.progress import Occurrence, ProgressSeries, TracePoint
from greenai.units import joules_to_kwh

METHOD = "steady-state energy per step x remaining steps + periodic phases x remaining occurrences"
TARGET_WINDOWS = 24
MIN_WINDOWS = 4
MIN_STEADY_WINDOWS = 3
MIN_TICKS_PER_WINDOW = 4
MIN_PROGRESS = 0.05
WARMUP_REL_TOL = 0.05  # warm-up must differ from the steady rate by more than 5 %
OUTLIER_REL_TOL = 0.25  # a first periodic occurrence this far from the others is warm-up
PRIOR_REL_SD = 0.25  # SD assumed for a periodic phase seen only once
DRIFT_REL = 0.20  # the rest of a run may cost this much more or less per step (docstring)

# Student t, two-sided 95 % (0.975 quantile), df 1..30; then interpolated to 1.96.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t975(df: float) -> float:
    """0.975 quantile of Student's t (tables; 1.96 + 2.4/df beyond 30 df, within 0.3 %)."""
    if df < 1:
        return _T975[0]
    if df <= 30:
        return _T975[int(df) - 1]
    return 1.96 + 2.4 / df


# -- the forecast --------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodicModel:
    """How one periodic phase (e.g. evaluation) enters the forecast."""

    phase: str
    occurrences: int  # seen so far
    energy_per_occurrence_j: float
    duration_per_occurrence_s: float
    period_steps: float | None
    remaining: int


@dataclass(frozen=True)
class Forecast:
    """Where the run is heading if it runs to the planned number of steps (~95 % bands)."""

    progress: float  # steps done / planned steps
    steps_done: float
    planned_steps: float
    energy_spent_j: float
    energy_j: float
    energy_low_j: float  # statistical and meter bands, summed
    energy_high_j: float
    energy_stat_band_j: float  # half-width: dispersion of per-step energy, periodic phases, drift
    energy_meter_band_j: float  # half-width: the meters' relative uncertainty
    duration_s: float
    duration_low_s: float
    duration_high_s: float
    carbon_g: float
    carbon_low_g: float
    carbon_high_g: float
    cost: float
    currency: str
    steady_energy_per_step_j: float
    warmup_steps: float  # steps excluded from the steady-state fit
    periodic: tuple[PeriodicModel, ...]
    provenance: Provenance  # of the energy it extrapolates
    made_at_s: float  # run time when the forecast was made
    method: str = METHOD
    notes: tuple[str, ...] = field(default=())
    # the share of the run's windows when other processes kept the threshold or more CPUs busy
    # (0: quiet, or co-load unknown); the band is widened when it is above 0
    disturbed_share: float = 0.0

    @property
    def energy_kwh(self) -> float:
        return joules_to_kwh(self.energy_j)

    def summary(self) -> str:
        """One line, e.g. for a log or a progress bar."""
        band = max(self.energy_high_j - self.energy_j, self.energy_j - self.energy_low_j)
        return (
            f"forecast at {self.progress:.0%}: {self.energy_j:.4g} J ± {band:.2g} "
            f"({self.energy_low_j:.4g}-{self.energy_high_j:.4g} J, {self.provenance.value}), "
            f"{self.duration_s:.4g} s, {self.carbon_g:.3g} gCO2e"
        )


@dataclass(frozen=True)
class NotYet:
    """No forecast yet, and why."""

    reason: str


@dataclass(frozen=True)
class Plan:
    steps: float | None = None
    epochs: float | None = None

    @property
    def is_set(self) -> bool:
        return self.steps is not None or self.epochs is not None


@dataclass(frozen=True)
class _Rate:
    rate: float  # per step
    start_index: int  # first steady point
    warmup_steps: float
    sd: float  # of window rates
    n_eff: float
    window_steps: float
    bounds: tuple[int, ...] = ()  # trace indices bounding the windows (warm-up included)
    rates: tuple[float, ...] = ()  # each window's rate


def make_forecast(series: ProgressSeries, plan: Plan, min_progress: float = MIN_PROGRESS) -> Forecast | NotYet:
    """The forecast for `series` under `plan` (a pure function of its arguments)."""
    points = series.points
    if not points:
        return NotYet("no samples yet")
    last = points[-1]
    notes: list[str] = []
    planned = _planned_steps(points, plan, notes)
    if isinstance(planned, NotYet):
        return planned
    progress = last.steps / planned
    if progress < min_progress:
        return NotYet(f"progress {progress:.1%} is below the warm-up fraction {min_progress:.0%}")
    train_e = [p.energy_j - p.periodic_energy_j for p in points]
    train_t = [p.t_s - p.periodic_time_s for p in points]
    steps = [p.steps for p in points]
    energy_rate = _steady_rate(steps, train_e)
    time_rate = _steady_rate(steps, train_t)
    if energy_rate is None or time_rate is None:
        return NotYet("not enough steps sampled yet for a steady-state estimate")
    e_load = _disturbance(points, energy_rate, series.coload_threshold_cores)
    t_load = _disturbance(points, time_rate, series.coload_threshold_cores)
    if e_load is not None and e_load.quiet_rate is None:
        return NotYet(
            f"the machine has been busy through the whole run so far: other processes kept "
            f"{e_load.cores:.2f} CPUs busy (median over its windows; threshold "
            f"{series.coload_threshold_cores:g}), and the energy per step measured under that load says "
            "little about the rest; a forecast follows once part of the run has been measured quiet"
        )
    if energy_rate.warmup_steps > 0:
        notes.append(f"warm-up: the first {energy_rate.warmup_steps:g} steps are excluded from the per-step energy")
    remaining = max(planned - last.steps, 0.0)
    if last.steps > planned:
        notes.append(f"{last.steps:g} steps done, more than the {planned:g} planned")

    # half-widths of independent parts, combined in quadrature
    e_half2 = (t975(energy_rate.n_eff - 1)) ** 2 * _future_variance(energy_rate, remaining)
    t_half2 = (t975(time_rate.n_eff - 1)) ** 2 * _future_variance(time_rate, remaining)
    e_future = energy_rate.rate * remaining
    t_future = time_rate.rate * remaining
    models = []
    epochs_total = _epochs_total(series, plan, planned)
    for name in dict.fromkeys(o.phase for o in series.occurrences):
        model, e_part, t_part = _periodic(name, series, planned, remaining, epochs_total, notes)
        models.append(model)
        e_future, t_future = e_future + e_part[0], t_future + t_part[0]
        e_half2, t_half2 = e_half2 + e_part[1] ** 2, t_half2 + t_part[1] ** 2
    if not models and series.periodic_phases:
        notes.append(f"no {'/'.join(series.periodic_phases)} phase seen yet: none is in the forecast")
    e_half2 += (DRIFT_REL * e_future) ** 2
    t_half2 += (DRIFT_REL * t_future) ** 2

    energy_j = last.energy_j + e_future
    stat_j = math.sqrt(e_half2)
    meter_j = energy_j * series.rel_uncertainty
    low_j = energy_j - stat_j - meter_j
    high_j = energy_j + stat_j + meter_j
    duration_s = last.t_s + t_future
    stat_s = math.sqrt(t_half2)
    duration_low_s, duration_high_s = max(duration_s - stat_s, last.t_s), duration_s + stat_s
    if e_load is not None:  # the rest may run at the quiet windows' rate or at the disturbed ones'
        periodic_j = e_future - energy_rate.rate * remaining
        for rate in (e_load.quiet_rate, e_load.loaded_rate):
            other_j = last.energy_j + periodic_j + (rate or 0.0) * remaining
            low_j = min(low_j, other_j * (1 - series.rel_uncertainty))
            high_j = max(high_j, other_j * (1 + series.rel_uncertainty))
        notes.append(e_load.describe(series.coload_threshold_cores))
    if t_load is not None and t_load.quiet_rate is not None:
        periodic_s = t_future - time_rate.rate * remaining
        for rate in (t_load.quiet_rate, t_load.loaded_rate):
            other_s = last.t_s + periodic_s + (rate or 0.0) * remaining
            duration_low_s, duration_high_s = min(duration_low_s, other_s), max(duration_high_s, other_s)
    # what is spent is spent: the lower bound never goes below it (the meters' band applies
    # to the energy still to come)
    low_j = max(low_j, last.energy_j)
    duration_low_s = max(duration_low_s, last.t_s)

    # carbon and cost of the remaining energy at the steady span's rate per joule
    first = points[energy_rate.start_index]
    de = last.energy_j - first.energy_j
    g_per_j = (
        (last.carbon_g - first.carbon_g) / de
        if de > 0
        else (last.carbon_g / last.energy_j if last.energy_j > 0 else 0.0)
    )
    cost_per_j = (last.cost - first.cost) / de if de > 0 else (last.cost / last.energy_j if last.energy_j > 0 else 0.0)
    if series.rel_uncertainty > 0:
        notes.append(f"meters: ±{series.rel_uncertainty:.0%} ({series.provenance.value})")
    return Forecast(
        progress=progress,
        steps_done=last.steps,
        planned_steps=planned,
        energy_spent_j=last.energy_j,
        energy_j=energy_j,
        energy_low_j=low_j,
        energy_high_j=high_j,
        energy_stat_band_j=stat_j,
        energy_meter_band_j=meter_j,
        duration_s=duration_s,
        duration_low_s=duration_low_s,
        duration_high_s=duration_high_s,
        carbon_g=last.carbon_g + e_future * g_per_j,
        carbon_low_g=last.carbon_g + max(low_j - last.energy_j, 0.0) * g_per_j,
        carbon_high_g=last.carbon_g + (high_j - last.energy_j) * g_per_j,
        cost=last.cost + e_future * cost_per_j,
        currency=series.currency,
        steady_energy_per_step_j=energy_rate.rate,
        warmup_steps=energy_rate.warmup_steps,
        periodic=tuple(models),
        provenance=series.provenance,
        made_at_s=last.t_s,
        notes=tuple(notes),
        disturbed_share=e_load.share if e_load is not None else 0.0,
    )


def _planned_steps(points: Sequence[TracePoint], plan: Plan, notes: list[str]) -> float | NotYet:
    if plan.steps:
        return float(plan.steps)
    if not plan.epochs:
        return NotYet("no plan: pass planned_steps (or planned_epochs and count 'epochs')")
    last = points[-1]
    done = math.floor(last.epochs)
    if done < 1:
        return NotYet("planned_epochs needs one completed epoch (run.count('epochs'))")
    # steps when the epoch counter first reached its current value
    at_boundary = next(p.steps for p in points if p.epochs >= done)
    per_epoch = at_boundary / done
    if per_epoch <= 0:
        return NotYet("no steps counted in the completed epochs")
    notes.append(
        f"planned steps estimated: {per_epoch:.4g} steps per epoch over {done} "
        f"completed epoch(s) x {plan.epochs:g} epochs"
    )
    return at_boundary + (plan.epochs - done) * per_epoch


def _steady_rate(steps: Sequence[float], values: Sequence[float]) -> _Rate | None:
    """Steady-state increase of `values` per step, warm-up excluded (see module doc)."""
    start = 0
    while start + 1 < len(steps) and steps[start + 1] == steps[0]:
        start += 1  # energy before the first step (set-up) is spent, not a per-step cost
    span = steps[-1] - steps[start]
    if span <= 0:
        return None
    # windows of equal step span, each over several samples (a window's ends are off by up
    # to a sampling interval, so a window of one or two ticks would be mostly noise)
    n_windows = min(TARGET_WINDOWS, (len(steps) - start) // MIN_TICKS_PER_WINDOW)
    if n_windows < MIN_WINDOWS:
        return None
    min_gap = max(span / n_windows, 1.0)
    bounds = [start]
    for i in range(start + 1, len(steps)):
        if steps[i] - steps[bounds[-1]] >= min_gap:
            bounds.append(i)
    if len(bounds) - 1 < MIN_WINDOWS:
        return None

    # the value when the count reached steps[i]: that happened between samples i-1 and i,
    # so take the midpoint (unbiased if the step ended anywhere in the interval)
    def at(i: int) -> float:
        return (values[i - 1] + values[i]) / 2 if i > start and steps[i - 1] < steps[i] else values[i]

    rates = [(at(j) - at(i)) / (steps[j] - steps[i]) for i, j in pairwise(bounds)]
    k0 = _warmup_windows(rates)
    steady = rates[k0:]
    i0 = bounds[k0]
    # end when the latest count was reached (the latest sample may be in the next step)
    end = next(i for i in range(i0, len(steps)) if steps[i] == steps[-1])
    rate = (at(end) - at(i0)) / (steps[end] - steps[i0]) if steps[end] > steps[i0] else steady[-1]
    sd = statistics.stdev(steady) if len(steady) > 1 else 0.0
    n = len(steady)
    rho = _lag1_autocorrelation(steady)
    n_eff = min(max(n * (1 - rho) / (1 + rho), 2.0), float(n)) if rho > 0 else float(n)
    gaps = [steps[j] - steps[i] for i, j in pairwise(bounds[k0:])]
    return _Rate(rate, i0, steps[i0] - steps[start], sd, n_eff, statistics.fmean(gaps), tuple(bounds), tuple(rates))


@dataclass(frozen=True)
class _Disturbance:
    """The windows' co-load against the threshold (some windows disturbed)."""

    share: float  # of the windows, disturbed
    cores: float  # median co-load of the disturbed windows (CPUs)
    quiet_rate: float | None  # median rate of the quiet windows (None: none was quiet)
    loaded_rate: float  # median rate of the disturbed windows
    now: bool  # the latest window is disturbed

    def describe(self, threshold: float | None) -> str:
        when = "now" if self.now else "during part of the run"
        return (
            f"busy machine {when}: other processes kept {self.cores:.2f} CPUs busy (threshold {threshold:g}) in "
            f"{self.share:.0%} of the run's windows, which cost {self.loaded_rate / (self.quiet_rate or 1):.2f}x the "
            "quiet windows per step; the band holds the rest of the run at either rate"
        )


def _disturbance(points: Sequence[TracePoint], rate: _Rate | None, threshold: float | None) -> _Disturbance | None:
    """How the windows of `rate` were loaded; None when co-load is unknown (no threshold)
    or no window reached the threshold."""
    if rate is None or threshold is None or len(rate.bounds) < 2:
        return None
    loads = []
    for i, j in pairwise(rate.bounds):
        dt = points[j].t_s - points[i].t_s
        loads.append(max(0.0, (points[j].coload_core_s - points[i].coload_core_s) / dt) if dt > 0 else 0.0)
    busy = [k for k, load in enumerate(loads) if load >= threshold]
    if not busy:
        return None
    quiet = [k for k in range(len(loads)) if k not in set(busy)]
    return _Disturbance(
        share=len(busy) / len(loads),
        cores=statistics.median(loads[k] for k in busy),
        quiet_rate=statistics.median(rate.rates[k] for k in quiet) if quiet else None,
        loaded_rate=statistics.median(rate.rates[k] for k in busy),
        now=loads[-1] >= threshold,
    )


def _warmup_windows(rates: Sequence[float]) -> int:
    """How many leading windows are warm-up. The reference level is the median of the most
    recent third of the windows (at least MIN_STEADY_WINDOWS); a window is off-level when
    it is more than max(5 %, 3 robust SDs) from it. Scanning back from the reference, the
    warm-up ends after the latest pair of consecutive off-level windows (or after the first
    window, if only it is off): isolated outliers later on are noise, not warm-up."""
    n = len(rates)
    m = max(MIN_STEADY_WINDOWS, n // 3)
    ref = rates[-m:]
    level = statistics.median(ref)
    mad = statistics.median(abs(r - level) for r in ref)
    tol = max(WARMUP_REL_TOL * abs(level), 3 * 1.4826 * mad)
    off = [abs(r - level) > tol for r in rates]
    for k in range(n - m - 1, -1, -1):
        if off[k] and (k == 0 or off[k - 1]):
            return k + 1
    return 0


def _lag1_autocorrelation(xs: Sequence[float]) -> float:
    if len(xs) < 3:
        return 0.0
    mean = statistics.fmean(xs)
    den = sum((x - mean) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((a - mean) * (b - mean) for a, b in pairwise(xs)) / den


def _future_variance(r: _Rate, remaining_steps: float) -> float:
    """Variance of the remaining total: future windows' noise + the estimated mean's error."""
    future_windows = remaining_steps / r.window_steps
    return future_windows * (r.window_steps * r.sd) ** 2 + (remaining_steps * r.sd) ** 2 / r.n_eff


def _epochs_total(series: ProgressSeries, plan: Plan, planned: float) -> float | None:
    """Epochs the run will have: planned, or estimated from the mean epoch length so far."""
    if plan.epochs:
        return float(plan.epochs)
    ends = series.epoch_ends
    if not ends or ends[-1] <= 0:
        return None
    return len(ends) + max(round((planned - ends[-1]) / (ends[-1] / len(ends))), 0)


def _per_epoch(mine: Sequence[Occurrence], series: ProgressSeries) -> int | None:
    """If the phase runs once per epoch (at its end), the number of epochs whose one it has
    seen; else None. Once per epoch means: every occurrence starts at an epoch end (within
    a few steps; the counter may move just before or just after it), except that the latest
    may be at a step past the last counted end where training has not moved since (the
    counter is about to move), and at least one matched a counted end."""
    ends = series.epoch_ends
    if not ends:
        return None
    lengths = [b - a for a, b in pairwise((0.0, *ends))]
    tol = max(2.0, 0.1 * min(lengths))
    steps_now = series.points[-1].steps
    latest: int | None = None
    for i, o in enumerate(mine):
        j = next((j for j, b in enumerate(ends, 1) if abs(o.start_steps - b) <= tol), None)
        if j is not None:
            latest = j
        elif o.start_steps <= tol:
            continue  # an evaluation before training started
        elif i == len(mine) - 1 and o.start_steps > ends[-1] and steps_now - o.start_steps <= tol:
            latest = len(ends) + 1 if latest is not None else None
        else:
            return None
    return latest


def _periodic(
    name: str,
    series: ProgressSeries,
    planned: float,
    remaining_steps: float,
    epochs_total: float | None,
    notes: list[str],
) -> tuple[PeriodicModel, tuple[float, float], tuple[float, float]]:
    """Model of one periodic phase: (model, (energy to add, half-width), (time, half-width))."""
    mine = [o for o in series.occurrences if o.phase == name]
    energies = [o.energy_j / o.count for o in mine]
    durations = [o.duration_s / o.count for o in mine]
    if len(mine) >= 3:
        rest = statistics.median(energies[1:])
        if rest > 0 and abs(energies[0] - rest) > OUTLIER_REL_TOL * rest:
            energies, durations = energies[1:], durations[1:]
            notes.append(f"{name}: the first occurrence is treated as warm-up")
    e_mean, t_mean = statistics.fmean(energies), statistics.fmean(durations)
    m = len(energies)
    e_sd = statistics.stdev(energies) if m > 1 else PRIOR_REL_SD * e_mean
    t_sd = statistics.stdev(durations) if m > 1 else PRIOR_REL_SD * t_mean
    starts = sorted(dict.fromkeys(o.start_steps for o in mine))
    period: float | None = None
    remaining = 0
    seen_epochs = _per_epoch(mine, series) if epochs_total is not None else None
    if epochs_total is not None and seen_epochs is not None:
        # once per epoch, at its end: one more for each epoch still to end
        remaining = max(round(epochs_total) - seen_epochs, 0)
        period = (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else None
        notes.append(f"{name}: once per epoch, {remaining} more expected (of {round(epochs_total)} epochs)")
        count_error = 1.0
    else:
        if len(starts) > 1:
            period = (starts[-1] - starts[0]) / (len(starts) - 1)  # mean gap: right count on average
        elif starts and starts[0] > 0:
            period = starts[0]
            notes.append(f"{name}: seen once; its period is assumed to be {period:g} steps")
        else:
            notes.append(f"{name}: seen once at step 0; no further occurrences assumed")
        if period and remaining_steps > 0:
            remaining = max(math.floor((planned - starts[-1]) / period + 1e-9), 0)
        if period:
            notes.append(f"{name}: every {period:.4g} steps, {remaining} more expected")
        count_error = 1.0 if period else 0.0  # one occurrence more or fewer than modelled
    model = PeriodicModel(name, sum(o.count for o in mine), e_mean, t_mean, period, remaining)
    notes.append(f"{name}: {e_mean:.4g} J and {t_mean:.3g} s per occurrence")
    k = remaining
    t_q = t975(m - 1) if m > 1 else 1.96  # a single occurrence: the prior SD, normal quantile

    def half_width(mean: float, sd: float) -> float:
        return math.hypot(t_q * math.sqrt(k * sd**2 + (k * sd) ** 2 / m), count_error * mean)

    return model, (k * e_mean, half_width(e_mean, e_sd)), (k * t_mean, half_width(t_mean, t_sd))
