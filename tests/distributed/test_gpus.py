"""GPUs across the ranks of one node: each physical GPU in the job once, by its NVML UUID.

Each rank builds its NVML meter as discovery does (or as a user who passes `NvmlMeter()` does),
over ONE fake NVML that stands for the node's driver, with its own CUDA_VISIBLE_DEVICES: an
index, the same GPU by its `GPU-` UUID, a MIG instance of it. The ranks are trackers in threads
of this process joined through an in-process store, so the inventory exchange, the choice of
what each reads, the reports and the job's sum are the code real ranks run. The fake's counters
are advanced once, while every rank tracks: the job must hold each GPU's energy exactly once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import greenai
from greenai.config import Config
from greenai.distributed import Join
from greenai.distributed.breakdown import counted_twice, device_readings, job_to_dict
from greenai.distributed.channel import MemoryKV
from greenai.distributed.devices import node_ids_of, placements, select
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import NODE
from greenai.ledger.store import Ledger
from greenai.meters.base import Meter
from greenai.meters.nvml import MIG_NOTE, NvmlMeter
from greenai.meters.process import ProcessScope
from greenai.testing.fake_nvml import FakeGpu, FakeNvml
from greenai.tracking.result import RunResult

GPU_A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
GPU_B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"
MIG_B = "MIG-bbbbbbbb-0001-0000-0000-000000000000"  # a MIG instance on GPU_B
SECONDS = 10.0  # of the fake's time, in STEPS steps
STEPS = 20
A_J = 100.0 * SECONDS  # GPU_A draws 100 W
B_J = 250.0 * SECONDS  # GPU_B draws 250 W


def node_driver() -> FakeNvml:
    """The node's two GPUs, GPU 1 in MIG mode with one instance."""
    return FakeNvml(gpus=[FakeGpu(uuid=GPU_A, power_w=100.0), FakeGpu(uuid=GPU_B, power_w=250.0, mig_uuids=(MIG_B,))])


def gpu_meters(fake: FakeNvml, visible: str, split: bool) -> list[Meter]:
    """What a rank with CUDA_VISIBLE_DEVICES=`visible` measures its GPUs with: one meter per GPU
    (discovery's `per_device()`), or the whole meter a user may pass."""
    meter = NvmlMeter(nvml=fake, visible_devices=visible, clock=fake.clock)
    return list(meter.per_device()) if split else [meter]


def run_ranks(tmp_path: Path, visible: list[str], split: bool) -> tuple[list[RunResult], Path]:
    """One tracker per rank (local rank = rank, one node), each over the shared fake NVML with
    its own visible devices; SECONDS of the fake's time pass while all of them track."""
    fake = node_driver()
    kv = MemoryKV()
    ledger = tmp_path / "ledger.db"
    world = len(visible)
    started = threading.Barrier(world + 1, timeout=60)
    stop = threading.Event()
    results: dict[int, RunResult] = {}
    errors: list[BaseException] = []

    def rank(k: int) -> None:
        try:
            join = Join(job_id="gpus", rank=k, world_size=world, local_rank=k, store=kv, publish_interval_s=0.1)
            meters = gpu_meters(fake, visible[k], split)
            with greenai.track(f"rank{k}", meters=meters, ledger=ledger, distributed=join, sample_hz=50) as run:
                started.wait()
                stop.wait(60)
            assert run.result is not None
            results[k] = run.result
        except BaseException as e:  # noqa: BLE001 - reported by the test's thread
            errors.append(e)
            started.abort()

    threads = [threading.Thread(target=rank, args=(k,)) for k in reversed(range(world))]
    for t in threads:
        t.start()
    try:
        started.wait()  # every rank tracks: its meters' counters are at their start
        for _ in range(STEPS):  # spread over wall time: the sampler drops a reading above 1 MW
            fake.advance(SECONDS / STEPS)
            time.sleep(0.02)
    except threading.BrokenBarrierError:
        pass  # a rank failed: its error is reported below
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return [results[k] for k in range(world)], ledger


def read_by(job) -> dict[str, tuple[int, float]]:  # noqa: ANN001
    """Each node device in the job: (the rank whose reading is counted, its energy)."""
    return {d.physical: (d.rank, d.energy_j) for d in device_readings(job) if d.scope == NODE}


