"""A job broken down for people to read: per node, per rank, and which rank read each physical
device (so a reader sees that nothing was counted twice); and the job as JSON-ready data.

`greenai jobs list | show`, `greenai report --job` and the dashboard's job page all show a
job through these, from the `JobRecord` the ledger gives back (`greenai.distributed.read_job`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from greenai.distributed.aggregate import counted_devices, node_totals
from greenai.ledger.distributed import NODE, JobRecord, RankReport
from greenai.meters.base import DeviceKind, Provenance


@dataclass(frozen=True)
class DeviceReading:
    """One physical device (or one rank's share of one, for a process device) in a job: the
    rank whose reading is in the total, and the ranks whose reading of it was left out."""

    physical: str  # what it is on its machine: "<node>/rapl/cpu:0", "GPU-<uuid>", "<node>/pid 41/cpu:0"
    scope: str  # NODE (read by one rank per job) or PROCESS (a rank's own process tree)
    kind: DeviceKind
    device: str  # as the reading rank's run names it
    rank: int  # the rank whose reading is counted
    node: str
    energy_j: float
    rel_uncertainty: float
    provenance: Provenance
    left_out: tuple[int, ...] = ()  # other ranks that reported this node device: not counted


@dataclass(frozen=True)
class RankShare:
    """One rank: what it reported, and how much of it the job's total holds."""

    report: RankReport
    counted_j: float  # its devices' energy in the job (a duplicate node device left out)
    devices: tuple[DeviceReading, ...]  # the devices whose reading of this rank is counted

    @property
    def rel_uncertainty(self) -> float:
        """The band of `counted_j`: its devices' bands summed, as for a run."""
        band_j = sum(d.energy_j * d.rel_uncertainty for d in self.devices)
        return band_j / self.counted_j if self.counted_j > 0 else 0.0

    @property
    def missing(self) -> bool:
        """It never reported the end of its run (died, or did not answer in time)."""
        return not self.report.final


def device_readings(job: JobRecord) -> list[DeviceReading]:
    """Every physical device of the job once, with the rank that read it: node devices first,
    then each rank's own process shares (each by rank, then name)."""
    kept, _ = counted_devices(job.ranks)
    others: dict[str, list[int]] = {}
    for report in job.ranks:
        for d in report.devices:
            if d.scope == NODE:
                others.setdefault(d.physical, []).append(report.rank)
    out = [
        DeviceReading(
            physical=d.physical,
            scope=d.scope,
            kind=DeviceKind(d.kind),
            device=d.device,
            rank=r.rank,
            node=r.node,
            energy_j=d.energy_j,
            rel_uncertainty=d.rel_uncertainty,
            provenance=Provenance(d.provenance),
            left_out=tuple(k for k in others.get(d.physical, ()) if k != r.rank) if d.scope == NODE else (),
        )
        for r, d in kept
    ]
    return sorted(out, key=lambda x: (x.scope != NODE, x.rank, x.physical))


def rank_shares(job: JobRecord) -> list[RankShare]:
    """Each rank that reported, by rank, with the energy of its devices the job counts."""
    readings = device_readings(job)
    return [
        RankShare(
            report,
            sum(d.energy_j for d in readings if d.rank == report.rank),
            tuple(d for d in readings if d.rank == report.rank),
        )
        for report in job.ranks
    ]


def counted_twice(job: JobRecord) -> list[DeviceReading]:
    """Node devices more than one rank reported (each still counted once, the lowest rank's
    reading); empty when every physical device was read by one rank."""
    return [d for d in device_readings(job) if d.left_out]


def once_summary(job: JobRecord) -> str:
    """In words, whether each physical device was read once."""
    readings = device_readings(job)
    node = [d for d in readings if d.scope == NODE]
    shares = len(readings) - len(node)
    twice = [d for d in node if d.left_out]
    parts = f"{len(node)} node device(s), {shares} per-process share(s)"
    if not twice:
        return f"Nothing counted twice: {parts}; each node device read by one rank."
    return (
        f"{len(twice)} of {len(node)} node device(s) reported by more than one rank: each counted once "
        f"(the lowest rank's reading); {shares} per-process share(s)."
    )


def unreported_ranks(job: JobRecord) -> tuple[int, ...]:
    """Ranks of the world that never reported at all."""
    seen = {r.rank for r in job.ranks}
    return tuple(k for k in range(job.world_size) if k not in seen)


def incomplete_reason(job: JobRecord) -> str:
    """Why an incomplete job is incomplete, in words: ranks that did not report their end, ranks
    never heard of, or its writer gone before it ended."""
    unfinished = [r.rank for r in job.ranks if not r.final]
    never = list(unreported_ranks(job))
    parts = []
    if unfinished:
        parts.append(
            f"rank(s) {', '.join(map(str, unfinished))} did not report the end of their run (died, or did not "
            "answer in time): the total has their energy up to their last report"
        )
    if never:
        parts.append(f"rank(s) {', '.join(map(str, never))} never reported: nothing of them is in the total")
    return "; ".join(parts) or "its writer stopped before the job ended: the totals are as of its last write"


def short_node(node: str) -> str:
    """A node id short enough for a table: `boot:` and the boot id's first 8 characters, or
    `host:NAME` as it is."""
    return node[:13] if node.startswith("boot:") else node


def short_physical(physical: str, node: str) -> str:
    """A physical device name with its node written as `short_node` (as the node table shows it)."""
    if physical.startswith(node + "/"):
        return short_node(node) + physical[len(node) :]
    return physical


def job_to_dict(job: JobRecord) -> dict[str, Any]:
    """The job as JSON-ready data: totals, per node, per rank (with the devices each read),
    each physical device with the rank that read it, communication and notes."""
    nodes = node_totals(job)
    return {
        **job_summary(job),
        "id_source": job.id_source,
        "updated_at": job.updated_at,
        "writer": {"host": job.writer_host, "pid": job.writer_pid, "started_at": job.writer_started_at},
        "facility_energy_j": _finite(job.facility_energy_j),
        "currency": job.currency,
        "missing_ranks": list(job.missing_ranks),
        "unreported_ranks": list(unreported_ranks(job)),
        "nodes": [
            {
                "node": n.node,
                "hosts": sorted(n.hosts),
                "ranks": sorted(n.ranks),
                "energy_j": _finite(n.energy_j),
                "rel_uncertainty": _finite(n.rel_uncertainty),
                "by_kind": {k.value: _finite(v) for k, v in sorted(n.by_kind.items(), key=lambda kv: kv[0].value)},
            }
            for n in nodes
        ],
        "ranks": [
            {
                "rank": s.report.rank,
                "local_rank": s.report.local_rank,
                "node": s.report.node,
                "host": s.report.host,
                "pid": s.report.pid,
                "run_id": s.report.run_id,
                "status": s.report.status,
                "final": s.report.final,
                "started_at": s.report.started_at,
                "updated_at": s.report.updated_at,
                "duration_s": _finite(s.report.duration_s),
                "energy_j": _finite(s.report.energy_j),
                "counted_energy_j": _finite(s.counted_j),
                "counted_rel_uncertainty": _finite(s.rel_uncertainty),
                "rel_uncertainty": _finite(s.report.rel_uncertainty),
                "provenance": Provenance(s.report.provenance).value,
                "carbon_g": _finite(s.report.carbon_g),
                "communication": _comm(s.report.comm.calls, s.report.comm.bytes, s.report.comm.seconds)
                | {"energy_j": _finite(s.report.comm.energy_j)},
                "devices": [
                    {
                        "device": d.device,
                        "kind": DeviceKind(d.kind).value,
                        "physical": d.physical,
                        "scope": d.scope,
                        "energy_j": _finite(d.energy_j),
                        "provenance": Provenance(d.provenance).value,
                        "rel_uncertainty": _finite(d.rel_uncertainty),
                        "counted": any(c.rank == s.report.rank and c.physical == d.physical for c in s.devices),
                    }
                    for d in s.report.devices
                ],
            }
            for s in rank_shares(job)
        ],
        "devices": [
            {
                "physical": d.physical,
                "scope": d.scope,
                "kind": d.kind.value,
                "device": d.device,
                "read_by_rank": d.rank,
                "node": d.node,
                "energy_j": _finite(d.energy_j),
                "rel_uncertainty": _finite(d.rel_uncertainty),
                "provenance": d.provenance.value,
                "also_reported_by": list(d.left_out),
            }
            for d in device_readings(job)
        ],
        # node devices more than one rank reported: in the total once all the same (the lowest
        # rank's reading); empty when each was read by one rank
        "reported_by_several_ranks": [
            {"physical": d.physical, "counted_from_rank": d.rank, "left_out_from_ranks": list(d.left_out)}
            for d in counted_twice(job)
        ],
        "communication": _comm(job.comm.calls, job.comm.bytes, job.comm.seconds)
        | {"energy_j": _finite(job.comm.energy_j), "network_j": _finite(job.comm_network_j)},
        "notes": list(job.notes),
    }


def job_summary(job: JobRecord) -> dict[str, Any]:
    """One line of `jobs list --json`: the job's totals without its breakdowns."""
    return {
        "job_id": job.job_id,
        "name": job.name,
        "status": job.status,
        "world_size": job.world_size,
        "ranks_reported": len(job.ranks),
        "node_count": len(job.nodes),
        "started_at": job.started_at,
        "started_at_utc": _utc(job.started_at),
        "ended_at": job.ended_at,
        "ended_at_utc": None if job.ended_at is None else _utc(job.ended_at),
        "duration_s": _finite(job.duration_s),
        "energy_j": _finite(job.energy_j),
        "rel_uncertainty": _finite(job.rel_uncertainty),
        "provenance": Provenance(job.provenance).value,
        "carbon_g": _finite(job.carbon_g),
        "cost": _finite(job.cost) if job.cost > 0 else None,  # None: no price configured
        "comm_bytes": _finite(job.comm.bytes),
    }


def _comm(calls: int, nbytes: float, seconds: float) -> dict[str, Any]:
    return {"calls": calls, "bytes": _finite(nbytes), "seconds": _finite(seconds)}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()
