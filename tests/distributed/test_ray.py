"""Ray: greenai in each worker, one job in the driver, on a real local Ray cluster (ray.init()
on this machine, two workers; module-scoped: Ray takes ~20 s to start on 2 cores)."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.distributed.ray import RayJob
from greenai.ledger import distributed as rows
from greenai.ledger.store import Ledger

ray = pytest.importorskip("ray")
pytest.importorskip("ray.train.torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster whose workers write runs to one ledger file (returned)."""
    ledger = tmp_path_factory.mktemp("ray") / "ledger.db"
    saved = {k: os.environ.get(k) for k in ("GREENAI_LEDGER", "GREENAI_RAPL_ROOT", "OMP_NUM_THREADS")}
    os.environ.update(
        GREENAI_LEDGER=str(ledger), GREENAI_RAPL_ROOT=str(ledger.parent / "no-powercap"), OMP_NUM_THREADS="1"
    )
    ray.init(num_cpus=3, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield ledger
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_example() -> object:
    spec = importlib.util.spec_from_file_location("ray_train_digits", ROOT / "examples" / "ray_train_digits.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_trainer_workers_make_one_job_in_the_driver(cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example()
    assert example.main(["--epochs", "1", "--limit", "128", "--ledger", str(cluster)]) == 0  # type: ignore[attr-defined]
    printed = capsys.readouterr().out
    assert "'ray-digits': completed, 2 ranks on 1 node(s)" in printed
    with Ledger(cluster) as ledger:
        job = ledger.transaction(lambda c: rows.list_jobs(c, 1), write=False)[0]
        assert ledger.transaction(lambda c: rows.counted_twice(c, job.job_id), write=False) == []
        runs = {r.rank: ledger.get_run(r.run_id) for r in job.ranks}  # each worker's own run, linked
    assert job.status == "completed" and job.id_source == "ray driver" and len(job.ranks) == 2
    assert job.writer_pid == os.getpid()  # the driver wrote it
    assert job.energy_j == pytest.approx(sum(r.energy_j for r in job.ranks))
    assert all(run.status == "completed" and run.start.pid != os.getpid() for run in runs.values())
    node_devices = {(r.rank, d.device) for r in job.ranks for d in r.devices if d.scope == "node"}
    assert node_devices == {(0, "network")}  # the host's network, read by rank 0 only
    assert job.comm.calls >= 2 and job.comm.bytes > 0


@ray.remote(num_cpus=1)
class Spinner:
    """A plain Ray actor with greenai in it."""

    def spin(self, join: object, seconds: float) -> float:
        import greenai

        with greenai.track("ray-actor", distributed=join) as run:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sum(range(10_000))
        assert run.result is not None
        return run.result.energy_j

    def pid(self) -> int:
        return os.getpid()


def test_plain_actors_join_a_job_and_a_killed_one_leaves_it_incomplete(cluster: Path) -> None:
    job = RayJob("ray-actors", world_size=2, ledger=cluster, aggregation_timeout_s=2.0)
    a, b = Spinner.remote(), Spinner.remote()
    done = a.spin.remote(job.join(rank=0), 1.5)
    b.spin.remote(job.join(rank=1), 30.0)
    assert ray.get(done, timeout=60) > 0
    deadline = time.monotonic() + 30
    while not any(r.rank == 1 and r.energy_j > 0 for r in job.snapshot().ranks):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    ray.kill(b)
    started = time.monotonic()
    record = job.finish()
    assert time.monotonic() - started < 2.0 + 1.0  # within the aggregation timeout
    assert record.status == "incomplete" and record.missing_ranks == (1,)
    rank1 = next(r for r in record.ranks if r.rank == 1)
    assert rank1.energy_j > 0 and not rank1.final
    with Ledger(cluster) as ledger:
        stored = ledger.transaction(lambda c: rows.read_job(c, job.job_id), write=False)
    assert stored.status == "incomplete" and stored.energy_j == pytest.approx(record.energy_j)
