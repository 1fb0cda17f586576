"""The Ray executor on a real local Ray cluster of two logical nodes (one module-scoped
cluster: Ray takes ~20 s to start on 2 cores)."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from greenai.ledger.jobs import batch_jobs
from greenai.ledger.store import Ledger
from greenai.schedule.batch import run_batch
from greenai.schedule.executor_ray import RayExecutor, RayUnavailableError, connect
from greenai.schedule.jobs import Job

HERE = Path(__file__).parent
PROVENANCES = {"measured", "integrated", "estimated"}


def test_unreachable_address_fails_fast_and_clearly() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(RayUnavailableError) as info:
        connect(ray, f"127.0.0.1:{port}", None, None, timeout_s=2.0)
    assert time.monotonic() - start < 3.0
    message = str(info.value)
    assert message.startswith(f"could not connect to Ray at 127.0.0.1:{port}: ")
    assert "ray start --head" in message and "omit --ray-address" in message
    with pytest.raises(RayUnavailableError, match="expected HOST:PORT"):
        connect(ray, "not-an-address", None, None, timeout_s=1.0)
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Head node (1 CPU) plus a second logical node (1 CPU and the custom resource
    `special`); returns the second node's id."""
    from ray.cluster_utils import Cluster

    saved = os.environ.get("PYTHONPATH")
    # workers inherit the raylet's environment: they import `sched_jobs` from here
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), saved]))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        special = c.add_node(num_cpus=1, resources={"special": 1})
        ray.init(address=c.address, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        c.wait_for_nodes()
        yield special.node_id
    finally:
        ray.shutdown()
        c.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def test_ray_batch_records_every_task(cluster: str, tmp_path: Path) -> None:
    ledger_path = tmp_path / "ray.db"
    jobs = [
        Job("spin", callable_path="sched_jobs:spin", kwargs={"seconds": 0.3}),
        Job("raises", callable_path="sched_jobs:fail", kwargs={"seconds": 0.1}),
        Job("cmd", command=(sys.executable, "-c", "sum(range(10**6))")),
    ]
    executor = RayExecutor()  # joins the test's cluster
    summary = run_batch(jobs, executor, ledger_path, batch_id="ray-1")
    executor.shutdown()
    assert ray.is_initialized()  # a connection it did not open is left alone
    assert (summary.completed, summary.failed) == (2, 1)
    by_id = {o.job_id: o for o in summary.outcomes}
    assert by_id["spin"].value > 0 and "RuntimeError: the job broke" in by_id["raises"].error
    nodes = {n["NodeID"] for n in ray.nodes()}
    with Ledger(ledger_path) as ledger:
        for row in batch_jobs(ledger, "ray-1"):
            run = ledger.get_run(row.run_id)  # written by the worker into the shared ledger
            assert row.energy_j == pytest.approx(run.snapshot.energy_j) and row.energy_j > 0
            assert row.provenance in PROVENANCES and row.node in nodes
            assert run.start.tags["ray_node"] == row.node and run.start.tags["batch_id"] == "ray-1"
            assert run.status == ("failed" if row.job_id == "raises" else "completed") == row.status
            assert row.scheduling_overhead_s is not None and row.scheduling_overhead_s >= 0
            assert "recorded_by" not in run.start.environment  # the worker's own record


def test_custom_resource_places_the_job_and_infeasible_jobs_fail(cluster: str, tmp_path: Path) -> None:
    jobs = [
        Job("pinned", callable_path="sched_jobs:spin", kwargs={"seconds": 0.05}),
        Job("huge", callable_path="sched_jobs:spin", cpus=64),
    ]
    executor = RayExecutor(extra_resources={"pinned": {"special": 1}})
    summary = run_batch(jobs, executor, tmp_path / "place.db")
    pinned, huge = summary.outcomes
    assert pinned.ok and pinned.node == cluster
    assert not huge.ok and huge.error.startswith("job 'huge' needs CPU=64, which no node of the Ray cluster has")


def test_shipped_results_reach_the_driver_ledger(cluster: str, tmp_path: Path) -> None:
    ledger_path = tmp_path / "driver.db"
    executor = RayExecutor(worker_ledger="ship")  # workers write nothing: as on machines without a shared disk
    summary = run_batch([Job("far", callable_path="sched_jobs:spin", kwargs={"seconds": 0.2})], executor, ledger_path)
    (outcome,) = summary.outcomes
    with Ledger(ledger_path) as ledger:
        run = ledger.get_run(outcome.run_id)
        assert run.start.environment["recorded_by"] == "ray driver from the task's result"
        assert run.status == "completed" and outcome.energy_j > 0
        assert run.snapshot.energy_j == pytest.approx(outcome.energy_j)
        assert run.snapshot.devices  # per-device totals travel with the result
        assert batch_jobs(ledger, summary.batch_id)[0].run_id == outcome.run_id


def test_placement_runs_each_job_on_the_node_the_policy_picks(cluster: str, tmp_path: Path) -> None:
    from greenai.schedule.policies import EnergyAwarePlacement, Node

    alive = [n for n in ray.nodes() if n["Alive"]]
    head = next(n["NodeID"] for n in alive if n["NodeID"] != cluster)
    # the second node is predicted to need half the energy: it gets the first job, and the
    # head takes the next one only while that node's single slot is busy
    nodes = [Node(head, energy_factor=1.0, slots=1), Node(cluster, energy_factor=0.5, slots=1)]
    jobs = [
        Job(
            f"j{i}",
            callable_path="sched_jobs:spin",
            kwargs={"seconds": 0.5},
            predicted_duration_s=0.5,
            predicted_energy_j=10.0,
        )
        for i in range(3)
    ]
    executor = RayExecutor()
    summary = run_batch(
        jobs, executor, tmp_path / "placed.db", policy=EnergyAwarePlacement(nodes), decision_interval_s=0.05
    )
    assert summary.completed == 3
    ran_on = {o.job_id: o.node for o in summary.outcomes}
    assert ran_on["j0"] == cluster and ran_on["j1"] == head
    with Ledger(tmp_path / "placed.db") as ledger:
        assert {r.job_id: r.node for r in batch_jobs(ledger, summary.batch_id)} == ran_on
    # names resolve to alive nodes only, and a host shared by logical nodes is ambiguous
    assert executor.node_id(cluster) == cluster
    # a --node without slots gets as many as the node has CPUs
    assert executor.node_slots(cluster) == next(int(n["Resources"]["CPU"]) for n in alive if n["NodeID"] == cluster)
    with pytest.raises(RayUnavailableError, match="is not an alive node of the Ray cluster"):
        executor.node_id("nowhere")
    with pytest.raises(RayUnavailableError, match="matches 2 alive nodes"):
        executor.node_id(alive[0]["NodeManagerAddress"])
    # a job placed on a node without the resources it needs is refused at submission, clearly
    needs_special = Job("picky", callable_path="sched_jobs:spin", resources={"special": 1})
    with pytest.raises(
        RayUnavailableError, match="needs CPU=1, special=1, which node .* it was placed on does not have"
    ):
        executor.submit(needs_special, ledger_path=tmp_path / "placed.db", node=head)
