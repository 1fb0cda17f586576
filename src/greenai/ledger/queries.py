"""SQL between the ledger tables and the records of `records.py`.

Every function takes a connection already inside a transaction; `store.Ledger` owns
locking, transactions and retries.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence

from greenai.errors import LedgerError, RunNotFoundError
from greenai.ledger.records import (
    DeviceTotal,
    PhaseTotal,
    RunRecord,
    RunSnapshot,
    RunStart,
    RunStatus,
    SampleRow,
)
from greenai.meters.base import DeviceKind, Provenance

_AMBIGUOUS_SHOWN = 10


def insert_run(conn: sqlite3.Connection, start: RunStart, now: float) -> None:
    """A new `running` run with zero totals (marked estimated until the first flush).
    Environment values that JSON cannot hold are stored as their `str()`."""
    conn.execute(
        "INSERT INTO runs (run_id, name, status, started_at, updated_at, host, pid, duration_s,"
        " energy_j, rel_uncertainty, provenance, facility_energy_j, carbon_g, cost, pue,"
        " environment_json) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, 0, 0, 0, 1.0, ?)",
        (
            start.run_id,
            start.name,
            RunStatus.RUNNING,
            start.started_at,
            now,
            start.host,
            start.pid,
            Provenance.ESTIMATED.value,
            json.dumps(start.environment, default=str),
        ),
    )
    conn.executemany(
        "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
        [(start.run_id, key, value) for key, value in start.tags.items()],
    )


def write_snapshot(
    conn: sqlite3.Connection,
    run_id: str,
    snapshot: RunSnapshot,
    samples: Sequence[SampleRow],
    now: float,
) -> None:
    """Append samples; replace totals, devices, phases and counters. RunNotFoundError if
    the run is not in the ledger."""
    cursor = conn.execute(
        "UPDATE runs SET updated_at = ?, duration_s = ?, energy_j = ?, rel_uncertainty = ?,"
        " provenance = ?, facility_energy_j = ?, carbon_g = ?, cost = ?, currency = ?,"
        " carbon_source = ?, pue = ? WHERE run_id = ?",
        (
            now,
            snapshot.duration_s,
            snapshot.energy_j,
            snapshot.rel_uncertainty,
            Provenance(snapshot.provenance).value,
            snapshot.facility_energy_j,
            snapshot.carbon_g,
            snapshot.cost,
            snapshot.currency,
            snapshot.carbon_source,
            snapshot.pue,
            run_id,
        ),
    )
    if cursor.rowcount == 0:
        raise RunNotFoundError(f"no run {run_id} in the ledger")
    conn.executemany(
        "INSERT INTO samples (run_id, t, device, kind, power_w, energy_j, provenance, phase)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                s.t,
                s.device,
                DeviceKind(s.kind).value,
                s.power_w,
                s.energy_j,
                Provenance(s.provenance).value,
                s.phase,
            )
            for s in samples
        ],
    )
    for table in ("devices", "phases", "counters"):
        # Table names come from this fixed tuple, never from input.
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    conn.executemany(
        "INSERT INTO devices (run_id, device, kind, energy_j, provenance, rel_uncertainty) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                d.device,
                DeviceKind(d.kind).value,
                d.energy_j,
                Provenance(d.provenance).value,
                d.rel_uncertainty,
            )
            for d in snapshot.devices
        ],
    )
    conn.executemany(
        "INSERT INTO phases (run_id, phase, device, energy_j, duration_s, calls) VALUES (?, ?, ?, ?, ?, ?)",
        [(run_id, p.phase, p.device, p.energy_j, p.duration_s, p.calls) for p in snapshot.phases],
    )
    conn.executemany(
        "INSERT INTO counters (run_id, name, value) VALUES (?, ?, ?)",
        [(run_id, name, value) for name, value in snapshot.counters.items()],
    )


def set_status(conn: sqlite3.Connection, run_id: str, status: str, ended_at: float | None) -> None:
    conn.execute("UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?", (status, ended_at, run_id))


def revive(conn: sqlite3.Connection, run_id: str) -> None:
    """A run wrongly marked incomplete that flushes again is running after all."""
    conn.execute(
        "UPDATE runs SET status = ?, ended_at = NULL WHERE run_id = ? AND status = ?",
        (RunStatus.RUNNING, run_id, RunStatus.INCOMPLETE),
    )


def resolve_id(conn: sqlite3.Connection, id_or_prefix: str) -> str:
    """The full run_id for an exact id or a unique prefix."""
    prefix = id_or_prefix.strip()
    if not prefix:
        raise RunNotFoundError("no run id given")
    if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (prefix,)).fetchone():
        return prefix
    matches: list[str] = [
        row["run_id"]
        for row in conn.execute(
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY started_at DESC LIMIT ?",
            (len(prefix), prefix, _AMBIGUOUS_SHOWN + 1),
        )
    ]
    if not matches:
        raise RunNotFoundError(f"no run matches {prefix!r}")
    if len(matches) > 1:
        shown = ", ".join(matches[:_AMBIGUOUS_SHOWN])
        more = ", ..." if len(matches) > _AMBIGUOUS_SHOWN else ""
        raise LedgerError(f"run id {prefix!r} is ambiguous; it matches {shown}{more}")
    return matches[0]


def list_records(
    conn: sqlite3.Connection,
    limit: int,
    name: str | None,
    status: str | None,
    since: float | None,
) -> list[RunRecord]:
    clauses: list[str] = ["1 = 1"]
    params: list[str | float] = []
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if since is not None:
        clauses.append("started_at >= ?")
        params.append(since)
    rows = conn.execute(
        f"SELECT * FROM runs WHERE {' AND '.join(clauses)} ORDER BY started_at DESC, run_id DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_record(conn, row) for row in rows]


def read_record(conn: sqlite3.Connection, run_id: str) -> RunRecord:
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFoundError(f"no run {run_id} in the ledger")
    return _record(conn, row)


def read_samples(conn: sqlite3.Connection, run_id: str) -> list[SampleRow]:
    if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
        raise RunNotFoundError(f"no run {run_id} in the ledger")
    rows = conn.execute(
        "SELECT t, device, kind, power_w, energy_j, provenance, phase FROM samples WHERE run_id = ? ORDER BY t, rowid",
        (run_id,),
    )
    return [
        SampleRow(
            t=row["t"],
            device=row["device"],
            kind=DeviceKind(row["kind"]),
            power_w=_num(row["power_w"]),
            energy_j=_num(row["energy_j"]),
            provenance=Provenance(row["provenance"]),
            phase=row["phase"],
        )
        for row in rows
    ]


def delete_run(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


def _record(conn: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
    run_id = row["run_id"]
    tags = {r["key"]: r["value"] for r in _rows(conn, "SELECT key, value FROM tags", run_id)}
    devices = tuple(
        DeviceTotal(
            device=r["device"],
            kind=DeviceKind(r["kind"]),
            energy_j=_num(r["energy_j"]),
            provenance=Provenance(r["provenance"]),
            rel_uncertainty=_num(r["rel_uncertainty"]),
        )
        for r in _rows(conn, "SELECT * FROM devices", run_id)
    )
    phases = tuple(
        PhaseTotal(
            phase=r["phase"],
            device=r["device"],
            energy_j=_num(r["energy_j"]),
            duration_s=_num(r["duration_s"]),
            calls=r["calls"],
        )
        for r in _rows(conn, "SELECT * FROM phases", run_id)
    )
    counters = {r["name"]: _num(r["value"]) for r in _rows(conn, "SELECT name, value FROM counters", run_id)}
    start = RunStart(
        run_id=run_id,
        name=row["name"],
        started_at=row["started_at"],
        host=row["host"],
        pid=row["pid"],
        tags=tags,
        environment=json.loads(row["environment_json"]),
    )
    snapshot = RunSnapshot(
        duration_s=_num(row["duration_s"]),
        energy_j=_num(row["energy_j"]),
        rel_uncertainty=_num(row["rel_uncertainty"]),
        provenance=Provenance(row["provenance"]),
        facility_energy_j=_num(row["facility_energy_j"]),
        carbon_g=_num(row["carbon_g"]),
        cost=_num(row["cost"]),
        currency=row["currency"],
        devices=devices,
        phases=phases,
        counters=counters,
        carbon_source=row["carbon_source"],
        pue=_num(row["pue"]),
    )
    return RunRecord(
        start=start,
        status=row["status"],
        ended_at=row["ended_at"],
        updated_at=row["updated_at"],
        snapshot=snapshot,
    )


def _rows(conn: sqlite3.Connection, select: str, run_id: str) -> list[sqlite3.Row]:
    """Child rows of a run in insertion order (`select` is a constant of this module)."""
    return conn.execute(f"{select} WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()


def _num(value: float | None) -> float:
    """SQLite stores NaN as NULL; read it back as NaN."""
    return math.nan if value is None else float(value)
