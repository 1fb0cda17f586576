"""Scheduling policies: at each decision time, which active jobs run (and where) until the next.

A policy is a filter over candidates. The simulator (or an executor) offers every active job
(arrived, not finished) as a ``Candidate``; the policy returns those that should run from now
to the next decision, possibly with a node. Stages compose left to right
(``compose(CarbonAwareTiming(f), EnergyAwarePlacement(nodes), PowerBudget(max_power_w=500))``):
each stage filters or annotates what the previous one kept. A running job that cannot be
interrupted is *pinned*: every stage keeps it (and the simulator enforces it).

- ``Fifo``: run every job as soon as it arrives.
- ``CarbonAwareTiming``: start a job when the forecast carbon of running it now is the lowest
  over its admissible starts ``[now, arrival + slack]`` ("Let's Wait Awhile", Wiesner et al.,
  Middleware 2021); an interruptible job runs in the cheapest forecast slots before its
  deadline. It re-plans at every decision with a fresh forecast and starts any job that has
  reached its latest start, so no deadline is missed for lack of trying.
  The ``carbon`` policy forecasts with ``SeasonalForecaster`` (seasonal profile plus a
  residual autoregression refitted daily on known data). Rules aware of forecast error (a
  margin growing with lead, least-squares Monte Carlo stopping) did worse on the 2020
  traces, and even a margin chosen in hindsight per 4 weeks gains under 1 point, so an
  online-adapted one cannot do better (``docs/benchmarks.md``): the rule stays this simple.
- ``Oracle``: ``CarbonAwareTiming`` with the true future (``OracleForecaster``).
- ``EnergyAwarePlacement``: each job on the free node with the lowest predicted joules.
- ``PowerBudget``: keeps the cluster under a power cap and/or an energy cap per window by
  deferring jobs (earliest deadline first); it never drops a job: a job above the cap on its
  own runs alone. (Deferring is the only throttle modelled: no frequency scaling.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from greenai.carbon.grid_forecast import (
    IntensityForecaster,
    OracleForecaster,
    PersistenceForecaster,
    SeasonalForecaster,
)
from greenai.carbon.step import StepFunction
from greenai.errors import ConfigError
from greenai.schedule.jobs import Job
from greenai.units import S_PER_HOUR, format_duration_rounded

if TYPE_CHECKING:
    from greenai.carbon.grid_forecast import IntensitySeries

EPS_S = 1e-6


@dataclass(frozen=True)
class Node:
    """A device or machine. Its predicted energy for a job is ``energy_j[job_id]`` when given,
    else the job's own prediction times ``energy_factor``; ``slots`` (None: unlimited) bounds
    how many jobs it runs at once."""

    name: str
    energy_factor: float = 1.0
    slots: int | None = None
    energy_j: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.energy_factor > 0 and math.isfinite(self.energy_factor)):
            raise ConfigError(
                f"node {self.name!r}: energy_factor must be a finite number > 0 (got {self.energy_factor!r})"
            )
        if self.slots is not None and self.slots < 1:
            raise ConfigError(f"node {self.name!r}: slots must be >= 1")

    def energy_for(self, job_id: str, base_energy_j: float) -> float:
        """Predicted joules of the job on this node."""
        return float(self.energy_j.get(job_id, base_energy_j * self.energy_factor))


def parse_node(text: str) -> Node:
    """A node from its textual form ``NAME[:ENERGY_FACTOR[:SLOTS]]`` (e.g. ``gpu0:0.6:4``)."""
    parts = text.split(":")
    if not parts[0] or len(parts) > 3:
        raise ConfigError(f"node {text!r}: use NAME[:ENERGY_FACTOR[:SLOTS]], e.g. gpu0:0.6:4")
    try:
        factor = float(parts[1]) if len(parts) > 1 and parts[1] else 1.0
        slots = int(parts[2]) if len(parts) > 2 and parts[2] else None
    except ValueError:
        raise ConfigError(f"node {text!r}: energy factor must be a number and slots an integer") from None
    return Node(parts[0], factor, slots)


@dataclass(frozen=True)
class Candidate:
    """An active job as a policy sees it. ``energy_j`` is its whole-job energy on the
    reference node (the job's prediction, or duration x the simulator's power)."""

    job: Job
    duration_s: float
    energy_j: float
    remaining_s: float
    running: bool = False
    node: str | None = None

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def pinned(self) -> bool:
        """Running and not interruptible: must keep running."""
        return self.running and not self.job.interruptible

    @property
    def deadline_s(self) -> float:
        return self.job.arrival_s + self.job.slack_s + self.duration_s

    @property
    def latest_start_s(self) -> float:
        """Latest time to (re)start and still finish by the deadline."""
        return self.deadline_s - self.remaining_s


class ClusterView(Protocol):
    """What the simulator (or an executor) tells a policy about the cluster."""

    nodes: tuple[Node, ...]
    down: frozenset[str]  # nodes that vanished during a real batch: no new job goes there

    def node(self, name: str | None) -> Node: ...

    def energy_used_j(self, t0_s: float, t1_s: float) -> float:
        """Energy the cluster used over ``[t0_s, t1_s]`` (past only)."""
        ...


class Policy(Protocol):
    """Decides which candidates run from ``now_s`` to the next decision."""

    name: str

    def select(self, now_s: float, cluster: ClusterView, candidates: list[Candidate]) -> list[Candidate]: ...


class Fifo:
    """Run every job at its arrival."""

    name = "fifo"

    def select(self, now_s: float, cluster: ClusterView, candidates: list[Candidate]) -> list[Candidate]:
        return list(candidates)


class CarbonAwareTiming:
    """Start (or, if interruptible, run) a job when the forecast says now is cheapest."""

    def __init__(self, forecaster: IntensityForecaster, name: str | None = None) -> None:
        self.forecaster = forecaster
        self.name = name or f"carbon({forecaster.name})"
        self._curve: tuple[float, float, StepFunction[np.ndarray]] | None = None  # (now, horizon end, curve)

    def select(self, now_s: float, cluster: ClusterView, candidates: list[Candidate]) -> list[Candidate]:
        keep = [c for c in candidates if c.pinned or c.latest_start_s <= now_s + EPS_S]
        flexible = [c for c in candidates if not (c.pinned or c.latest_start_s <= now_s + EPS_S)]
        if not flexible:
            return keep
        horizon = max(c.deadline_s for c in flexible) - now_s
        curve = StepFunction.from_rows(self.forecaster.forecast(now_s, horizon))
        self._curve = (now_s, now_s + horizon, curve)
        groups: dict[float, list[Candidate]] = {}
        for c in flexible:
            if c.job.interruptible:
                if _cheapest_slots_include_now(curve, now_s, c.deadline_s, c.remaining_s):
                    keep.append(c)
            else:
                groups.setdefault(c.remaining_s, []).append(c)
        for work_s, group in groups.items():
            latest = np.array([c.latest_start_s for c in group])
            now_best = _start_now_is_best(curve, now_s, latest, work_s)
            keep.extend(c for c, run in zip(group, now_best, strict=True) if run)
        return keep

    def planned_start(self, now_s: float, candidate: Candidate) -> tuple[float, float, float] | None:
        """For a job this policy holds back at `now_s`: (when it plans to start it, the mean
        forecast intensity over its run from then, the same if started now), in s and
        gCO2e/kWh; None if starting now is as good. The forecast of the last `select` at
        `now_s` is reused. An interruptible job's start is its first cheapest slot."""
        work_s, latest_s = max(candidate.remaining_s, EPS_S), candidate.latest_start_s
        if self._curve is not None and self._curve[0] == now_s and self._curve[1] >= candidate.deadline_s:
            curve = self._curve[2]
        else:
            curve = StepFunction.from_rows(self.forecaster.forecast(now_s, candidate.deadline_s - now_s))
        t = curve.times_s
        if candidate.job.interruptible:
            edges = np.concatenate(([now_s], t[(t > now_s + EPS_S) & (t < candidate.deadline_s - EPS_S)]))
            ends = np.append(edges[1:], candidate.deadline_s)
            mean = curve.integral(edges, ends) / np.maximum(ends - edges, EPS_S)
            order = np.argsort(mean, kind="stable")
            covered = np.cumsum((ends - edges)[order]) - (ends - edges)[order]
            chosen = order[covered < work_s - EPS_S]
            if not len(chosen) or 0 in chosen:
                return None
            first = int(chosen.min())
            weights = (ends - edges)[chosen]
            later = float(np.sum(mean[chosen] * weights) / np.sum(weights))
            return float(edges[first]), later, float(curve.integral(now_s, now_s + work_s)) / work_s
        starts = np.concatenate(([now_s], t[(t > now_s + EPS_S) & (t < latest_s - EPS_S)], [max(latest_s, now_s)]))
        cost = curve.integral(starts, starts + work_s)
        best = int(np.argmin(cost))  # ties: the earliest
        if best == 0 or cost[0] <= cost[best] * (1 + 1e-12) + 1e-9:
            return None
        return float(starts[best]), float(cost[best]) / work_s, float(cost[0]) / work_s

    def why_deferred(self, now_s: float, candidate: Candidate) -> str:
        """ "until 14:30 (in 42 min; forecast 120 g/kWh over its run, 310 if started now)"."""
        plan = self.planned_start(now_s, candidate)
        if plan is None:
            return f"by the {self.name} policy (no cleaner start found: it starts at the next decision)"
        start_s, later, now = plan
        return (
            f"until {_clock(start_s, now_s)} (in {format_duration_rounded(start_s - now_s)}; forecast {later:.0f} gCO2e/kWh "
            f"over its run, {now:.0f} if started now)"
        )


