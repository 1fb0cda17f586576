"""Replay a job trace against a carbon trace under a policy: a discrete-event simulation.

Decisions happen at every step of the carbon trace (its median step, e.g. 30 min), at every
arrival, at every completion, and at the latest start of every waiting job. Between two
decisions the set of running jobs is fixed. A job draws constant power (its energy on its
node over its duration); its carbon is that power times the exact integral of the trace's
step function over the intervals it ran: carbon_g = P_w x ∫ I dt / J_PER_KWH (I in gCO2e/kWh).
Energy figures here are *estimated* (predicted job energy), never measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from greenai.carbon.grid_forecast import IntensitySeries
from greenai.errors import CarbonDataError, ConfigError
from greenai.schedule.jobs import Job
from greenai.schedule.policies import EPS_S, Candidate, Node, Policy
from greenai.units import J_PER_KWH

MAX_JOB_POWER_W = 1e9  # a job drawing more than a gigawatt is a typo

DEFAULT_NODE = Node("local")


@dataclass(frozen=True)
class JobRecord:
    """What happened to one job."""

    job_id: str
    arrival_s: float
    start_s: float
    end_s: float
    node: str
    energy_j: float
    carbon_g: float
    wait_s: float
    deadline_s: float
    deadline_met: bool
    pauses: int


@dataclass(frozen=True)
class Summary:
    """Totals of one policy's run."""

    policy: str
    jobs: int
    energy_j: float
    carbon_g: float
    mean_wait_s: float
    max_wait_s: float
    deadline_misses: int
    provenance: str = "estimated"


@dataclass(frozen=True)
class SimulationResult:
    summary: Summary
    records: tuple[JobRecord, ...]


@dataclass
class _State:
    cand: Candidate
    first_start_s: float | None = None
    end_s: float | None = None
    segments: list[list[float]] = field(default_factory=list)


class _Cluster:
    """The ``ClusterView`` policies see: nodes and the energy used so far."""

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.nodes = nodes
        self.down: frozenset[str] = frozenset()  # simulated nodes never vanish
        self._by_name = {n.name: n for n in nodes}
        self._log: list[tuple[float, float, float]] = []  # (t0, t1, cluster power W)

    def node(self, name: str | None) -> Node:
        if name is None:
            return self.nodes[0]
        if name not in self._by_name:
            raise ConfigError(f"unknown node {name!r}; nodes: {', '.join(self._by_name)}")
        return self._by_name[name]

    def energy_used_j(self, t0_s: float, t1_s: float) -> float:
        total = 0.0
        for a, b, p in reversed(self._log):
            if b <= t0_s:
                break
            total += p * max(0.0, min(b, t1_s) - max(a, t0_s))
        return total


def job_energy_j(job: Job, power_w: float) -> float:
    """The job's predicted energy, or its duration at ``power_w``."""
    assert job.predicted_duration_s is not None
    return job.predicted_energy_j if job.predicted_energy_j is not None else job.predicted_duration_s * power_w


