"""Run a batch of jobs through an executor and record every job in the ledger.

Each job's row in `schedule_jobs` goes pending (deferred while a policy holds it back) ->
running -> completed or failed, with its energy, run id, node and scheduling overhead. A
job is submitted only when the executor has a free slot (`executor.capacity()`), so
`scheduling_overhead_s` — the time from submission to the moment the job's own work starts
under its tracker, both measured — is the executor's dispatch cost (process or worker
start-up, shipping the task, starting the tracker), not time spent queueing behind other
jobs. On Ray, a job whose custom resources are busy still waits inside Ray, and that wait
is counted.

A `policy` (greenai.schedule.policies: `select(now_s, cluster, candidates)`) is asked at
every decision — a job finished, or `decision_interval_s` passed — which of the arrived jobs
start now. Jobs in flight are offered as running; a policy may drop an interruptible one,
which is then paused if the executor can (the local executor: SIGSTOP/SIGCONT, see
`job_control`; Ray cannot, so there every running job is pinned and goes on) and offered
again, with its remaining time, at the next decisions until the policy resumes it. A paused
job does not hold one of the executor's `capacity()` slots. `Job.arrival_s` is read as seconds after the batch starts. Policies act
on predictions: a job without `predicted_duration_s` is offered as lasting
`UNKNOWN_DURATION_S`, and without `predicted_energy_j` as drawing `assumed_power_w`. The node
a placement policy picks is passed to the executor, which runs the job there or refuses it
(Ray: node affinity, not soft; local: this machine only); without one, the executor places.

A failing job never stops the batch; an interrupted batch marks its unfinished jobs failed.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from greenai.errors import GreenAIError
from greenai.ledger.jobs import (
    JobRow,
    JobStatus,
    add_jobs,
    finish_job,
    mark_deferred,
    mark_paused,
    mark_resumed,
    mark_running,
)
from greenai.ledger.store import Ledger
from greenai.meters.base import Provenance
from greenai.schedule.executor import Executor, JobHandle, JobOutcome, PausingExecutor
from greenai.schedule.jobs import Job

if TYPE_CHECKING:  # policies import numpy: loaded only when a policy is used
    from greenai.schedule.policies import Candidate, Node, Policy

DECISION_INTERVAL_S = 5.0
UNKNOWN_DURATION_S = 60.0
MIN_REMAINING_S = 1.0
MAX_RESIDENT_PER_SLOT = 2  # running + paused jobs per executor slot (paused ones keep memory)
EPS_S = 1e-6
ASSUMED_POWER_W = 100.0


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    jobs: int
    completed: int
    failed: int
    energy_j: float  # sum over jobs that have a tracked run, failed ones included
    provenance: str  # weakest provenance among those jobs ("" when none has energy)
    carbon_g: float
    wall_s: float  # from the start of the batch to the last outcome
    overhead_median_s: float | None
    overhead_p95_s: float | None
    outcomes: tuple[JobOutcome, ...]  # in the order of the jobs given
    overheads_s: tuple[float, ...]  # per job, in the order of `outcomes` (NaN if unknown)
    pauses: tuple[int, ...] = ()  # per job, in the order of `outcomes`: times it was paused


def run_batch(
    jobs: Sequence[Job],
    executor: Executor,
    ledger_path: Path,
    batch_id: str | None = None,
    policy: Policy | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    decision_interval_s: float = DECISION_INTERVAL_S,
    assumed_power_w: float = ASSUMED_POWER_W,
    on_event: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Run `jobs` through `executor`, tracking each into `ledger_path`; return the summary.
    `on_outcome` is called as each job finishes (progress display), `on_event` with a
    message when something the user should know happens (a placement node vanished, a job
    held back by the policy and why: "job a deferred until 14:30 (in 42 min; forecast 120
    gCO2e/kWh over its run, 310 if started now)", a deferred job starting)."""
    if not jobs:
        raise GreenAIError("the batch has no jobs")
    ids = [job.job_id for job in jobs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise GreenAIError(f"job id {dup!r} appears more than once in the batch")
    if not decision_interval_s > 0:
        raise GreenAIError(f"decision_interval_s must be > 0 (got {decision_interval_s!r})")
    check_job = getattr(executor, "check_job", None)  # an executor that can tell up front (local)
    if check_job is not None:
        for job in jobs:
            check_job(job)  # a job this executor can never run refuses the batch before it starts
    batch_id = batch_id or uuid.uuid4().hex[:12]
    start = time.time()
    arrived = [replace(job, arrival_s=start + job.arrival_s) for job in jobs]
    with Ledger(Path(ledger_path)) as ledger:
        add_jobs(
            ledger,
            [
                JobRow(
                    batch_id,
                    job.job_id,
                    job.name or job.job_id,
                    JobStatus.PENDING,
                    predicted_energy_j=job.predicted_energy_j,
                    predicted_duration_s=job.predicted_duration_s,
                    arrived_at=job.arrival_s,
                    job_key=job.key,
                )
                for job in arrived
            ],
        )
        runner = _BatchRunner(
            batch_id,
            executor,
            ledger,
            Path(ledger_path),
            policy,
            on_outcome,
            decision_interval_s,
            assumed_power_w,
            on_event,
        )
        runner.run(arrived)
    outcomes = tuple(runner.outcomes[i] for i in ids)
    overheads = tuple(runner.overheads.get(i, math.nan) for i in ids)
    pauses = tuple(runner.pauses.get(i, 0) for i in ids)
    return summarize(batch_id, outcomes, overheads, wall_s=time.time() - start, pauses=pauses)


class _BatchRunner:
    def __init__(
        self,
        batch_id: str,
        executor: Executor,
        ledger: Ledger,
        ledger_path: Path,
        policy: Policy | None,
        on_outcome: Callable[[JobOutcome], None] | None,
        decision_interval_s: float,
        assumed_power_w: float,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.batch_id, self.executor, self.ledger = batch_id, executor, ledger
        self.on_event = on_event
        self.ledger_path, self.policy, self.on_outcome = ledger_path, policy, on_outcome
        self.interval_s, self.power_w = decision_interval_s, assumed_power_w
        self.can_pause = bool(getattr(executor, "supports_pause", False))
        self.outcomes: dict[str, JobOutcome] = {}
        self.overheads: dict[str, float] = {}
        self._deferred: set[str] = set()
        self._deferred_at: dict[str, float] = {}  # job id -> when a policy first held it back
        self._placed: dict[str, str] = {}  # job id -> the node a placement policy chose
        self._paused: set[str] = set()
        self.pauses: dict[str, int] = {}  # job id -> times paused
        self._ran_s: dict[str, float] = {}  # run time before the current stretch
        self._since: dict[str, float] = {}  # start of the current stretch (running jobs)
        self._view = _ClusterView(policy, self.outcomes)

    def run(self, waiting: list[Job]) -> None:
        in_flight: dict[str, JobHandle] = {}
        slots = max(1, int(self.executor.capacity()))
        try:
            while waiting or in_flight:
                if waiting and self._view.all_down():
                    self._fail_all(
                        waiting,
                        "every node of the placement policy is gone "
                        f"({', '.join(sorted(self._view.down))}); restart them or place anew",
                    )
                    continue
                now = time.time()
                starts, to_pause = self._decide(now, waiting, in_flight)
                for job_id in to_pause:
                    self._pause(in_flight[job_id])
                running = len(in_flight) - len(self._paused)
                for job, node in starts:
                    paused = job.job_id in self._paused
                    if not paused and len(in_flight) >= MAX_RESIDENT_PER_SLOT * slots:
                        continue  # paused jobs hold their memory: bound how many are resident
                    if running >= slots and not self._make_room(job, now, in_flight):
                        continue
                    if paused:
                        self._resume(in_flight[job.job_id])
                    else:
                        waiting.remove(job)
                        handle = self._submit(job, node)
                        if handle is not None:
                            in_flight[job.job_id] = handle
                        elif job.job_id not in self.outcomes:  # its node vanished: place it anew
                            waiting.append(job)
                    running = len(in_flight) - len(self._paused)
                timeout = self._until_next_decision(waiting, in_flight)
                if not in_flight:
                    if timeout is not None:
                        time.sleep(timeout)
                    continue
                for handle, outcome in self.executor.wait(list(in_flight.values()), timeout):
                    del in_flight[handle.job.job_id]
                    self._paused.discard(handle.job.job_id)
                    self._record(handle.submitted_at, outcome)
        except BaseException:
            unfinished = [(h.submitted_at, h.job) for h in in_flight.values()] + [(None, j) for j in waiting]
            for submitted, job in unfinished:
                self._record(
                    submitted,
                    JobOutcome.failed(job.job_id, "batch interrupted before the job finished"),
                )
            raise

    def _until_next_decision(self, waiting: list[Job], in_flight: dict[str, JobHandle]) -> float | None:
        """Seconds to wait before deciding again: the next arrival, a held-back or paused
        job's latest start, or the decision interval while the policy may still start or
        pause something (None: only a finishing job can change anything)."""
        now = time.time()
        pausable = [h.job for h in in_flight.values() if self.can_pause and h.job.interruptible]
        if not waiting and not (pausable and self.policy is not None):
            return None
        # the next arrival, or the next latest start of a job held back (so none starts late)
        due = [j.arrival_s if j.arrival_s > now else j.arrival_s + j.slack_s for j in waiting]
        due += [self._candidate(j, running=False, now=now).latest_start_s for j in pausable if j.job_id in self._paused]
        upcoming = [t - now for t in due if t > now]
        return min([self.interval_s, *upcoming])

    def _decide(
        self,
        now: float,
        waiting: list[Job],
        in_flight: dict[str, JobHandle],
    ) -> tuple[list[tuple[Job, str | None]], list[str]]:
        """What to start (or resume) now, in order, with the node a placement policy chose
        (None: the executor places it), and which running jobs to pause. Without a policy:
        every arrived job starts, nothing pauses. With one, arrived jobs it holds back are
        marked deferred, and running interruptible jobs it does not keep are paused (when
        the executor can pause; otherwise they are offered as pinned)."""
        arrived = [j for j in waiting if j.arrival_s <= now]
        if self.policy is None:
            return [(j, None) for j in arrived], []
        if not arrived and not any(self._pausable(h.job) for h in in_flight.values()):
            return [], []
        offered = [self._candidate(j, running=False, now=now) for j in arrived]
        offered += [
            self._candidate(h.job, running=job_id not in self._paused, now=now, node=self._placed.get(job_id))
            for job_id, h in in_flight.items()
        ]
        selected = self.policy.select(now, self._view, offered)
        kept = {c.job_id for c in selected}
        by_id = {j.job_id: j for j in arrived} | {i: in_flight[i].job for i in self._paused}
        starts = [(by_id[c.job_id], c.node) for c in selected if not c.running and c.job_id in by_id]
        # paused jobs first, most urgent first: they hold memory, and may not wait for ever
        starts.sort(
            key=lambda s: (
                s[0].job_id not in self._paused,
                self._latest_start(s[0], now) if s[0].job_id in self._paused else 0.0,
            )
        )
        to_pause = [
            i for i, h in in_flight.items() if i not in kept and i not in self._paused and self._pausable(h.job)
        ]
        held = {c.job_id: c for c in offered if c.job_id not in kept}
        for job in arrived:
            if job.job_id not in kept and job.job_id not in self._deferred:
                self._deferred.add(job.job_id)
                mark_deferred(self.ledger, self.batch_id, job.job_id)
                why = self._why(now, held[job.job_id])
                if why is not None:  # a policy that waits for something (not a queue for a node)
                    self._deferred_at[job.job_id] = now
                    self._say(f"job {job.job_id} deferred {why}")
        return starts, to_pause

    def _why(self, now: float, candidate: Candidate) -> str | None:
        from greenai.schedule.policies import why_deferred

        assert self.policy is not None
        try:
            return why_deferred(self.policy, now, candidate)
        except Exception as e:  # noqa: BLE001 — saying why must never stop the batch
            return f"by the {self.policy.name} policy ({type(e).__name__}: {e})"

    def _say(self, message: str) -> None:
        if self.on_event is not None:
            self.on_event(message)

    def _latest_start(self, job: Job, now: float) -> float:
        return self._candidate(job, running=False, now=now).latest_start_s

    def _make_room(self, job: Job, now: float, in_flight: dict[str, JobHandle]) -> bool:
        """All slots are taken: if `job` has reached its latest start, pause the running
        interruptible job whose own latest start is furthest away (and not within the next
        decision) so `job` can run; True if a slot was freed."""
        if self.policy is None or self._latest_start(job, now) > now + EPS_S:
            return False
        others = [
            h
            for i, h in in_flight.items()
            if i not in self._paused
            and i != job.job_id
            and self._pausable(h.job)
            and self._latest_start(h.job, now) > now + self.interval_s
        ]
        if not others:
            return False
        self._pause(max(others, key=lambda h: self._latest_start(h.job, now)))
        return True

    def _pausable(self, job: Job) -> bool:
        return self.can_pause and job.interruptible

    def _candidate(self, job: Job, running: bool, now: float, node: str | None = None) -> Candidate:
        """The job as a policy sees it: its remaining time is the prediction minus the time
        it has run so far (at least a second, for a job outliving its prediction)."""
        from greenai.schedule.policies import Candidate

        duration = job.predicted_duration_s or UNKNOWN_DURATION_S
        energy = job.predicted_energy_j if job.predicted_energy_j is not None else duration * self.power_w
        ran = self._ran_s.get(job.job_id, 0.0)
        if job.job_id in self._since:
            ran += now - self._since[job.job_id]
        remaining = max(duration - ran, MIN_REMAINING_S)
        if running and not self._pausable(job):
            job = replace(job, interruptible=False)  # the executor cannot pause it: it must go on
        return Candidate(job, duration, energy, remaining, running=running, node=node)

    def _pause(self, handle: JobHandle) -> None:
        job_id = handle.job.job_id
        cast(PausingExecutor, self.executor).pause(handle)  # only when can_pause
        self._paused.add(job_id)
        self.pauses[job_id] = self.pauses.get(job_id, 0) + 1
        self._ran_s[job_id] = self._ran_s.get(job_id, 0.0) + time.time() - self._since.pop(job_id)
        mark_paused(self.ledger, self.batch_id, job_id, self.pauses[job_id])

    def _resume(self, handle: JobHandle) -> None:
        job_id = handle.job.job_id
        cast(PausingExecutor, self.executor).resume(handle)
        self._paused.discard(job_id)
        self._since[job_id] = time.time()
        mark_resumed(self.ledger, self.batch_id, job_id)

    def _fail_all(self, waiting: list[Job], error: str) -> None:
        for job in waiting:
            self._record(None, JobOutcome.failed(job.job_id, error))
        waiting.clear()

    def _vanished(self, node: str) -> bool:
        """The executor says `node` is not an alive node (a Ray node that died); an error
        reaching the cluster is not taken for a dead node."""
        node_id = getattr(self.executor, "node_id", None)
        if node_id is None:
            return False
        try:
            node_id(node)
        except GreenAIError:  # the executor's own "no such alive node"
            return True
        except Exception:  # noqa: BLE001 — a transient failure: the job fails, the node stays
            return False
        return False

    def _submit(self, job: Job, node: str | None) -> JobHandle | None:
        """The job handed to the executor; None if it failed (recorded), or if the node the
        policy chose vanished (not recorded: the node is marked down, the job placed anew)."""
        tags = {"batch_id": self.batch_id}
        submitted = time.time()
        try:
            handle = self.executor.submit(
                job, ledger_path=self.ledger_path, tags=tags, **({"node": node} if node is not None else {})
            )
        except Exception as e:  # noqa: BLE001 — this job cannot run here; the others go on
            error = str(e) if isinstance(e, GreenAIError) else f"could not submit: {type(e).__name__}: {e}"
            if node is not None and self._vanished(node):
                self._view.mark_down(node)
                if self.on_event is not None:
                    self.on_event(f"node {node!r} is gone ({error}); no more jobs go there")
                return None
            self._record(submitted, JobOutcome.failed(job.job_id, error))
            return None
        if node is not None:
            self._placed[job.job_id] = node
        if job.job_id in self._deferred_at:
            self._say(f"job {job.job_id} starts after waiting {submitted - self._deferred_at.pop(job.job_id):.0f} s")
        self._since[job.job_id] = handle.submitted_at
        mark_running(self.ledger, self.batch_id, job.job_id, handle.submitted_at)
        return handle

    def _record(self, submitted_at: float | None, outcome: JobOutcome) -> None:
        overhead = None
        if submitted_at is not None and outcome.started_at is not None:
            overhead = max(0.0, outcome.started_at - submitted_at)
            self.overheads[outcome.job_id] = overhead
        self.outcomes[outcome.job_id] = outcome
        try:
            finish_job(
                self.ledger,
                JobRow(
                    self.batch_id,
                    outcome.job_id,
                    "",
                    outcome.status,
                    node=outcome.node,
                    run_id=outcome.run_id,
                    submitted_at=submitted_at,
                    started_at=outcome.started_at,
                    ended_at=outcome.ended_at,
                    duration_s=outcome.duration_s,
                    energy_j=outcome.energy_j,
                    rel_uncertainty=outcome.rel_uncertainty,
                    provenance=outcome.provenance,
                    carbon_g=outcome.carbon_g,
                    error=outcome.error,
                    scheduling_overhead_s=overhead,
                    pauses=self.pauses.get(outcome.job_id, 0),
                ),
            )
        finally:
            if self.on_outcome is not None:
                self.on_outcome(outcome)


class _ClusterView:
    """What a policy sees of a real batch: the policy's own nodes (or one node `local`), those
    that vanished, and the energy finished jobs used, spread evenly over each job's run."""

    def __init__(self, policy: Policy | None, outcomes: dict[str, JobOutcome]) -> None:
        from greenai.schedule.policies import Node

        self._placing = bool(getattr(policy, "nodes", None))
        self.nodes = tuple(getattr(policy, "nodes", None) or (Node("local"),))
        self.down: frozenset[str] = frozenset()
        self._by_name = {n.name: n for n in self.nodes}
        self._outcomes = outcomes

    def mark_down(self, name: str) -> None:
        self.down = self.down | {name}

    def all_down(self) -> bool:
        """A placement policy whose every node vanished: nothing can run any more."""
        return self._placing and all(n.name in self.down for n in self.nodes)

    def node(self, name: str | None) -> Node:
        return self._by_name.get(name or "", self.nodes[0])

    def energy_used_j(self, t0_s: float, t1_s: float) -> float:
        total = 0.0
        for o in self._outcomes.values():
            if o.energy_j is None or o.started_at is None or o.ended_at is None:
                continue
            span = max(o.ended_at - o.started_at, 1e-9)
            total += o.energy_j * max(0.0, min(o.ended_at, t1_s) - max(o.started_at, t0_s)) / span
        return total


def summarize(
    batch_id: str,
    outcomes: Sequence[JobOutcome],
    overheads_s: Sequence[float],
    wall_s: float,
    pauses: Sequence[int] = (),
) -> BatchSummary:
    """Totals of a batch: energy over every job with a tracked run, the weakest provenance
    among them, and the median and 95th percentile of the measured overheads."""
    with_energy = [o for o in outcomes if o.energy_j is not None]
    provenances = [Provenance(o.provenance) for o in with_energy if o.provenance]
    weakest = max(provenances, key=lambda p: p.rank).value if provenances else ""
    known = sorted(x for x in overheads_s if not math.isnan(x))
    return BatchSummary(
        batch_id=batch_id,
        jobs=len(outcomes),
        completed=sum(o.ok for o in outcomes),
        failed=sum(not o.ok for o in outcomes),
        energy_j=sum(o.energy_j or 0.0 for o in with_energy),
        provenance=weakest,
        carbon_g=sum(o.carbon_g or 0.0 for o in with_energy),
        wall_s=wall_s,
        overhead_median_s=percentile(known, 50.0),
        overhead_p95_s=percentile(known, 95.0),
        outcomes=tuple(outcomes),
        overheads_s=tuple(overheads_s),
        pauses=tuple(pauses) or (0,) * len(outcomes),
    )


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (NumPy's default, "linear", method 7 of
    Hyndman & Fan 1996); None for no values."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
