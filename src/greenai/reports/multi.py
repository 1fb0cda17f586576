"""What the reports on several runs, an optimization study and a schedule batch show.

- comparison: each run's energy by device and by (top-level, rolled-up) phase, per-unit
  figures, and ratios to the first run with their ~95 % band and verdict in words
  (`greenai.ledger.compare`, as `runs compare` prints them: the meters' bands, the repeats'
  spread, a disturbed run not comparable);
- study: the recorded candidates, the energy-quality Pareto front and the recommendation,
  recomputed from the ledger with optimize's own rule (`greenai.optimize.pareto`) at a stated
  quality bound (the ledger keeps the candidates, not the bound the search was run with);
- batch: the jobs' waits and runs on the carbon intensity they ran under, and the carbon
  saved against running each job at its arrival: the job's own energy profile (its samples)
  charged at the intensity of the times it would have run had it started when it arrived.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from greenai.carbon import configured_intensity
from greenai.carbon.held import HeldIntensity
from greenai.carbon.intensity import IntensitySource
from greenai.errors import GreenAIError
from greenai.ledger import compare_runs
from greenai.ledger.candidates import CandidateRow
from greenai.ledger.compare import Comparison, RunComparison, Verdict, band_legend, thresholds_of, verdict
from greenai.ledger.export import iso_utc
from greenai.ledger.jobs import JobRow
from greenai.ledger.records import RunRecord
from greenai.ledger.series import SampleSeries
from greenai.optimize.pareto import Point, cheapest_within, pareto_front, quality_bound, saving_is_real
from greenai.reports.model import RunView
from greenai.tracking.phases import NO_PHASE
from greenai.units import J_PER_KWH

# -- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonView:
    runs: tuple[RunView, ...]  # runs[0] is the baseline
    comparison: Comparison
    devices: tuple[str, ...]  # every device any run has, in first-seen order
    phases: tuple[str, ...]  # top-level phases any run has
    energy_by_device: tuple[dict[str, float], ...]  # per run
    energy_by_phase: tuple[dict[str, float], ...]  # per run, top-level phases rolled up

    @property
    def legend(self) -> str:
        """What the bands and the co-load mean, as `runs compare` says it."""
        return band_legend(thresholds_of(self.comparison.runs))

    @property
    def unit_counters(self) -> tuple[str, ...]:
        """The counters every run has that the user counted (not greenai's own)."""
        return tuple(c for c in self.comparison.counters if not c.startswith("greenai."))

    def verdict(self, run: RunComparison, key: str) -> Verdict:
        """`run`'s ratio `key` to the baseline in words (`ledger.compare.verdict`)."""
        return verdict(run, self.comparison.baseline, key)


def comparison_view(
    views: Sequence[RunView], repeats: Mapping[str, Sequence[RunRecord]] | None = None
) -> ComparisonView:
    """The comparison of `views` (the first is the baseline); `repeats` (`ledger.compare.repeat_groups`)
    gives each ratio the spread of the runs' repeats beside the meters' bands."""
    records = [v.record for v in views]
    devices: dict[str, None] = {}
    phases: dict[str, None] = {}
    by_device, by_phase = [], []
    for v in views:
        d = {row.device: row.energy_j for row in v.devices}
        devices.update(dict.fromkeys(d))
        by_device.append(d)
        p = {row.path: row.energy_j for row in v.phases if row.depth == 0}
        phases.update(dict.fromkeys(k for k in p if k != NO_PHASE))
        by_phase.append(p)
    if any(NO_PHASE in p for p in by_phase):
        phases[NO_PHASE] = None
    return ComparisonView(
        tuple(views), compare_runs(records, repeats), tuple(devices), tuple(phases), tuple(by_device), tuple(by_phase)
    )


# -- optimization study -----------------------------------------------------------------------


@dataclass(frozen=True)
class StudyView:
    study_id: str
    quality_name: str
    candidates: tuple[CandidateRow, ...]
    front: tuple[str, ...]  # names on the Pareto front, by energy
    bound: float | None
    bound_note: str
    recommended: str | None
    recommendation: str  # one sentence
    baseline: CandidateRow | None


def study_view(rows: Sequence[CandidateRow], max_quality_drop: float) -> StudyView:
    measured = [
        r
        for r in rows
        if r.status == "measured"
        and r.energy_per_sample_j is not None
        and math.isfinite(r.energy_per_sample_j)
        and r.quality is not None
    ]
    points = [Point(r.name, float(r.energy_per_sample_j or 0.0), float(r.quality or 0.0)) for r in measured]
    front = tuple(p.name for p in pareto_front(points))
    baseline = next((r for r in rows if r.name == "baseline"), rows[0] if rows else None)
    bound = None
    recommended = None
    if baseline is not None and baseline.quality is not None:
        bound = quality_bound(baseline.quality, max_quality_drop, None)
        choice = cheapest_within(points, bound)
        recommended = choice.name if choice else None
    bound_note = (
        f"quality ≥ {bound:.4g}: the baseline's {baseline.quality_name or 'quality'} minus {max_quality_drop:g} "
        "(the ledger keeps candidates, not the bound a search used: `--max-quality-drop` sets it here)"
        if bound is not None and baseline is not None
        else "no baseline quality recorded: no bound, no recommendation"
    )
    sentence = _recommendation(rows, baseline, recommended)
    return StudyView(
        study_id=rows[0].study_id if rows else "",
        quality_name=rows[0].quality_name if rows else "",
        candidates=tuple(rows),
        front=front,
        bound=bound,
        bound_note=bound_note,
        recommended=recommended,
        recommendation=sentence,
        baseline=baseline,
    )


def _recommendation(rows: Sequence[CandidateRow], baseline: CandidateRow | None, name: str | None) -> str:
    if name is None:
        return "no candidate meets the quality bound"
    rec = next(r for r in rows if r.name == name)
    if baseline is None or rec is baseline or not baseline.energy_per_sample_j or not rec.energy_per_sample_j:
        return f"{name}: nothing measured beats the baseline within the quality bound"
    ratio = baseline.energy_per_sample_j / rec.energy_per_sample_j
    # candidates of one study share one meter: its bias cancels; repeat spread is not stored,
    # so the meters' band stands in for it (conservative)
    real = saving_is_real(
        baseline.energy_per_sample_j,
        rec.energy_per_sample_j,
        baseline.rel_uncertainty or 0.0,
        rec.rel_uncertainty or 0.0,
    )
    beyond = "beyond the stated uncertainty" if real else "within the stated uncertainty: not a sure saving"
    return f"{name}: {ratio:.2f}x less energy per sample than the baseline ({beyond})"


# -- schedule batch ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    job: JobRow
    wait_s: float | None  # started_at - arrived_at
    carbon_g: float | None  # as charged sample by sample (recomputed from the job's samples)
    carbon_at_arrival_g: float | None  # the same profile, started at arrival
    note: str


@dataclass(frozen=True)
class BatchView:
    batch_id: str
    jobs: tuple[JobView, ...]
    origin: float  # unix time all offsets count from (first arrival or submission)
    intensity_t: Any | None  # unix times
    intensity_g: Any | None
    intensity_source: str
    carbon_g: float | None
    carbon_at_arrival_g: float | None
    note: str

    @property
    def saving_g(self) -> float | None:
        if self.carbon_g is None or self.carbon_at_arrival_g is None:
            return None
        return self.carbon_at_arrival_g - self.carbon_g

    @property
    def saving_pct(self) -> float | None:
        saving = self.saving_g
        if saving is None or not self.carbon_at_arrival_g:
            return None
        return 100.0 * saving / self.carbon_at_arrival_g


def intensity_of(record: RunRecord) -> IntensitySource:
    """The intensity source the run was charged with, rebuilt from its recorded config."""
    config = record.start.environment.get("config") if isinstance(record.start.environment, dict) else None
    spec = str((config or {}).get("intensity") or "")
    return configured_intensity(spec)


def batch_view(
    jobs: Sequence[JobRow],
    load_run: Callable[[str], tuple[RunRecord, SampleSeries]],
) -> BatchView:
    views = []
    sources: dict[str, IntensitySource] = {}
    notes: list[str] = []
    for job in jobs:
        wait = job.started_at - job.arrived_at if job.started_at and job.arrived_at else None
        if job.run_id is None:
            views.append(JobView(job, wait, None, None, "no tracked run in this ledger"))
            continue
        try:
            record, series = load_run(job.run_id)
            source = intensity_of(record)
        except (GreenAIError, OSError, ValueError) as e:
            views.append(JobView(job, wait, None, None, f"cannot read its run: {e}"))
            continue
        sources.setdefault(source.describe(), source)
        try:
            actual = _profile_carbon(series, record, source, 0.0)
        except (GreenAIError, OSError, ValueError) as e:
            views.append(JobView(job, wait, None, None, f"cannot charge its run: {e}"))
            continue
        if wait is None:
            views.append(JobView(job, None, actual, None, "arrival not recorded (batch run before greenai kept it)"))
            continue
        try:
            at_arrival = _profile_carbon(series, record, source, -wait)
        except (GreenAIError, OSError, ValueError) as e:
            views.append(JobView(job, wait, actual, None, f"cannot charge it as if started at its arrival: {e}"))
            continue
        views.append(JobView(job, wait, actual, at_arrival, ""))
    if len(sources) > 1:
        notes.append("jobs were charged with different intensity sources; the curve shows the first")
    times = [
        t for j in jobs for t in (j.arrived_at, j.submitted_at, j.started_at, j.ended_at) if t is not None and t > 0
    ]
    origin = min(times) if times else 0.0
    end = max(times) if times else 0.0
    first = next(iter(sources.values()), None)
    curve_t: Any = None
    curve_g: Any = None
    described = first.describe() if first is not None else "no job has a tracked run"
    if first is not None and end > origin:
        margin = 0.05 * (end - origin)
        curve_t = np.linspace(origin - margin, end + margin, 400)
        curve = HeldIntensity(first, warn=False)  # past a trace's end, as the runs were charged
        try:
            curve_g = np.array([curve.intensity_at(float(t)) for t in curve_t])
            described = curve.describe()
        except (GreenAIError, OSError, ValueError) as e:
            notes.append(f"cannot draw the intensity: {e}")
            curve_t = None
    scored = [v for v in views if v.carbon_g is not None and v.carbon_at_arrival_g is not None]
    total_g = sum(v.carbon_g or 0.0 for v in scored) if scored else None
    total_at_arrival_g = sum(v.carbon_at_arrival_g or 0.0 for v in scored) if scored else None
    if scored and len(scored) < len(views):
        notes.append(f"the saving covers {len(scored)} of {len(views)} jobs (the others: see their notes)")
    return BatchView(
        batch_id=jobs[0].batch_id if jobs else "",
        jobs=tuple(views),
        origin=origin,
        intensity_t=curve_t,
        intensity_g=curve_g,
        intensity_source=described,
        carbon_g=total_g,
        carbon_at_arrival_g=total_at_arrival_g,
        note="; ".join(notes),
    )


def _profile_carbon(series: SampleSeries, record: RunRecord, source: IntensitySource, shift_s: float) -> float:
    """Carbon of the run's energy profile, each interval's facility energy charged at the
    intensity of its midpoint moved by `shift_s` (0: as it ran; -wait: as if started at arrival).
    The intervals are those between the points the ledger read (every sample of a short run;
    a long run's bucket ends and extremes, at most ~1/1000 of the run apart): the energy of
    each is exact (cumulative energy at both ends), its time to within one of them."""
    pue = record.snapshot.pue if math.isfinite(record.snapshot.pue) else 1.0
    total = 0.0
    t0 = record.start.started_at
    # as the tracker charged it: read at the start, a trace that ends held at its last value
    held = HeldIntensity.started(source, t0 + shift_s, warn=False)
    for device in series.devices:
        t_prev, e_prev = t0, 0.0
        for t, energy in zip(device.t, device.energy_j, strict=True):
            delta = (energy if math.isfinite(energy) else e_prev) - e_prev
            if delta > 0:
                mid = (t_prev + t) / 2 + shift_s
                total += delta * pue / J_PER_KWH * held.intensity_at(mid)
            t_prev, e_prev = t, e_prev + delta
    return total


def job_label(job: JobRow) -> str:
    return job.name or job.job_id


def utc(t: float | None) -> str:
    return "—" if t is None else iso_utc(t)[:19].replace("T", " ")