def _clock(t_s: float, now_s: float) -> str:
    """Local time of day, with the date when it is not today's."""
    import time

    same_day = time.localtime(t_s)[:3] == time.localtime(now_s)[:3]
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", time.localtime(t_s))


def why_deferred(policy: Policy, now_s: float, candidate: Candidate) -> str | None:
    """Why `policy` held `candidate` back at `now_s`, as words after "job X deferred ...";
    None for a policy that holds jobs back only while no node is free (placement): a queue."""
    explain = getattr(policy, "why_deferred", None)
    return explain(now_s, candidate) if explain is not None else None


def _start_now_is_best(
    curve: StepFunction[np.ndarray], now_s: float, latest_s: np.ndarray, work_s: float
) -> np.ndarray:
    """For jobs of ``work_s`` with latest starts ``latest_s``: whether starting now
    minimises the forecast ∫intensity over the run among the starts now, the forecast's slot
    boundaries before the latest start, and the latest start itself (a step function's window
    integral is piecewise linear in the start, so with whole slots of work its minimum is at
    such a point). Ties go to the earliest start."""
    t = curve.times_s
    starts = np.concatenate(([now_s], t[(t > now_s + EPS_S) & (t < latest_s.max() - EPS_S)]))
    cost = curve.integral(starts, starts + work_s)
    later_min = np.minimum.accumulate(np.append(cost[1:], np.inf))  # min over starts[1..k]
    k = np.searchsorted(starts, latest_s - EPS_S, side="left")  # starts[1..k-1] < latest
    best_later = np.minimum(
        later_min[np.maximum(k - 2, 0)] if len(cost) > 1 else np.inf, curve.integral(latest_s, latest_s + work_s)
    )
    best_later = np.where(k >= 2, best_later, curve.integral(latest_s, latest_s + work_s))
    return cost[0] <= best_later * (1 + 1e-12) + 1e-9


