"""What a real batch runs under, built from plain settings (the options of `greenai schedule run`).

- ``make_executor``: the local or Ray executor by name;
- ``with_predictions``: the jobs with missing predictions filled from the ledger's past runs
  or the estimator (``schedule.predict``);
- ``placement_nodes``: placement nodes checked against the executor (an unknown node raises),
  given slots and the energy each job measured on them before;
- ``live_policy``: the composed policy of a real batch (budget, placement, carbon-aware timing
  on a live forecast read through ``carbon.grid_forecast_source``), or None for FIFO.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from greenai.errors import ConfigError
from greenai.schedule.executor import Executor
from greenai.schedule.policies import CarbonAwareTiming, Node, Policy, compose, policy_from_name

if TYPE_CHECKING:
    from greenai.config import Config
    from greenai.schedule.jobs import Job

EXECUTORS = ("local", "ray")


class NodeAware(Protocol):
    """Something that knows the nodes jobs can be placed on."""

    def node_id(self, name: str) -> str:
        """The executor's id of the node `name`; raises if there is no such node."""

    def node_slots(self, name: str) -> int:
        """How many jobs the node runs at once (its CPUs; local: the executor's parallelism)."""


class PlacingExecutor(Executor, NodeAware, Protocol):
    """An executor that knows its nodes (both the local and the Ray executor do)."""


def make_executor(
    name: str,
    config: Config,
    *,
    ray_address: str | None = None,
    ray_cpus: int | None = None,
    parallel: int | None = None,
    log_dir: Path | None = None,
) -> PlacingExecutor:
    """The executor called `name` (one of ``EXECUTORS``)."""
    if name == "ray":
        from greenai.schedule.executor_ray import RayExecutor

        return RayExecutor(ray_address, num_cpus=ray_cpus, config=config, max_in_flight=parallel)
    from greenai.schedule.executor_local import LocalExecutor

    return LocalExecutor(parallel, config=config, log_dir=log_dir)


def with_predictions(jobs: Sequence[Job], ledger_path: Path, node: str | None = None) -> list[Job]:
    """The jobs with missing predictions filled from past runs of the same jobs (on `node`
    when given: where they will run) in the ledger at `ledger_path` (when it exists) or from
    the estimator."""
    from greenai.ledger.store import Ledger
    from greenai.schedule.predict import predict_jobs

    if not Path(ledger_path).exists():
        return predict_jobs(jobs, None)
    with Ledger(Path(ledger_path)) as store:
        return predict_jobs(jobs, store, node)


def with_slots(node: Node, executor: NodeAware) -> Node:
    """`node` checked against the executor (an unknown node raises), with as many slots as
    the node has CPUs when it was given none."""
    executor.node_id(node.name)
    if node.slots is not None:
        return node
    return replace(node, slots=executor.node_slots(node.name))


def with_history(nodes: Sequence[Node], executor: NodeAware, jobs: Sequence[Job], ledger_path: Path) -> list[Node]:
    """Placement nodes with the energy each job measured on each of them before (from the
    ledger at `ledger_path`, when it exists)."""
    if not nodes or not Path(ledger_path).exists():
        return list(nodes)
    from greenai.ledger.store import Ledger
    from greenai.schedule.predict import with_node_history

    with Ledger(Path(ledger_path)) as store:
        return with_node_history(nodes, [executor.node_id(n.name) for n in nodes], jobs, store)


def live_policy(
    stages: Sequence[str],
    *,
    max_power_w: float | None = None,
    forecast: str | None = None,
    forecast_tz: str = "UTC",
    nodes: Sequence[Node] = (),
    on_problem: Callable[[str], None] = lambda problem: None,
    now_s: float | None = None,
) -> Policy | None:
    """The composed policy of a real batch (None for FIFO: no stages).

    `stages` are policy names in order ("budget", "placement", "carbon"); "carbon" times
    jobs on the live forecast `forecast` (``trace:FILE.csv`` or ``MODULE:FUNCTION``, read
    through ``carbon.grid_forecast_source``, which reports its problems to `on_problem` and
    falls back rather than stopping the batch)."""
    if not stages:
        return None
    from greenai.carbon.grid_forecast_source import ResilientForecaster, forecaster_from_spec

    built: list[Policy] = []
    for part in stages:
        if part == "carbon":
            if forecast is None:
                raise ConfigError("policy 'carbon' needs a forecast (trace:FILE.csv or MODULE:FUNCTION)")
            live = forecaster_from_spec(forecast, timezone=forecast_tz, now_s=time.time() if now_s is None else now_s)
            built.append(CarbonAwareTiming(ResilientForecaster(live, on_problem), name="carbon"))
        else:
            built.append(policy_from_name(part, max_power_w=max_power_w, nodes=list(nodes)))
    return compose(*built)
