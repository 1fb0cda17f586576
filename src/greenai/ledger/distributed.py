"""Distributed jobs in the ledger: the `distributed_jobs`, `distributed_ranks` and
`distributed_devices` tables (schema v6), their records, and the SQL that writes and reads them.

A job is one training launched on several processes (ranks, `greenai.distributed`); each rank
is tracked as its own run and reports what it read (`RankReport`); the writer (rank 0, or
Ray's driver) adds them up into the job (`JobRecord`). A rank writes its own row in its own
ledger as it goes; the writer writes the job and every rank's last report in its ledger.
When both write the same ledger (ranks on one host), the newer report of a rank wins.

A job still `running` whose writer's process is gone reads `incomplete` (judged as runs are,
ledger/reconcile.py); it keeps the totals of its last write.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from greenai.ledger.lookup import resolve
from greenai.ledger.reconcile import OTHER_HOST_STALE_S, process_gone
from greenai.ledger.records import RunStatus
from greenai.meters.base import DeviceKind, Provenance

NODE = "node"  # a device of the machine (RAPL package, GPU, host network): one reader per job
PROCESS = "process"  # a device share of one rank's own process tree (CPU model, DRAM model, disk)


@dataclass(frozen=True)
class DeviceRead:
    """One device as one rank read it."""

    device: str  # as the rank's run names it: cpu:0, gpu:1, network
    kind: DeviceKind
    physical: str  # what it is on its machine: "<node>/rapl/cpu:0", "GPU-<uuid>", "<node>/pid 41/cpu:0"
    scope: str  # NODE or PROCESS
    energy_j: float
    provenance: Provenance
    rel_uncertainty: float


@dataclass(frozen=True)
class CommTotals:
    """A rank's collectives (or a job's, summed): bytes moved, calls, time with one in flight,
    and the energy the tracker apportioned to the `communication` phase."""

    bytes: float = 0.0
    calls: int = 0
    seconds: float = 0.0
    energy_j: float = 0.0

    def __add__(self, other: CommTotals) -> CommTotals:
        return CommTotals(
            self.bytes + other.bytes,
            self.calls + other.calls,
            max(self.seconds, other.seconds),  # ranks' collectives overlap: the longest
            self.energy_j + other.energy_j,
        )


@dataclass(frozen=True)
class RankReport:
    """What one rank measured, as of `updated_at` (`final` once its run has ended)."""

    job_id: str
    rank: int
    local_rank: int | None
    node: str  # hardware.node.node_id() of the rank's machine
    host: str
    pid: int
    run_id: str
    status: str  # its run's status: running until final
    final: bool
    started_at: float
    updated_at: float
    duration_s: float
    energy_j: float
    rel_uncertainty: float
    provenance: Provenance
    facility_energy_j: float = 0.0
    carbon_g: float = 0.0
    cost: float = 0.0
    currency: str = ""
    devices: tuple[DeviceRead, ...] = ()
    comm: CommTotals = field(default_factory=CommTotals)


@dataclass(frozen=True)
class JobRecord:
    """A distributed job: totals over every physical device once, and its ranks' reports."""

    job_id: str
    name: str
    status: str
    id_source: str  # where the job id came from: TORCHELASTIC_RUN_ID, the process group, ray, given
    world_size: int
    started_at: float
    ended_at: float | None
    updated_at: float
    writer_host: str
    writer_pid: int
    writer_started_at: float
    duration_s: float
    energy_j: float
    rel_uncertainty: float
    provenance: Provenance
    facility_energy_j: float
    carbon_g: float
    cost: float
    currency: str
    comm: CommTotals
    comm_network_j: float  # the collectives' bytes x network J/byte (an attribution, inside the total)
    notes: tuple[str, ...] = ()
    ranks: tuple[RankReport, ...] = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted({r.node for r in self.ranks}))

    @property
    def missing_ranks(self) -> tuple[int, ...]:
        """Ranks that never reported, and those whose run never ended (died or unreachable)."""
        final = {r.rank for r in self.ranks if r.final}
        return tuple(r for r in range(self.world_size) if r not in final)