def _cheapest_slots_include_now(
    curve: StepFunction[np.ndarray], now_s: float, deadline_s: float, work_s: float
) -> bool:
    """Whether the slot starting now is among the cheapest slots (by forecast intensity)
    that together hold ``work_s`` of work before ``deadline_s``."""
    t = curve.times_s
    edges = np.concatenate(([now_s], t[(t > now_s + EPS_S) & (t < deadline_s - EPS_S)], [deadline_s]))
    length = np.diff(edges)
    mean = curve.integral(edges[:-1], edges[1:]) / np.maximum(length, EPS_S)
    order = np.argsort(mean, kind="stable")
    before = np.cumsum(length[order]) - length[order]  # work already covered before each slot
    chosen = order[before < work_s - EPS_S]
    return bool(np.any(chosen == 0))


def Oracle(series: IntensitySeries) -> CarbonAwareTiming:
    """Carbon-aware timing with perfect knowledge of the future (a baseline, not a policy)."""
    return CarbonAwareTiming(OracleForecaster(series), name="oracle")


class EnergyAwarePlacement:
    """Place each job on the node with free slots and the lowest predicted joules; a job
    already placed (running or paused) stays on its node; a job with no free node waits; a
    node that vanished (``cluster.down``) gets no new job."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        if not nodes:
            raise ConfigError("energy-aware placement needs at least one node")
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ConfigError(f"node names must be unique: {names}")
        self.nodes = tuple(nodes)
        self.name = "placement"

    def select(self, now_s: float, cluster: ClusterView, candidates: list[Candidate]) -> list[Candidate]:
        used = {n.name: 0 for n in self.nodes}
        out: list[Candidate] = []
        ordered = sorted(candidates, key=lambda c: (not c.pinned, c.node is None, c.latest_start_s))
        for c in ordered:
            if c.node is not None:
                choice: Node | None = next((n for n in self.nodes if n.name == c.node), None)
                if choice is None:
                    raise ConfigError(f"job {c.job_id!r} is on unknown node {c.node!r}")
                if not c.pinned and choice.slots is not None and used[choice.name] >= choice.slots:
                    continue
            else:
                free = [
                    n for n in self.nodes if n.name not in cluster.down and (n.slots is None or used[n.name] < n.slots)
                ]
                if not free:
                    continue
                choice = min(free, key=lambda n: n.energy_for(c.job_id, c.energy_j))
            used[choice.name] += 1
            out.append(c if c.node == choice.name else replace(c, node=choice.name))
        return out


class PowerBudget:
    """Defer jobs (earliest deadline first) so the cluster stays under ``max_power_w`` and
    under ``max_energy_j`` per fixed window of ``window_s`` (aligned to the unix epoch).
    Pinned jobs always continue; when nothing runs, the first job is admitted even if it
    alone exceeds a cap; and once a job is past its latest start, no job behind it is
    admitted until it fits, so a big job is never starved by a stream of small ones."""

    def __init__(
        self, max_power_w: float | None = None, max_energy_j: float | None = None, window_s: float = S_PER_HOUR
    ) -> None:
        if max_power_w is None and max_energy_j is None:
            raise ConfigError("a power budget needs max_power_w and/or max_energy_j")
        for label, v in (("max_power_w", max_power_w), ("max_energy_j", max_energy_j), ("window_s", window_s)):
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"power budget {label} must be a finite number > 0, got {v!r}")
        self.max_power_w, self.max_energy_j, self.window_s = max_power_w, max_energy_j, window_s
        self.name = "budget"

    def why_deferred(self, now_s: float, candidate: Candidate) -> str:
        caps = [f"{self.max_power_w:g} W" if self.max_power_w is not None else ""]
        caps.append(f"{self.max_energy_j:g} J per {self.window_s:g} s" if self.max_energy_j is not None else "")
        return f"by the power budget ({', '.join(c for c in caps if c)}): it starts when running jobs make room"

    def select(self, now_s: float, cluster: ClusterView, candidates: list[Candidate]) -> list[Candidate]:
        def power(c: Candidate) -> float:
            return cluster.node(c.node).energy_for(c.job_id, c.energy_j) / c.duration_s

        window_end = (np.floor(now_s / self.window_s) + 1) * self.window_s
        used = cluster.energy_used_j(window_end - self.window_s, now_s) if self.max_energy_j else 0.0
        out = [c for c in candidates if c.pinned]
        total_w = sum(power(c) for c in out)
        planned_j = used + sum(power(c) * min(c.remaining_s, window_end - now_s) for c in out)
        for c in sorted((c for c in candidates if not c.pinned), key=lambda c: (c.latest_start_s, c.job.arrival_s)):
            p = power(c)
            extra_j = p * min(c.remaining_s, window_end - now_s)
            fits = (self.max_power_w is None or total_w + p <= self.max_power_w * (1 + 1e-9)) and (
                self.max_energy_j is None or planned_j + extra_j <= self.max_energy_j * (1 + 1e-9)
            )
            alone = not out and (self.max_energy_j is None or used <= 0)
            if fits or alone:
                out.append(c)
                total_w += p
                planned_j += extra_j
            elif c.latest_start_s <= now_s + EPS_S:
                # an overdue job that does not fit: admit nothing after it, so the running
                # jobs drain and it gets its turn (else later small jobs could starve it)
                break
        return out


class Stack:
    """Policies applied in order, each filtering what the previous kept."""

    def __init__(self, stages: Sequence[Policy]) -> None:
        if not stages:
            raise ConfigError("compose() needs at least one policy")
        self.stages = tuple(stages)
        self.name = "+".join(s.name for s in stages)

    @property
    def nodes(self) -> tuple[Node, ...] | None:
        for stage in self.stages:
            nodes = getattr(stage, "nodes", None)
            if nodes:
                return tuple(nodes)
        return None

    def select(self, now_s: float, cluster: ClusterView, candidates: list[Candidate]) -> list[Candidate]:
        self._dropped_by: dict[str, Policy] = {}
        for stage in self.stages:
            kept = stage.select(now_s, cluster, candidates)
            ids = {c.job_id for c in kept}
            for c in candidates:
                if c.job_id not in ids:
                    self._dropped_by.setdefault(c.job_id, stage)
            candidates = kept
        return candidates

    def why_deferred(self, now_s: float, candidate: Candidate) -> str | None:
        """The reason of the stage that held the job back in the last `select`."""
        stage = getattr(self, "_dropped_by", {}).get(candidate.job_id)
        return why_deferred(stage, now_s, candidate) if stage is not None else None


def compose(*stages: Policy) -> Policy:
    """A policy stack, e.g. ``compose(CarbonAwareTiming(f), PowerBudget(max_power_w=300))``."""
    return stages[0] if len(stages) == 1 else Stack(stages)


def _builders() -> dict[str, Any]:
    def need_trace(opts: dict[str, Any], name: str) -> IntensitySeries:
        if opts.get("trace") is None:
            raise ConfigError(f"policy {name!r} needs a carbon trace")
        return opts["trace"]

    def carbon(o: dict[str, Any]) -> Policy:
        return CarbonAwareTiming(
            SeasonalForecaster(need_trace(o, "carbon"), delay_s=o.get("delay_s", 0.0)), name="carbon"
        )

    def persistence(o: dict[str, Any]) -> Policy:
        f = PersistenceForecaster(need_trace(o, "carbon-persistence"), mode="day", delay_s=o.get("delay_s", 0.0))
        return CarbonAwareTiming(f, name="carbon-persistence")

    def placement(o: dict[str, Any]) -> Policy:
        if not o.get("nodes"):
            raise ConfigError("policy 'placement' needs nodes (e.g. --node gpu:0.6 --node cpu:1.0)")
        return EnergyAwarePlacement(o["nodes"])

    def budget(o: dict[str, Any]) -> Policy:
        if o.get("max_power_w") is None and o.get("max_energy_j") is None:
            raise ConfigError("policy 'budget' needs a max power (W) and/or a max energy (J) per window")
        return PowerBudget(o.get("max_power_w"), o.get("max_energy_j"), o.get("window_s", S_PER_HOUR))

    return {
        "fifo": lambda o: Fifo(),
        "carbon": carbon,
        "carbon-persistence": persistence,
        "oracle": lambda o: Oracle(need_trace(o, "oracle")),
        "placement": placement,
        "budget": budget,
    }


POLICY_NAMES = ("fifo", "carbon", "carbon-persistence", "oracle", "placement", "budget")


def policy_from_name(spec: str, **options: Any) -> Policy:
    """A policy from its name, or a ``+``-joined stack such as ``carbon+budget``.

    Options: ``trace`` (an ``IntensitySeries``, for carbon/oracle), ``delay_s`` (data
    publication delay of the forecasts), ``nodes`` (for placement), ``max_power_w``,
    ``max_energy_j``, ``window_s`` (for budget)."""
    builders = _builders()
    stages = []
    for part in (p.strip().lower() for p in spec.split("+")):
        if part not in builders:
            raise ConfigError(
                f"unknown policy {part!r}; known policies: {', '.join(POLICY_NAMES)} "
                "(stack them with '+', e.g. carbon+budget)"
            )
        stages.append(builders[part](options))
    policy = compose(*stages)
    if len(stages) > 1:
        policy.name = spec.strip().lower()
    return policy