@pytest.mark.parametrize("split", [True, False], ids=["per-gpu meters", "one nvml meter"])
@pytest.mark.parametrize(
    ("visible", "readers"),
    [
        # rank 0 sees both; rank 1 the same GPU 1 by index, rank 2 by UUID: rank 0 reads both
        (["0,1", "1", GPU_B], {GPU_A: 0, GPU_B: 0}),
        # one GPU per rank: rank 1's gpu:0 is GPU 1 (not rank 0's gpu:0); rank 2 has GPU 1's MIG
        # instance, whose parent rank 1 already reads
        (["0", "1", MIG_B], {GPU_A: 0, GPU_B: 1}),
        # the MIG instance is the first sight of GPU 1: rank 1 charges the parent, rank 2 sees
        # GPUs 0 and 1 by UUID and reads neither
        (["0", MIG_B, f"{GPU_A},{GPU_B}"], {GPU_A: 0, GPU_B: 1}),
        # rank 0 sees only GPU 1 (by UUID); rank 1 both, and takes GPU 0 alone
        ([GPU_B, "0,1"], {GPU_A: 1, GPU_B: 0}),
    ],
    ids=["all-on-rank0", "one-each", "mig-first", "rank1-takes-gpu0"],
)
def test_each_gpu_is_in_the_job_once_read_by_the_lowest_rank_that_sees_it(
    tmp_path: Path, visible: list[str], readers: dict[str, int], split: bool
) -> None:
    results, ledger = run_ranks(tmp_path, visible, split)
    job = results[0].job
    assert job is not None and job.status == "completed" and len(job.ranks) == len(visible)
    assert all(r.job is None for r in results[1:])  # rank 0 writes the job
    expected_j = {GPU_A: A_J, GPU_B: B_J}
    assert read_by(job) == {uuid: (rank, pytest.approx(expected_j[uuid])) for uuid, rank in readers.items()}
    assert job.energy_j == pytest.approx(A_J + B_J)  # both GPUs, each once (not 2x, not 0)
    assert counted_twice(job) == [] and not any("counted once" in n for n in job.notes)
    # each rank's own run holds what it read: together, each GPU once
    for k, result in enumerate(results):
        mine = [uuid for uuid, rank in readers.items() if rank == k]
        assert result.energy_j == pytest.approx(sum(expected_j[u] for u in mine))
    stored = greenai.distributed.read_job("gpus", ledger)
    assert read_by(stored) == read_by(job) and stored.energy_j == pytest.approx(A_J + B_J)
    shown = {d["physical"]: d["read_by_rank"] for d in job_to_dict(stored)["devices"]}
    assert shown == readers
    with Ledger(ledger) as store:
        assert store.transaction(lambda c: rows.counted_twice(c, "gpus"), write=False) == []
        described = [store.get_run(r.run_id).start.environment["distributed"] for r in results]
    for k, d in enumerate(described):  # each rank's run says what it read and what it left
        reads = {p["physical"] for p in d["reads"].values()}
        assert reads == {uuid for uuid, rank in readers.items() if rank == k}
        assert set(d["left_to_other_ranks"]) == set(gpus_seen(visible[k])) - reads


def gpus_seen(visible: str) -> list[str]:
    """The physical GPUs (UUIDs) a rank with CUDA_VISIBLE_DEVICES=`visible` could read."""
    (meter,) = gpu_meters(node_driver(), visible, split=False)
    try:
        return node_ids_of([meter], "node-a", 7)
    finally:
        meter.close()


def test_a_mig_instance_is_named_by_its_parent_and_says_its_energy_is_the_whole_gpu() -> None:
    fake = node_driver()
    for split in (True, False):
        for visible in ("1", GPU_B, MIG_B, f"{MIG_B},1"):
            meters = gpu_meters(fake, visible, split)
            (where,) = [placements(m, "node-a", 7) for m in meters]
            assert {d: (p.physical, p.scope) for d, p in where.items()} == {"gpu:0": (GPU_B, NODE)}, visible
            if visible.startswith("MIG-"):
                assert MIG_NOTE in meters[0].info().detail
            for m in meters:
                m.close()
    assert fake.init_count == 0  # every session shut down


def test_a_rank_left_part_of_its_gpus_reads_the_rest_and_reports_them_by_uuid() -> None:
    """`select` over one NVML meter of two GPUs, GPU_A owned by a lower rank: the meter is
    kept with GPU_B only, and what it reads is named by GPU_B's UUID."""
    fake = node_driver()
    (meter,) = gpu_meters(fake, "0,1", split=False)
    assert node_ids_of([meter], "node-a", 7) == [GPU_A, GPU_B]
    chosen = select([meter], {GPU_B}, "node-a", 7, ProcessScope(os.getpid()), Config())
    assert chosen.dropped == [GPU_A]
    assert {d: p.physical for d, p in chosen.reads.items()} == {"gpu:1": GPU_B}
    (kept,) = chosen.meters
    assert kept.info().devices == ("gpu:1",) and "gpu:0 read by another rank" in kept.info().detail
    kept.start()
    fake.advance(2.0)
    (reading,) = kept.read()
    assert reading.device == "gpu:1" and reading.energy_j == pytest.approx(500.0)
    kept.close()
