"""Search: build candidates from transform pipelines, judge each by quality and measured
joules per sample, and recommend the cheapest within the user's quality bound.

A pipeline is one transform or a sequence applied left to right; shared prefixes are built
once (`prune-structured-30` is reused by `prune-structured-30+int8-static`). A transform
that cannot apply is recorded as skipped with its reason, one that raises as failed; an
evaluation that raises (or returns a quality that is not a finite number), or a model that
raises while measured, fails that candidate only. The search itself never stops for one
candidate; only a baseline that cannot be evaluated or measured ends it.

Each transform name identifies one transform: names must be non-empty, contain no `+` or
`/`, not be `baseline`, and two different transforms of one search may not share a name
(a composed candidate is named by joining its steps' names with `+`).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from greenai.config import Config, load_config
from greenai.errors import ConfigError, GreenAIError, TransformSkipped
from greenai.hardware.coload import DISTURBED_CORES, CoLoadSummary
from greenai.ledger.candidates import CandidateRow, record_candidates
from greenai.ledger.store import Ledger
from greenai.optimize.candidate import Candidate, OptimizeTask, Transform
from greenai.optimize.measure import Measurement, inputs_for, measure, run_inputs
from greenai.optimize.model_stats import count_parameters, model_size_bytes
from greenai.optimize.pareto import (
    Point,
    cheapest_within,
    pareto_front,
    quality_bound,
    saving_is_real,
)
from greenai.tracking.tracker import Tracker

log = logging.getLogger(__name__)

Pipeline = Transform | Sequence[Transform]


@dataclass
class Outcome:
    """What happened to one candidate."""

    name: str
    transforms: tuple[str, ...]
    status: str  # measured | skipped | failed
    reason: str = ""
    candidate: Candidate | None = None
    quality: float | None = None
    measurement: Measurement | None = None
    size_bytes: int | None = None
    parameters: int | None = None
    nonzero_parameters: int | None = None
    notes: tuple[str, ...] = ()
    build_s: float = 0.0

    @property
    def energy_j(self) -> float | None:
        return self.measurement.energy_per_sample_j if self.measurement else None


@dataclass
class Study:
    """A finished search: every outcome, the front, the bound and the recommendation."""

    study_id: str
    run_id: str | None
    quality_name: str
    bound: float
    outcomes: list[Outcome]
    front: list[str] = field(default_factory=list)
    recommended: Outcome | None = None
    greener: bool = False  # the recommendation's saving exceeds the measurement spread
    ledger_path: Path | None = None
    # the machine during the study's run (CPUs other processes kept busy: hardware/coload.py),
    # and what the recommendation must carry because of it ("" when the machine was quiet)
    coload: CoLoadSummary | None = None
    caveat: str = ""

    @property
    def baseline(self) -> Outcome:
        return self.outcomes[0]

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def energy_ratio(self, name: str) -> float | None:
        """Baseline energy per sample over the candidate's (2.0 = half the energy)."""
        base, other = self.baseline.energy_j, self.outcome(name).energy_j
        return base / other if base and other else None

    def disturbed(self, name: str) -> bool:
        """Whether the candidate's ratio to the baseline rests on repeats measured while the
        machine was busy (its own or the baseline's, even after re-measuring)."""
        mine, base = self.outcome(name).measurement, self.baseline.measurement
        return any(m is not None and m.disturbed for m in (mine, base))