def write_rank(conn: sqlite3.Connection, report: RankReport) -> bool:
    """Upsert a rank's row and its devices, unless the ledger holds a newer report of it;
    return whether it was written."""
    row = conn.execute(
        "SELECT updated_at, final FROM distributed_ranks WHERE job_id = ? AND rank = ?",
        (report.job_id, report.rank),
    ).fetchone()
    if row is not None and (row[1] and not report.final or float(row[0]) > report.updated_at):
        return False
    conn.execute(
        "INSERT OR REPLACE INTO distributed_ranks (job_id, rank, local_rank, node, host, pid, run_id, status,"
        " final, started_at, updated_at, duration_s, energy_j, rel_uncertainty, provenance, carbon_g,"
        " comm_bytes, comm_calls, comm_s, comm_energy_j) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?)",
        (
            report.job_id,
            report.rank,
            report.local_rank,
            report.node,
            report.host,
            report.pid,
            report.run_id,
            report.status,
            int(report.final),
            report.started_at,
            report.updated_at,
            report.duration_s,
            report.energy_j,
            report.rel_uncertainty,
            Provenance(report.provenance).value,
            report.carbon_g,
            report.comm.bytes,
            report.comm.calls,
            report.comm.seconds,
            report.comm.energy_j,
        ),
    )
    conn.execute("DELETE FROM distributed_devices WHERE job_id = ? AND rank = ?", (report.job_id, report.rank))
    conn.executemany(
        "INSERT INTO distributed_devices (job_id, rank, device, kind, physical, scope, energy_j, provenance,"
        " rel_uncertainty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                report.job_id,
                report.rank,
                d.device,
                DeviceKind(d.kind).value,
                d.physical,
                d.scope,
                d.energy_j,
                Provenance(d.provenance).value,
                d.rel_uncertainty,
            )
            for d in report.devices
        ],
    )
    return True


def write_job(conn: sqlite3.Connection, job: JobRecord) -> None:
    """Upsert the job's row and every rank report it holds."""
    conn.execute(
        "INSERT OR REPLACE INTO distributed_jobs (job_id, name, status, id_source, world_size, ranks_reported, nodes,"
        " started_at, ended_at, updated_at, writer_host, writer_pid, writer_started_at, duration_s, energy_j,"
        " rel_uncertainty, provenance, facility_energy_j, carbon_g, cost, currency, comm_bytes, comm_calls, comm_s,"
        " comm_energy_j, comm_network_j, notes_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.job_id,
            job.name,
            job.status,
            job.id_source,
            job.world_size,
            len(job.ranks),
            len(job.nodes),
            job.started_at,
            job.ended_at,
            job.updated_at,
            job.writer_host,
            job.writer_pid,
            job.writer_started_at,
            job.duration_s,
            job.energy_j,
            job.rel_uncertainty,
            Provenance(job.provenance).value,
            job.facility_energy_j,
            job.carbon_g,
            job.cost,
            job.currency,
            job.comm.bytes,
            job.comm.calls,
            job.comm.seconds,
            job.comm.energy_j,
            job.comm_network_j,
            json.dumps(list(job.notes)),
        ),
    )
    for report in job.ranks:
        write_rank(conn, report)


def read_ranks(conn: sqlite3.Connection, job_id: str) -> list[RankReport]:
    """The rank reports of a job this ledger holds, by rank."""
    devices: dict[int, list[DeviceRead]] = {}
    for row in conn.execute(
        "SELECT rank, device, kind, physical, scope, energy_j, provenance, rel_uncertainty FROM distributed_devices"
        " WHERE job_id = ? ORDER BY rank, device",
        (job_id,),
    ):
        devices.setdefault(int(row[0]), []).append(
            DeviceRead(row[1], DeviceKind(row[2]), row[3], row[4], _num(row[5]), Provenance(row[6]), _num(row[7]))
        )
    reports = []
    for row in conn.execute("SELECT * FROM distributed_ranks WHERE job_id = ? ORDER BY rank", (job_id,)):
        reports.append(
            RankReport(
                job_id=row["job_id"],
                rank=int(row["rank"]),
                local_rank=None if row["local_rank"] is None else int(row["local_rank"]),
                node=row["node"],
                host=row["host"],
                pid=int(row["pid"]),
                run_id=row["run_id"],
                status=row["status"],
                final=bool(row["final"]),
                started_at=float(row["started_at"]),
                updated_at=float(row["updated_at"]),
                duration_s=_num(row["duration_s"]),
                energy_j=_num(row["energy_j"]),
                rel_uncertainty=_num(row["rel_uncertainty"]),
                provenance=Provenance(row["provenance"]),
                carbon_g=_num(row["carbon_g"]),
                devices=tuple(devices.get(int(row["rank"]), ())),
                comm=_comm(row),
            )
        )
    return reports


def resolve_job_id(conn: sqlite3.Connection, id_or_prefix: str) -> str:
    """The full job id for an exact id or a unique prefix (ledger/lookup.py's rule):
    RunNotFoundError, or LedgerError when the prefix is ambiguous."""
    return resolve(conn, "distributed_jobs", "job_id", id_or_prefix, what="distributed job")