def simulate(
    jobs: Sequence[Job],
    trace: IntensitySeries,
    policy: Policy,
    *,
    power_w: float = 1000.0,
    nodes: Sequence[Node] | None = None,
    step_s: float | None = None,
    on_advance: Callable[[float, float, str], None] | None = None,
) -> SimulationResult:
    """Run ``jobs`` under ``policy`` against the carbon ``trace``; see the module docstring.

    ``power_w`` gives the energy of jobs without a predicted energy; ``nodes`` default to the
    policy's own (placement) or one unlimited node ``local``. ``on_advance(finished, jobs,
    policy)`` hears the progress (at every decision: keep it cheap)."""
    if not jobs:
        raise ConfigError("no jobs to simulate")
    if not (0 < power_w <= MAX_JOB_POWER_W and math.isfinite(power_w)):
        raise ConfigError(f"power_w must be a finite number > 0 and <= {MAX_JOB_POWER_W:g} W, got {power_w!r}")
    for job in jobs:
        if job.predicted_duration_s is None or not job.predicted_duration_s > 0:
            raise ConfigError(f"job {job.job_id!r} has no duration > 0 to simulate")
    node_list = tuple(nodes or getattr(policy, "nodes", None) or (DEFAULT_NODE,))
    cluster = _Cluster(node_list)
    step = step_s or trace.step_s
    order = sorted(jobs, key=lambda j: j.arrival_s)
    if order[0].arrival_s < trace.start_s:
        raise CarbonDataError(f"the first job arrives before trace {trace.label} starts")
    states = {
        j.job_id: _State(
            Candidate(j, j.predicted_duration_s or 0.0, job_energy_j(j, power_w), j.predicted_duration_s or 0.0)
        )
        for j in order
    }
    if len(states) != len(order):
        raise ConfigError("job ids must be unique")
    active: list[_State] = []
    nxt = 0
    now = order[0].arrival_s
    while nxt < len(order) or active:
        while nxt < len(order) and order[nxt].arrival_s <= now + EPS_S:
            active.append(states[order[nxt].job_id])
            nxt += 1
        if not active:
            now = order[nxt].arrival_s
            continue
        if now >= trace.end_s:
            raise CarbonDataError(
                f"{len(active) + len(order) - nxt} job(s) still unfinished when "
                f"trace {trace.label} ends: use a longer trace"
            )
        running = _decide(policy, now, cluster, active)
        # next event: a trace step, an arrival, a completion, a latest start
        events = [trace.start_s + (np.floor((now - trace.start_s) / step + 1e-9) + 1) * step]
        if nxt < len(order):
            events.append(order[nxt].arrival_s)
        events += [now + s.cand.remaining_s for s in running]
        ids = {s.cand.job_id for s in running}
        events += [
            s.cand.latest_start_s for s in active if s.cand.job_id not in ids and s.cand.latest_start_s > now + EPS_S
        ]
        later = now + max(min(events) - now, EPS_S * 10)
        _advance(running, now, later, cluster)
        active = [s for s in active if s.end_s is None]
        now = later
        if on_advance is not None:
            on_advance(nxt - len(active), len(order), policy.name)
    return _result(policy.name, order, states, cluster, trace)


def _decide(policy: Policy, now: float, cluster: _Cluster, active: list[_State]) -> list[_State]:
    by_id = {s.cand.job_id: s for s in active}
    chosen = policy.select(now, cluster, [s.cand for s in active])
    running: dict[str, _State] = {}
    used: dict[str, int] = {}
    for c in chosen:
        if c.job_id not in by_id:
            raise ConfigError(f"policy {policy.name} chose job {c.job_id!r}, which is not active")
        s = by_id[c.job_id]
        if s.cand.node is not None and c.node not in (None, s.cand.node):
            c = Candidate(c.job, c.duration_s, c.energy_j, c.remaining_s, c.running, s.cand.node)
        s.cand = c
        running[c.job_id] = s
    for s in active:  # a running job that cannot be interrupted keeps running
        if s.cand.pinned and s.cand.job_id not in running:
            running[s.cand.job_id] = s
    placed = []
    # jobs already on a node (pinned ones must stay) take their slots before new ones are placed
    for s in sorted(running.values(), key=lambda s: (not s.cand.pinned, s.cand.node is None)):
        if s.cand.node is None:  # default placement: first node with a free slot
            node = next((n for n in cluster.nodes if n.slots is None or used.get(n.name, 0) < n.slots), None)
            if node is None:
                continue
            s.cand = Candidate(
                s.cand.job, s.cand.duration_s, s.cand.energy_j, s.cand.remaining_s, s.cand.running, node.name
            )
        used[s.cand.node or ""] = used.get(s.cand.node or "", 0) + 1
        placed.append(s)
    on = {id(s) for s in placed}
    for s in active:
        is_on = id(s) in on
        if s.cand.running != is_on:
            c = s.cand
            s.cand = Candidate(c.job, c.duration_s, c.energy_j, c.remaining_s, is_on, c.node)
    return placed