def optimize(
    task: OptimizeTask,
    pipelines: Sequence[Pipeline],
    *,
    max_quality_drop: float | None = 0.01,
    min_quality: float | None = None,
    repeats: int = 5,
    min_repeat_s: float = 0.5,
    name: str = "optimize",
    config: Config | None = None,
    store: bool = True,
    on_progress: Callable[[str], None] | None = None,
    on_advance: Callable[[float, float, str], None] | None = None,
) -> Study:
    """Run the search; see the module docstring. Energy is measured in one tracked run.

    The quality bound is `min_quality` when given, else the baseline's quality minus
    `max_quality_drop` (an absolute drop, so it also holds for negative qualities).
    `on_progress(message)` hears each stage; `on_advance(done, total, what)` counts steps
    (builds, evaluations, warm-ups and measurement rounds; the total is refined as
    candidates are built) for a progress bar with an ETA."""
    _check_arguments(task, max_quality_drop, min_quality, repeats)
    pipelines = [_steps(pipeline) for pipeline in pipelines]  # iterators are read once, here
    _check_names(pipelines)
    work = _Work(on_advance, sum(len(_steps(p)) for p in pipelines), repeats)
    say = on_progress or (lambda message: None)

    def progress(message: str) -> None:
        say(message)
        work.step(message)

    config = config or load_config()
    study_id = uuid.uuid4().hex
    baseline = Outcome("baseline", (), "measured", candidate=Candidate.baseline(task))
    outcomes = [baseline, *_build_all(task, pipelines, progress)]
    for outcome in outcomes:
        if outcome.candidate is not None:
            progress(f"evaluating {outcome.name}")
            _evaluate(task, outcome)
    if baseline.status != "measured":
        raise GreenAIError(f"the baseline model cannot be evaluated: {baseline.reason}")
    ready = [o for o in outcomes if o.status == "measured" and o.candidate is not None]
    say(f"measuring {len(ready)} candidates, {repeats} interleaved rounds")
    work.measuring(len(ready))
    tracker = Tracker(name, tags={"study": study_id, "kind": "optimize"}, config=config, store=store)
    measurements, failures, result = measure(
        [o.candidate for o in ready if o.candidate is not None],
        task.inputs,
        tracker,
        repeats=repeats,
        min_repeat_s=min_repeat_s,
        on_step=work.step,
    )
    work.finish()
    for o in ready:
        if o.name in failures:
            o.status, o.reason, o.candidate = "failed", failures[o.name], None
        else:
            o.measurement = measurements[o.name]
    if baseline.measurement is None:
        raise GreenAIError(f"the baseline model cannot be measured: {baseline.reason}")
    study = Study(
        study_id,
        result.run_id if store else None,
        task.quality_name,
        quality_bound(baseline.quality or 0.0, max_quality_drop, min_quality),
        outcomes,
        ledger_path=result.ledger_path,
        coload=result.snapshot.coload,
    )
    _recommend(study)
    _judge_coload(study)
    if store and result.ledger_path is not None:
        with Ledger(result.ledger_path) as ledger:
            record_candidates(ledger, [_row(study, o) for o in outcomes])
    return study


class _Work:
    """Steps of a search for `on_advance`: builds, evaluations, then (repeats + 1) measurement
    steps per candidate; the total is a bound until the candidates are known."""

    def __init__(self, on_advance: Callable[[float, float, str], None] | None, builds: int, repeats: int) -> None:
        self.on_advance, self.repeats = on_advance, repeats
        self.done = 0
        # builds, evaluations (the baseline's too), then the measurement of every candidate
        self.total = builds + (builds + 1) + (builds + 1) * (repeats + 1)

    def step(self, what: str) -> None:
        if self.on_advance is not None:
            self.on_advance(min(self.done, self.total), self.total, what)
        self.done += 1

    def measuring(self, candidates: int) -> None:
        self.total = self.done + candidates * (self.repeats + 1)

    def finish(self) -> None:
        self.done = self.total
        if self.on_advance is not None:
            self.on_advance(self.total, self.total, "done")


def _check_arguments(
    task: OptimizeTask, max_quality_drop: float | None, min_quality: float | None, repeats: int
) -> None:
    """Bad input is a ConfigError before any work starts."""
    if not task.inputs:
        raise ConfigError("the task has no input batches to measure energy on (OptimizeTask.inputs is empty)")
    if max_quality_drop is not None and not (math.isfinite(max_quality_drop) and max_quality_drop >= 0):
        raise ConfigError(f"max_quality_drop must be a finite number >= 0, got {max_quality_drop}")
    if min_quality is not None and not math.isfinite(min_quality):
        raise ConfigError(f"min_quality must be a finite number, got {min_quality}")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")


