"""Ray: greenai in each worker, one job added up in the driver.

    job = RayJob("digits", world_size=2)                      # in the driver
    trainer = TorchTrainer(train_loop, train_loop_config={"greenai": job.join()},
                           scaling_config=ScalingConfig(num_workers=2))
    trainer.fit()
    record = job.finish()                                       # the job, in the driver's ledger

    def train_loop(config):                                     # in each worker
        with greenai.track("digits", distributed=config["greenai"]) as run:
            ...

The driver creates the job id and a small actor that holds what the workers publish (their
inventories at start and their totals every second, then final); the workers read their
rank from Ray Train's environment (RANK, LOCAL_RANK, WORLD_SIZE), or from `join(rank=...)`
for plain Ray actors. Each physical device is read by one worker, as with torchrun (workers
of one machine share its RAPL counters and GPUs). `finish()` waits `aggregation_timeout_s`
at most for the workers' final totals and writes the job to the driver's ledger: a worker
that died leaves it `incomplete` with what it had published. Each worker's own run is in the
ledger of the machine it ran on (the same file on a local cluster).

Ray is an optional extra, imported when a RayJob is made.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenai.distributed.aggregate import Writer, aggregate
from greenai.distributed.channel import JobChannel
from greenai.distributed.spec import AGGREGATION_TIMEOUT_S, Join
from greenai.errors import RayUnavailableError
from greenai.ledger.distributed import JobRecord, RankReport, write_job
from greenai.ledger.store import Ledger, default_ledger_path

CALL_TIMEOUT_S = 5.0
_actor_class: Any = None


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayUnavailableError("Ray is not installed: pip install 'greenai[distributed]'") from e
    return ray


def _collector_class() -> Any:
    """The actor that holds the job's keys (made once, when Ray is there)."""
    global _actor_class
    if _actor_class is None:
        ray = _ray()

        class JobCollector:
            def __init__(self) -> None:
                self._data: dict[str, str] = {}

            def set(self, key: str, value: str) -> None:
                self._data[key] = value

            def get(self, key: str) -> str | None:
                return self._data.get(key)

            def first(self, key: str, value: str) -> str:
                return self._data.setdefault(key, value)

        _actor_class = ray.remote(num_cpus=0)(JobCollector)
    return _actor_class


class RayKV:
    """A channel.KeyValue on the job's collector actor (picklable: it travels to workers)."""

    def __init__(self, actor: Any, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.actor = actor
        self.timeout_s = timeout_s

    def set(self, key: str, value: str) -> None:
        _ray().get(self.actor.set.remote(key, value), timeout=self.timeout_s)

    def get(self, key: str) -> str | None:
        value = _ray().get(self.actor.get.remote(key), timeout=self.timeout_s)
        return None if value is None else str(value)

    def first(self, key: str, value: str) -> str:
        return str(_ray().get(self.actor.first.remote(key, value), timeout=self.timeout_s))

    def close(self) -> None:
        pass


class RayJob:
    """A distributed job whose ranks are Ray workers and whose writer is this driver."""

    def __init__(
        self,
        name: str,
        world_size: int,
        *,
        ledger: Path | str | None = None,
        aggregation_timeout_s: float = AGGREGATION_TIMEOUT_S,
        job_id: str | None = None,
    ) -> None:
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1 (got {world_size})")
        ray = _ray()
        if not ray.is_initialized():
            raise RayUnavailableError("RayJob needs Ray: call ray.init() first")
        self.name = name
        self.world_size = world_size
        self.job_id = job_id or uuid.uuid4().hex
        self.ledger_path = Path(ledger) if ledger is not None else default_ledger_path()
        self.aggregation_timeout_s = aggregation_timeout_s
        self._actor = _collector_class().remote()
        self._kv = RayKV(self._actor)
        self._writer = Writer(socket.gethostname(), os.getpid(), time.time())
        self.record: JobRecord | None = None
        self._write(self._add_up(ended=False))  # the job exists (running) from now on

    def join(self, rank: int | None = None, local_rank: int | None = None) -> Join:
        """What a worker passes as `distributed=`: its rank (Ray Train's RANK when None)."""
        return Join(
            job_id=self.job_id,
            rank=rank,
            world_size=self.world_size,
            local_rank=local_rank,
            writer="driver",
            store=self._kv,
            id_source="ray driver",
            aggregation_timeout_s=self.aggregation_timeout_s,
        )

    def snapshot(self) -> JobRecord:
        """The job as the workers have published it so far (not written)."""
        return self._add_up(ended=False)

    def finish(self, timeout_s: float | None = None) -> JobRecord:
        """Wait for the workers' final totals (`aggregation_timeout_s` at most), write the job
        to the driver's ledger, and return it."""
        wait_s = self.aggregation_timeout_s if timeout_s is None else timeout_s
        reports = JobChannel(self._kv, self.job_id).wait_final(self.world_size, wait_s)
        job = self._aggregate(reports, ended=True)
        self._write(job)
        self.record = job
        with_ray = _ray()
        try:
            with_ray.kill(self._actor)
        except Exception:  # noqa: BLE001 - a collector already gone is fine
            pass
        return job

    def _add_up(self, *, ended: bool) -> JobRecord:
        return self._aggregate(JobChannel(self._kv, self.job_id).reports(self.world_size), ended=ended)

    def _aggregate(self, reports: Sequence[RankReport], *, ended: bool) -> JobRecord:
        """The job out of the reports the workers published, as of now."""
        return aggregate(
            self.job_id,
            self.name,
            self.world_size,
            reports,
            self._writer,
            now=time.time(),
            ended=ended,
            id_source="ray driver",
        )

    def _write(self, job: JobRecord) -> None:
        with Ledger(self.ledger_path) as ledger:
            ledger.write(lambda conn: write_job(conn, job), timeout_s=5.0)
