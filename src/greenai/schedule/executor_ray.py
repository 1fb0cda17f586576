"""`RayExecutor`: jobs as Ray tasks, each tracked on the node where it runs.

Each task runs its job under its own greenai Tracker on the worker (a callable in the
worker process itself, a command as a tracked subprocess of it), requesting the job's
`cpus` and `gpus` (and any custom resources) from Ray, so Ray places it.

Where the runs are written: the ledger path is passed to every task, and on one machine
(a local cluster, or `ray.cluster_utils.Cluster` with several logical nodes) all workers
write the same SQLite file (WAL mode, retried transactions). A cluster of several machines
needs that path on a shared filesystem — or not: every task also ships its run summary
(start, status, totals per device, phase and counter) back in its return value, and the
driver writes any run its own ledger lacks (without the power samples, which stay on the
worker). `worker_ledger="ship"` skips the workers' writes and always records on the driver.
Timestamps compare the worker's and the driver's clocks; across machines they must be in
sync (NTP) for the scheduling overhead to mean anything.

Ray is an optional extra, imported when an executor is created.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from greenai.config import Config, load_config
from greenai.errors import ConfigError, GreenAIError, RayUnavailableError, RunNotFoundError
from greenai.ledger.records import RunSnapshot, RunStart
from greenai.ledger.store import Ledger
from greenai.schedule.executor import (
    JobHandle,
    JobOutcome,
    run_job_tracked,
    tracking_config,
)
from greenai.schedule.jobs import Job

CONNECT_TIMEOUT_S = 5.0
START_HINT = "start one with `ray start --head` or omit --ray-address to start a local one"
WORKER_LEDGER_MODES = ("shared", "ship")


@dataclass(frozen=True)
class ShippedRun:
    """What a driver needs to record a worker's run in its own ledger."""

    start: RunStart
    status: str
    ended_at: float
    snapshot: RunSnapshot


@dataclass(frozen=True)
class TaskReport:
    outcome: JobOutcome
    run: ShippedRun | None


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("Ray is not installed; install the extra: pip install 'greenai[ray]'") from None
    return ray