def _steps(pipeline: Pipeline) -> tuple[Transform, ...]:
    """A pipeline as its sequence of transforms (a lone transform is a pipeline of one)."""
    if isinstance(pipeline, Transform):  # callable with a name
        return (pipeline,)
    return tuple(pipeline)


def _same_transform(a: Transform, b: Transform) -> bool:
    """Whether two transforms do the same thing: one object, equal, or same class and state."""
    if a is b:
        return True
    try:
        return bool(a == b) or (type(a) is type(b) and vars(a) == vars(b))
    except Exception:  # state that cannot be compared (tensors, ...) is not proven equal
        return False


def _check_names(pipelines: Sequence[Pipeline]) -> None:
    """Candidates are identified by name (results, phases, ledger rows): refuse names that
    would collide or that a phase cannot carry, before anything is built."""
    seen: dict[str, Transform] = {}
    for pipeline in pipelines:
        for transform in _steps(pipeline):
            name = transform.name
            if not name or "+" in name or "/" in name or name == "baseline":
                raise ConfigError(
                    f"transform name {name!r} cannot name a candidate: it must be non-empty, "
                    "contain no '+' or '/', and not be 'baseline'"
                )
            if name in seen and not _same_transform(seen[name], transform):
                raise ConfigError(
                    f"two different transforms are both named {name!r} "
                    f"({seen[name]!r} and {transform!r}); give each a distinct name"
                )
            seen.setdefault(name, transform)


def _build_all(task: OptimizeTask, pipelines: Sequence[Pipeline], progress: Callable[[str], None]) -> list[Outcome]:
    """Build every pipeline, reusing shared prefixes; one outcome per distinct name."""
    built: dict[tuple[str, ...], Outcome] = {}
    base = Candidate.baseline(task)
    for pipeline in pipelines:
        steps = _steps(pipeline)
        current: Candidate | None = base
        names: tuple[str, ...] = ()
        for transform in steps:
            names = (*names, transform.name)
            if names in built:
                current = built[names].candidate
                continue
            outcome = Outcome("+".join(names), names, "measured")
            if current is None:
                outcome.status, outcome.reason = "skipped", f"an earlier step ({names[-2]}) did not apply"
            else:
                progress(f"building {outcome.name}")
                outcome.candidate = _apply(transform, current, task, outcome)
            built[names] = outcome
            current = outcome.candidate
    return list(built.values())


def _apply(transform: Transform, current: Candidate, task: OptimizeTask, outcome: Outcome) -> Candidate | None:
    """Apply one transform, recording a skip or failure (and the build time) on `outcome`."""
    t0 = time.perf_counter()
    try:
        candidate = transform(current, task)
    except TransformSkipped as e:
        outcome.status, outcome.reason = "skipped", str(e)
        return None
    except Exception as e:  # one broken transform must not end the search
        log.debug("transform %s failed", outcome.name, exc_info=True)
        outcome.status, outcome.reason = "failed", f"{type(e).__name__}: {e}"
        return None
    finally:
        outcome.build_s = time.perf_counter() - t0
    outcome.notes = candidate.notes
    return candidate


def _evaluate(task: OptimizeTask, outcome: Outcome) -> None:
    """Quality, parameter counts and size of a built candidate; a failure fails it alone."""
    candidate = outcome.candidate
    assert candidate is not None
    try:
        candidate.model.eval()
        run_inputs(candidate, inputs_for(candidate, task.inputs)[:1])  # fails fast if the model cannot run the inputs
        quality = float(task.evaluate(candidate.model))
        candidate.model.eval()  # an evaluation that trains or calls .train() must not change what is measured
        if not math.isfinite(quality):
            raise ValueError(f"quality is {quality}, not a finite number")
        outcome.quality = quality
    except Exception as e:
        outcome.status, outcome.reason = "failed", f"evaluation raised {type(e).__name__}: {e}"
        outcome.candidate = None
        return
    outcome.parameters, outcome.nonzero_parameters = count_parameters(candidate.model)
    try:
        outcome.size_bytes = model_size_bytes(candidate.model)
    except Exception:  # some wrapped or scripted modules do not serialise; size is a proxy
        outcome.size_bytes = None