def read_job(conn: sqlite3.Connection, id_or_prefix: str) -> JobRecord:
    """A job with its ranks; a `running` job whose writer's process is gone reads `incomplete`."""
    job_id = resolve_job_id(conn, id_or_prefix)
    row = conn.execute("SELECT * FROM distributed_jobs WHERE job_id = ?", (job_id,)).fetchone()
    return _as_judged(_job(row, tuple(read_ranks(conn, job_id))))


def list_jobs(conn: sqlite3.Connection, limit: int = 50) -> list[JobRecord]:
    """Jobs newest first, with their ranks."""
    rows = conn.execute("SELECT * FROM distributed_jobs ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
    return [_as_judged(_job(row, tuple(read_ranks(conn, row["job_id"])))) for row in rows]


def runs_held(conn: sqlite3.Connection, job: JobRecord) -> set[str]:
    """The ranks' runs this ledger holds (a rank on another host keeps its run in its own)."""
    ids = [r.run_id for r in job.ranks]
    if not ids:
        return set()
    marks = ", ".join("?" * len(ids))
    return {str(row[0]) for row in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({marks})", ids)}


def holds_job(conn: sqlite3.Connection, job_id: str) -> bool:
    """Whether this ledger holds the job (its writer, rank 0, keeps it in its own host's ledger)."""
    return conn.execute("SELECT 1 FROM distributed_jobs WHERE job_id = ?", (job_id,)).fetchone() is not None


def job_of_run(conn: sqlite3.Connection, run_id: str) -> tuple[str, int] | None:
    """(job id, rank) of a run that was a rank of a distributed job, else None."""
    row = conn.execute("SELECT job_id, rank FROM distributed_ranks WHERE run_id = ? LIMIT 1", (run_id,)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def counted_twice(conn: sqlite3.Connection, job_id: str) -> list[tuple[str, list[int]]]:
    """Node devices of a job read by more than one rank: (physical id, ranks); empty when
    each physical device was read once."""
    rows = conn.execute(
        "SELECT physical, group_concat(rank) FROM distributed_devices WHERE job_id = ? AND scope = ?"
        " GROUP BY physical HAVING count(*) > 1 ORDER BY physical",
        (job_id, NODE),
    ).fetchall()
    return [(str(r[0]), sorted(int(x) for x in str(r[1]).split(","))) for r in rows]


def _job(row: sqlite3.Row, ranks: tuple[RankReport, ...]) -> JobRecord:
    try:
        notes = tuple(str(n) for n in json.loads(row["notes_json"] or "[]"))
    except (ValueError, TypeError):
        notes = ("(notes unreadable)",)
    return JobRecord(
        job_id=row["job_id"],
        name=row["name"],
        status=row["status"],
        id_source=row["id_source"],
        world_size=int(row["world_size"]),
        started_at=float(row["started_at"]),
        ended_at=None if row["ended_at"] is None else float(row["ended_at"]),
        updated_at=float(row["updated_at"]),
        writer_host=row["writer_host"],
        writer_pid=int(row["writer_pid"]),
        writer_started_at=float(row["writer_started_at"]),
        duration_s=_num(row["duration_s"]),
        energy_j=_num(row["energy_j"]),
        rel_uncertainty=_num(row["rel_uncertainty"]),
        provenance=Provenance(row["provenance"]),
        facility_energy_j=_num(row["facility_energy_j"]),
        carbon_g=_num(row["carbon_g"]),
        cost=_num(row["cost"]),
        currency=row["currency"],
        comm=_comm(row),
        comm_network_j=_num(row["comm_network_j"]),
        notes=notes,
        ranks=ranks,
    )


def _as_judged(job: JobRecord) -> JobRecord:
    if job.status == RunStatus.RUNNING and process_gone(
        job.writer_host, job.writer_pid, job.writer_started_at, socket.gethostname()
    ):
        return replace(job, status=RunStatus.INCOMPLETE, ended_at=job.updated_at)
    if (
        job.status == RunStatus.RUNNING
        and job.writer_host != socket.gethostname()
        and time.time() - job.updated_at > OTHER_HOST_STALE_S
    ):
        return replace(job, status=RunStatus.INCOMPLETE, ended_at=job.updated_at)
    return job


def _comm(row: sqlite3.Row) -> CommTotals:
    """The collectives' totals of a rank's or a job's row."""
    return CommTotals(
        _num(row["comm_bytes"]), int(row["comm_calls"] or 0), _num(row["comm_s"]), _num(row["comm_energy_j"])
    )


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def sequence_of(reports: Sequence[RankReport]) -> tuple[RankReport, ...]:
    """Reports by rank, the newest of each rank kept."""
    best: dict[int, RankReport] = {}
    for r in reports:
        old = best.get(r.rank)
        if old is None or (r.final, r.updated_at) >= (old.final, old.updated_at):
            best[r.rank] = r
    return tuple(best[k] for k in sorted(best))