class RayExecutor:
    """Run jobs on a Ray cluster: `address=None` starts a local one (`num_cpus` logical CPUs),
    "auto" joins the one `ray start` runs here, "HOST:PORT" or "ray://HOST:PORT" a remote
    one. If this process is already connected to Ray (`ray.init` was called), that
    connection is used and left open at shutdown."""

    name = "ray"
    supports_pause = False  # a Ray task cannot be paused: running jobs always go on

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        config: Config | None = None,
        worker_ledger: str = "shared",
        max_in_flight: int | None = None,
        extra_resources: Mapping[str, Mapping[str, float]] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        """`extra_resources` maps a job id to custom Ray resources it needs besides cpus and
        gpus (e.g. {"train-3": {"ssd": 1}}); `runtime_env` goes to `ray.init` (e.g. env_vars
        with a PYTHONPATH where the callables live)."""
        if worker_ledger not in WORKER_LEDGER_MODES:
            raise ConfigError(f"worker_ledger must be one of {', '.join(WORKER_LEDGER_MODES)} (got {worker_ledger!r})")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ConfigError(f"max_in_flight must be an integer >= 1 (got {max_in_flight!r})")
        self.config = config if config is not None else load_config()
        self.worker_ledger = worker_ledger
        self._extra = {k: dict(v) for k, v in (extra_resources or {}).items()}
        self._max_in_flight = max_in_flight
        self._ray = import_ray()
        self._owns_connection = False
        if not self._ray.is_initialized():
            connect(self._ray, address, num_cpus, runtime_env, connect_timeout_s)
            self._owns_connection = True
        self._task = self._ray.remote(max_retries=0)(_ray_task)
        self._known_nodes: list[dict[str, float]] = []

    # -- Executor --------------------------------------------------------------------
    def capacity(self) -> int:
        if self._max_in_flight is not None:
            return self._max_in_flight
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def submit(
        self, job: Job, *, ledger_path: Path, tags: Mapping[str, str] = {}, node: str | None = None
    ) -> JobHandle:
        resources = self.resources_of(job)
        node_id = self.node_id(node) if node is not None else None
        self._check_feasible(job, resources, node_id)
        options: dict[str, Any] = {"num_cpus": job.cpus, "num_gpus": job.gpus}
        if resources:
            options["resources"] = resources
        if node_id is not None:  # node was given
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # soft=False: the task runs on that node or fails, never silently elsewhere
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        config = tracking_config(self.config, ledger_path)
        all_tags = {"executor": self.name, **tags}
        submitted = time.time()
        ref = self._task.options(**options).remote(job, config, all_tags, self.worker_ledger == "shared")
        return JobHandle(job, submitted, (ref, Path(ledger_path)))

    def wait(self, handles: Sequence[JobHandle], timeout_s: float | None = None) -> list[tuple[JobHandle, JobOutcome]]:
        by_ref = {h.token[0]: h for h in handles}
        ready, _ = self._ray.wait(list(by_ref), num_returns=1, timeout=timeout_s)
        # collect everything else that is already done, without waiting again
        more, _ = (
            self._ray.wait([r for r in by_ref if r not in ready], num_returns=len(by_ref) - len(ready), timeout=0)
            if len(by_ref) > len(ready)
            else ([], [])
        )
        finished = []
        for ref in [*ready, *more]:
            handle = by_ref[ref]
            finished.append((handle, self._collect(handle, ref)))
        return finished

    def shutdown(self) -> None:
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_connection = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- helpers ---------------------------------------------------------------------
    def resources_of(self, job: Job) -> dict[str, float]:
        """Custom Ray resources `job` needs (besides CPU and GPU)."""
        return {**job.resources, **self._extra.get(job.job_id, {})}

    def node_id(self, name: str) -> str:
        """The id of the alive Ray node `name` designates: its node id, or its host name or
        IP address when exactly one alive node has it."""
        alive = [n for n in self._ray.nodes() if n.get("Alive", n.get("alive"))]
        for n in alive:
            if n["NodeID"] == name:
                return name
        matches = [n["NodeID"] for n in alive if name in (n.get("NodeManagerHostname"), n.get("NodeManagerAddress"))]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(
            f"{n['NodeID'][:12]}… ({n.get('NodeManagerHostname', '?')}, {n.get('NodeManagerAddress', '?')})"
            for n in alive
        )
        problem = (
            f"matches {len(matches)} alive nodes (logical nodes share a host): use the node id"
            if matches
            else "is not an alive node of the Ray cluster"
        )
        raise RayUnavailableError(f"node {name!r} {problem}; alive: {known}")

    def node_slots(self, name: str) -> int:
        """Jobs of one CPU the node `name` holds at once: its CPU resource (at least 1)."""
        node_id = self.node_id(name)
        node = next(n for n in self._ray.nodes() if n["NodeID"] == node_id)
        return max(1, int(node.get("Resources", {}).get("CPU", 1)))

    def _check_feasible(self, job: Job, custom: Mapping[str, float], node_id: str | None = None) -> None:
        """A task no node (or not the node it is placed on) can ever hold would wait in Ray
        forever or fail there: refuse it at submission."""
        need = {"CPU": job.cpus, "GPU": job.gpus, **custom}
        need = {k: v for k, v in need.items() if v > 0}
        if not need:
            return
        alive = [n for n in self._ray.nodes() if n.get("Alive", n.get("alive"))]
        nodes = [n["Resources"] for n in alive if node_id is None or n["NodeID"] == node_id]
        if any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
            return
        wanted = ", ".join(f"{k}={v:g}" for k, v in need.items())
        where = (
            f"which node {node_id[:12]}… it was placed on does not have"
            if node_id is not None
            else f"which no node of the Ray cluster has ({len(alive)} node(s) alive)"
        )
        raise RayUnavailableError(f"job {job.job_id!r} needs {wanted}, {where}")

    def _collect(self, handle: JobHandle, ref: Any) -> JobOutcome:
        ledger_path: Path = handle.token[1]
        try:
            report: TaskReport = self._ray.get(ref)
        except Exception as e:  # the task itself died: worker crash, out of memory, no greenai there
            return JobOutcome.failed(handle.job.job_id, f"Ray task failed: {type(e).__name__}: {_first_line(e)}")
        if report.run is not None:
            try:
                record_shipped_run(ledger_path, report.run)
            except GreenAIError as e:
                return _with_error(report.outcome, f"could not record the run on the driver: {e}")
        return report.outcome