def _recommend(study: Study) -> None:
    """Set the Pareto front, the cheapest candidate within the bound, and whether its saving
    is beyond the measurement spread. Energies that are not finite (a phase with no duration)
    cannot be ranked and are left out."""
    points = [
        Point(o.name, o.energy_j, o.quality)
        for o in study.outcomes
        if o.energy_j is not None and math.isfinite(o.energy_j) and o.quality is not None
    ]
    study.front = [p.name for p in pareto_front(points)]
    _judge_sparsity(study)
    choice = cheapest_within(points, study.bound)
    if choice is None:
        return
    study.recommended = study.outcome(choice.name)
    base, rec = study.baseline.measurement, study.recommended.measurement
    if base is not None and rec is not None and study.recommended is not study.baseline:
        study.greener = saving_is_real(
            base.energy_per_sample_j, rec.energy_per_sample_j, base.rel_spread, rec.rel_spread
        )


def _judge_coload(study: Study) -> None:
    """Say, on each candidate measured on a busy machine and on the recommendation, that its
    figures rest on disturbed repeats; never call such a saving real (`greener`)."""
    for o in study.outcomes:
        m = o.measurement
        if m is None or not m.disturbed:
            continue
        o.notes = (
            *o.notes,
            f"measured on a busy machine: other processes kept {m.coload_cores or 0:.2f} CPUs busy (median "
            f"of its repeats; threshold {_threshold(study):g}), {m.disturbed_repeats} repeat(s) disturbed even "
            "after re-measuring: its ratio says as much about the machine as about the model",
        )
    rec = study.recommended
    if rec is None or rec.measurement is None or not study.disturbed(rec.name):
        return
    study.greener = False
    which = "the baseline" if rec is study.baseline else rec.name
    if rec is not study.baseline and study.baseline.measurement and study.baseline.measurement.disturbed:
        which = f"{rec.name} and the baseline"
    study.caveat = (
        f"{which} measured on a busy machine"
        + (f" ({study.coload.describe()})" if study.coload is not None else "")
        + ": run again when the machine is quiet before acting on it"
    )


def _threshold(study: Study) -> float:
    return study.coload.threshold_cores if study.coload is not None else DISTURBED_CORES


SPARSE = 0.9  # a candidate with fewer than this share of non-zero weights is "sparse"


def _judge_sparsity(study: Study) -> None:
    """Say, from the measurement, when zeroed weights bought no energy: a sparse candidate
    whose energy per sample is not below the baseline's beyond the repeats' spread."""
    base = study.baseline.measurement
    if base is None:
        return
    for o in study.outcomes:
        m = o.measurement
        if m is None or not o.parameters or o.nonzero_parameters is None or o is study.baseline:
            continue
        zeros = 1 - o.nonzero_parameters / o.parameters
        if o.nonzero_parameters < SPARSE * o.parameters and not saving_is_real(
            base.energy_per_sample_j, m.energy_per_sample_j, base.rel_spread, m.rel_spread
        ):
            o.notes = (
                *o.notes,
                f"measured: {zeros:.0%} of the weights are zero, yet the energy per "
                "sample did not go down beyond the measurement spread (dense kernels)",
            )


def _row(study: Study, o: Outcome) -> CandidateRow:
    """The ledger row of one outcome; energy and its provenance only where it was measured."""
    m = o.measurement
    return CandidateRow(
        study_id=study.study_id,
        name=o.name,
        status=o.status,
        transforms=o.transforms,
        reason=o.reason,
        run_id=study.run_id,  # every row, skipped ones too, links to the study's run
        energy_per_sample_j=m.energy_per_sample_j if m else None,
        rel_uncertainty=m.rel_uncertainty if m else None,
        provenance=m.provenance.value if m else "",
        time_per_sample_s=m.time_per_sample_s if m else None,
        quality=o.quality,
        quality_name=study.quality_name,
        size_bytes=o.size_bytes,
        parameters=o.parameters,
        nonzero_parameters=o.nonzero_parameters,
        notes=o.notes,
    )