def _advance(running: list[_State], now: float, later: float, cluster: _Cluster) -> None:
    total_w = 0.0
    for s in running:
        c = s.cand
        node = cluster.node(c.node)
        total_w += node.energy_for(c.job_id, c.energy_j) / c.duration_s
        if s.first_start_s is None:
            s.first_start_s = now
        work = min(later - now, c.remaining_s)
        if s.segments and abs(s.segments[-1][1] - now) < EPS_S:
            s.segments[-1][1] = now + work
        else:
            s.segments.append([now, now + work])
        remaining = c.remaining_s - work
        if remaining <= EPS_S:
            remaining, s.end_s = 0.0, now + work
        s.cand = Candidate(c.job, c.duration_s, c.energy_j, remaining, remaining > 0, c.node)
    cluster._log.append((now, later, total_w))


def _result(
    name: str, order: list[Job], states: dict[str, _State], cluster: _Cluster, trace: IntensitySeries
) -> SimulationResult:
    seg_owner, seg0, seg1 = [], [], []
    for i, job in enumerate(order):
        for a, b in states[job.job_id].segments:
            seg_owner.append(i)
            seg0.append(a)
            seg1.append(b)
    integral = trace.integral(np.array(seg0), np.array(seg1))
    per_job = np.bincount(np.array(seg_owner), weights=integral, minlength=len(order))
    records = []
    for i, job in enumerate(order):
        s = states[job.job_id]
        c = s.cand
        assert s.first_start_s is not None and s.end_s is not None
        energy = cluster.node(c.node).energy_for(job.job_id, c.energy_j)
        power = energy / c.duration_s
        deadline = c.deadline_s
        records.append(
            JobRecord(
                job_id=job.job_id,
                arrival_s=job.arrival_s,
                start_s=s.first_start_s,
                end_s=s.end_s,
                node=c.node or "",
                energy_j=energy,
                carbon_g=power * per_job[i] / J_PER_KWH,
                wait_s=s.first_start_s - job.arrival_s,
                deadline_s=deadline,
                deadline_met=s.end_s <= deadline + 1e-3,
                pauses=len(s.segments) - 1,
            )
        )
    waits = np.array([r.wait_s for r in records])
    summary = Summary(
        policy=name,
        jobs=len(records),
        energy_j=float(sum(r.energy_j for r in records)),
        carbon_g=float(sum(r.carbon_g for r in records)),
        mean_wait_s=float(waits.mean()),
        max_wait_s=float(waits.max()),
        deadline_misses=sum(not r.deadline_met for r in records),
    )
    return SimulationResult(summary, tuple(records))


@dataclass(frozen=True)
class Comparison:
    """A policy's totals against FIFO and the oracle (when both were simulated)."""

    summary: Summary
    saving_vs_fifo_g: float | None
    saving_vs_fifo_pct: float | None
    share_of_oracle_saving: float | None


def compare(results: Sequence[SimulationResult]) -> list[Comparison]:
    """Carbon saved against the ``fifo`` run and the share of the ``oracle``'s saving."""
    by = {r.summary.policy: r.summary for r in results}
    fifo, oracle = by.get("fifo"), by.get("oracle")
    out = []
    for r in results:
        s = r.summary
        saved = fifo.carbon_g - s.carbon_g if fifo else None
        pct = saved / fifo.carbon_g * 100 if fifo and fifo.carbon_g > 0 and saved is not None else None
        share = None
        if fifo and oracle and saved is not None and fifo.carbon_g - oracle.carbon_g > 1e-9:
            share = saved / (fifo.carbon_g - oracle.carbon_g)
        out.append(Comparison(s, saved, pct, share))
    return out
