"""A ledger holding distributed jobs as ranks would have written them (no torchrun): adding up
as tests/distributed/test_units.py does, then the writer's `write_job`, and the ranks' own runs.

- `TRAIN` ("train"): completed, world size 3 on two nodes. Ranks 0 and 1 on host-a: rank 0
  read the node's RAPL package, DRAM and network, rank 1 only its own disk bytes; rank 2 on
  host-b read its GPU (by UUID) and its node's package. Runs of ranks 0 and 1 are in the ledger
  (rank 2's is in host-b's ledger). Its total is `TRAIN_J`, each device once.
- `EVIL_ID`: incomplete (rank 1 never reported its end), its id, name (markup, terminal
  escapes, a script element), host and a device's physical name hostile text; both ranks
  reported the same node package (counted once).
Plain module (not conftest) so the CLI, report and dashboard tests share it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from greenai.distributed import aggregate
from greenai.distributed.aggregate import Writer
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import NODE, PROCESS, CommTotals, DeviceRead, JobRecord, RankReport
from greenai.ledger.records import DeviceTotal, RunSnapshot, RunStart, RunStatus
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance

BAD_CLOSE = "[/oops]"
LINK = "[link=http://evil.example]click[/link]"
TITLE = "\x1b]0;pwned\x07\x1b[2Jt"  # OSC 0 sets the window title, CSI 2J clears the screen
TITLE_SHOWN = r"\x1b]0;pwned\x07\x1b[2Jt"
SCRIPT = "<script>alert(1)</script>"

NODE_A = "boot:aaaaaaaa-1111-2222-3333-444444444444"
NODE_B = "boot:bbbbbbbb-5555-6666-7777-888888888888"
TRAIN = "train-1f2e3d4c"
EVIL_ID = f"evil{BAD_CLOSE}{TITLE}"
GPU = "GPU-0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff"
RUN_NAME = f"rank-run {LINK}{TITLE}"  # the name rank 0's run of TRAIN was given
TRAIN_J = 400.0 + 60.0 + 5.0 + 1.0 + 2.0 + 900.0 + 300.0


@dataclass(frozen=True)
class JobWorld:
    ledger: Path
    train: JobRecord
    evil: JobRecord
    run_ids: dict[int, str]  # TRAIN's rank -> its run id (ranks 0 and 1 are in this ledger)


def read(name: str, physical: str, scope: str, energy_j: float, kind: DeviceKind, prov: Provenance, rel: float):
    return DeviceRead(name, kind, physical, scope, energy_j, prov, rel)


def rank_report(
    job_id: str,
    rank: int,
    node: str,
    host: str,
    devices: tuple[DeviceRead, ...],
    *,
    t0: float,
    final: bool = True,
    status: str = RunStatus.COMPLETED,
    comm: CommTotals | None = None,
    run_id: str | None = None,
) -> RankReport:
    energy = sum(d.energy_j for d in devices)
    return RankReport(
        job_id=job_id,
        rank=rank,
        local_rank=rank if node == NODE_A else 0,
        node=node,
        host=host,
        pid=100 + rank,
        run_id=run_id or uuid.uuid4().hex,
        status=status,
        final=final,
        started_at=t0 + rank * 0.1,
        updated_at=t0 + 30.0,
        duration_s=25.0 if final else 12.5,
        energy_j=energy,
        rel_uncertainty=0.05,
        provenance=max((d.provenance for d in devices), key=lambda p: p.rank),
        facility_energy_j=energy * 1.2,
        carbon_g=energy * 1.2 / 3.6e6 * 100,
        devices=devices,
        comm=comm or CommTotals(),
    )


def add_rank_run(store: Ledger, report: RankReport, name: str, world_size: int) -> None:
    environment = {
        "config": {"intensity": "100"},
        "distributed": {
            "job_id": report.job_id,
            "id_source": "TORCHELASTIC_RUN_ID",
            "rank": report.rank,
            "world_size": world_size,
            "local_rank": report.local_rank,
            "node": report.node,
        },
    }
    store.begin_run(RunStart(report.run_id, name, report.started_at, report.host, report.pid, {}, environment))
    snapshot = RunSnapshot(
        duration_s=report.duration_s,
        energy_j=report.energy_j,
        rel_uncertainty=report.rel_uncertainty,
        provenance=report.provenance,
        facility_energy_j=report.facility_energy_j,
        carbon_g=report.carbon_g,
        cost=0.0,
        currency="EUR",
        devices=tuple(
            DeviceTotal(d.device, d.kind, d.energy_j, d.provenance, d.rel_uncertainty) for d in report.devices
        ),
    )
    store.end_run(report.run_id, RunStatus.COMPLETED, report.started_at + report.duration_s, snapshot)


def build(ledger: Path) -> JobWorld:
    now = time.time()
    writer = Writer(socket.gethostname(), os.getpid(), now - 3600)
    cpu, dram, gpu, net, disk = DeviceKind.CPU, DeviceKind.DRAM, DeviceKind.GPU, DeviceKind.NETWORK, DeviceKind.DISK
    m, i, e = Provenance.MEASURED, Provenance.INTEGRATED, Provenance.ESTIMATED
    t0 = now - 3600
    comm = CommTotals(bytes=720e6, calls=1000, seconds=5.0, energy_j=8.0)
    train_ranks = [
        rank_report(
            TRAIN,
            0,
            NODE_A,
            "host-a",
            (
                read("cpu:0", f"{NODE_A}/rapl/cpu:0", NODE, 400.0, cpu, m, 0.02),
                read("dram:0", f"{NODE_A}/rapl/dram:0", NODE, 60.0, dram, m, 0.05),
                read("network", f"{NODE_A}/network", NODE, 5.0, net, e, 0.5),
                read("disk", f"{NODE_A}/pid 100/disk", PROCESS, 1.0, disk, e, 0.5),
            ),
            t0=t0,
            comm=comm,
        ),
        rank_report(
            TRAIN,
            1,
            NODE_A,
            "host-a",
            (read("disk", f"{NODE_A}/pid 101/disk", PROCESS, 2.0, disk, e, 0.5),),
            t0=t0,
            comm=CommTotals(bytes=720e6, calls=1000, seconds=5.5, energy_j=0.0),
        ),
        rank_report(
            TRAIN,
            2,
            NODE_B,
            "host-b",
            (
                read("gpu:0", GPU, NODE, 900.0, gpu, i, 0.05),
                read("cpu:0", f"{NODE_B}/rapl/cpu:0", NODE, 300.0, cpu, m, 0.02),
            ),
            t0=t0,
            comm=CommTotals(bytes=720e6, calls=1000, seconds=4.0, energy_j=30.0),
        ),
    ]
    train = aggregate(TRAIN, "train", 3, train_ranks, writer, now=t0 + 31, ended=True, id_source="TORCHELASTIC_RUN_ID")
    shared = f"{NODE_A}/rapl/cpu:0 {LINK}"
    evil_ranks = [
        rank_report(
            EVIL_ID,
            0,
            NODE_A,
            TITLE,
            (read("cpu:0", shared, NODE, 100.0, cpu, m, 0.02),),
            t0=now - 60,
            status=RunStatus.FAILED,
        ),
        rank_report(
            EVIL_ID,
            1,
            NODE_A,
            TITLE,
            (read("cpu:0", shared, NODE, 101.0, cpu, m, 0.02),),
            t0=now - 60,
            final=False,
            status=RunStatus.RUNNING,
        ),
    ]
    evil = aggregate(
        EVIL_ID, f"{LINK}{TITLE}{SCRIPT}", 2, evil_ranks, writer, now=now - 20, ended=True, id_source="given"
    )
    with Ledger(ledger) as store:
        store.write(lambda c: rows.write_job(c, train), timeout_s=5)
        store.write(lambda c: rows.write_job(c, evil), timeout_s=5)
        add_rank_run(store, train_ranks[0], RUN_NAME, 3)
        add_rank_run(store, train_ranks[1], "train", 3)
    return JobWorld(ledger, train, evil, {0: train_ranks[0].run_id, 1: train_ranks[1].run_id})
