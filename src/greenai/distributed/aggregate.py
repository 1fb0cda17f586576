"""Adding up a job from its ranks' reports: every physical device once.

Each rank reports the devices it read, each with what names it on its machine (`physical`)
and whether it is a device of the node (one reader per job) or a share of the rank's own
process tree. The job's energy is the sum over devices, a node device counted once even if
two ranks reported it (which the start-up exchange avoids; when it could not, the lowest
rank's reading is kept and a note says so). Carbon, cost and facility energy are the
ranks' sums, scaled by the same factor when a device was dropped as a duplicate. The band
is the linear sum of the devices' absolute bands and the provenance the weakest, as for a
run (docs/measurement.md).

A job is `completed` when every rank reported the end of its run and none failed; a rank
that never reported its end (it died, or did not answer within the aggregation timeout)
makes it `incomplete`, with that rank's last published totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from greenai.ledger.distributed import NODE, CommTotals, DeviceRead, JobRecord, RankReport, sequence_of
from greenai.ledger.records import RunStatus
from greenai.meters.base import DeviceKind, Provenance
from greenai.meters.io import NETWORK_J_PER_BYTE


@dataclass(frozen=True)
class Writer:
    """The process that adds the job up and writes it (rank 0, or Ray's driver)."""

    host: str
    pid: int
    started_at: float


def counted_devices(reports: Sequence[RankReport]) -> tuple[list[tuple[RankReport, DeviceRead]], list[str]]:
    """Every device of every rank, a node device (by its physical id) once: the lowest
    rank's reading; and notes on the duplicates left out."""
    kept: list[tuple[RankReport, DeviceRead]] = []
    owner: dict[str, int] = {}
    notes: list[str] = []
    for report in sorted(reports, key=lambda r: r.rank):
        for device in report.devices:
            if device.scope == NODE:
                first = owner.get(device.physical)
                if first is not None:
                    notes.append(
                        f"{device.physical} was read by rank {first} and rank {report.rank}: counted once "
                        f"(rank {first}'s reading)"
                    )
                    continue
                owner[device.physical] = report.rank
            kept.append((report, device))
    return kept, notes


def aggregate(
    job_id: str,
    name: str,
    world_size: int,
    reports: Sequence[RankReport],
    writer: Writer,
    *,
    now: float,
    ended: bool,
    id_source: str = "",
    notes: Sequence[str] = (),
) -> JobRecord:
    """The job as of `now` from the newest report of each rank; `ended`: the writer's own
    run has ended and it waited for the others (so a rank without a final report is missing)."""
    ranks = sequence_of(reports)
    kept, duplicate_notes = counted_devices(ranks)
    energy_j = sum(d.energy_j for _, d in kept)
    band_j = sum(d.energy_j * d.rel_uncertainty for _, d in kept)
    weakest = max((d.provenance for _, d in kept), key=lambda p: p.rank, default=Provenance.ESTIMATED)
    ranks_energy_j = sum(r.energy_j for r in ranks)
    scale = energy_j / ranks_energy_j if ranks_energy_j > 0 else 1.0
    started_at = min((r.started_at for r in ranks), default=writer.started_at)
    last_at = max((r.started_at + r.duration_s for r in ranks), default=started_at)
    comm = sum((r.comm for r in ranks), CommTotals())
    all_notes = [*notes, *duplicate_notes]
    status = RunStatus.RUNNING
    if ended:
        status = _status(ranks, world_size, all_notes)
    return JobRecord(
        job_id=job_id,
        name=name,
        status=status,
        id_source=id_source,
        world_size=world_size,
        started_at=started_at,
        ended_at=now if ended else None,
        updated_at=now,
        writer_host=writer.host,
        writer_pid=writer.pid,
        writer_started_at=writer.started_at,
        duration_s=max(last_at - started_at, 0.0),
        energy_j=energy_j,
        rel_uncertainty=band_j / energy_j if energy_j > 0 else 0.0,
        provenance=weakest,
        facility_energy_j=sum(r.facility_energy_j for r in ranks) * scale,
        carbon_g=sum(r.carbon_g for r in ranks) * scale,
        cost=sum(r.cost for r in ranks) * scale,
        currency=next((r.currency for r in ranks if r.currency), ""),
        comm=comm,
        comm_network_j=comm.bytes * NETWORK_J_PER_BYTE,
        notes=tuple(all_notes),
        ranks=ranks,
    )


def _status(ranks: Sequence[RankReport], world_size: int, notes: list[str]) -> str:
    by_rank = {r.rank: r for r in ranks}
    missing = [k for k in range(world_size) if k not in by_rank]
    unfinished = [r for r in ranks if not r.final]
    for k in missing:
        notes.append(f"rank {k} never reported: nothing of it is in the job")
    for r in unfinished:
        notes.append(
            f"rank {r.rank} did not report the end of its run (it died, or did not answer in time): "
            f"the job has its totals as of its last report, {r.duration_s:.1f} s into its run"
        )
    if missing or unfinished:
        return RunStatus.INCOMPLETE
    statuses = {r.status for r in ranks}
    for status in (RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.INCOMPLETE):
        if status in statuses:
            return status
    return RunStatus.COMPLETED


@dataclass
class NodeTotal:
    """One node's share of a job: its ranks and its devices' energy, by kind."""

    node: str
    hosts: set[str] = field(default_factory=set)
    ranks: list[int] = field(default_factory=list)
    energy_j: float = 0.0
    band_j: float = 0.0
    by_kind: dict[DeviceKind, float] = field(default_factory=dict)

    @property
    def rel_uncertainty(self) -> float:
        return self.band_j / self.energy_j if self.energy_j > 0 else 0.0


def node_totals(job: JobRecord) -> list[NodeTotal]:
    """The job's energy per node (each device once), nodes in order of their lowest rank."""
    nodes: dict[str, NodeTotal] = {}
    for report in job.ranks:
        total = nodes.setdefault(report.node, NodeTotal(report.node))
        total.hosts.add(report.host)
        total.ranks.append(report.rank)
    kept, _ = counted_devices(job.ranks)
    for report, device in kept:
        total = nodes[report.node]
        total.energy_j += device.energy_j
        total.band_j += device.energy_j * device.rel_uncertainty
        total.by_kind[device.kind] = total.by_kind.get(device.kind, 0.0) + device.energy_j
    return list(nodes.values())