def connect(
    ray: Any, address: str | None, num_cpus: int | None, runtime_env: Mapping[str, Any] | None, timeout_s: float
) -> None:
    """`ray.init`, with a quick reachability check first: Ray itself retries an unreachable
    address for minutes before giving up."""
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
    if runtime_env:
        kwargs["runtime_env"] = dict(runtime_env)
    if address is None:
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        try:
            ray.init(**kwargs)
        except Exception as e:
            raise RayUnavailableError(f"could not start a local Ray cluster: {_first_line(e)}") from e
        return
    if num_cpus is not None:
        raise ConfigError(
            f"num_cpus sets the size of a local Ray cluster started here; it cannot change the cluster at {address}"
        )
    if address != "auto":
        probe(address, timeout_s)
    try:
        ray.init(address=address, **kwargs)
    except Exception as e:
        raise RayUnavailableError(f"could not connect to Ray at {address}: {_first_line(e)}; {START_HINT}") from e


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Check that HOST:PORT (or ray://HOST:PORT) accepts TCP connections within `timeout_s`."""
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port_text = hostport.rstrip("/").rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise RayUnavailableError(
            f"could not connect to Ray at {address}: expected HOST:PORT, ray://HOST:PORT or 'auto'; {START_HINT}"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout_s):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise RayUnavailableError(f"could not connect to Ray at {address}: {reason}; {START_HINT}") from None


def record_shipped_run(ledger_path: Path, run: ShippedRun) -> bool:
    """Write a worker's run into the driver's ledger unless it is already there (the worker
    shared the file). Returns True if it was written here."""
    with Ledger(ledger_path) as ledger:
        try:
            ledger.get_run(run.start.run_id)
            return False
        except RunNotFoundError:
            pass
        ledger.begin_run(run.start)
        ledger.end_run(run.start.run_id, run.status, run.ended_at, run.snapshot)
    return True


def _ray_task(job: Job, config: Config, tags: dict[str, str], store: bool) -> TaskReport:
    """Runs on a Ray worker: the job under its own tracker, here."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    tracked = run_job_tracked(
        job, config, tags={**tags, "ray_node": node}, node=node, callable_in_process=True, store=store
    )
    result = tracked.result
    shipped = None
    if result is not None:
        ended = tracked.outcome.ended_at or time.time()
        shipped = ShippedRun(
            start=RunStart(
                run_id=result.run_id,
                name=result.name,
                started_at=ended - result.snapshot.duration_s,
                host=socket.gethostname(),
                pid=os.getpid(),
                tags={"job_id": job.job_id, **tags, "ray_node": node},
                environment={
                    "recorded_by": "ray driver from the task's result",
                    "worker_host": socket.gethostname(),
                    "ray_node": node,
                },
            ),
            status=result.status,
            ended_at=ended,
            snapshot=result.snapshot,
        )
    return TaskReport(tracked.outcome, shipped)


def _with_error(outcome: JobOutcome, error: str) -> JobOutcome:
    return replace(outcome, error=f"{outcome.error}; {error}" if outcome.error else error)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
