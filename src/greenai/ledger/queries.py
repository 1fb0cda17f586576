"""SQL between the ledger tables and the records of `records.py`.

Every function takes a connection already inside a transaction; `store.Ledger` owns
locking, transactions and retries.

Reading is tolerant of rows that other tools (or old bugs) left malformed: a run whose
`environment_json` is not a JSON object, or with an unreadable device, phase, counter or
tag row, is read without it and flagged (`RunRecord.problems`, and a warning); a run whose
own row cannot be read (an unknown provenance, a time that is not a number) is left out
of lists with a warning, and reading it alone is a LedgerError naming it. One bad row never
hides the others. `damaged_runs` lists them all for `greenai runs check`.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

from greenai.errors import DamagedRowError, LedgerError, RunNotFoundError
from greenai.hardware.coload import CoLoadSummary, CoLoadWindow
from greenai.ledger.lookup import resolve
from greenai.ledger.reconcile import is_abandoned
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

# runs whose child rows one query reads (`IN (...)`): 4 queries per 50 runs instead of 4 per
# run. Larger chunks save few more statements and cost more in Python's garbage collector (more
# rows alive at once): 500 made a list of 20,000 runs slower than one query per run.
_RUNS_PER_QUERY = 50
# a run's child rows, by table: run_id, then the columns `_record` reads by position (constants:
# table names never come from input)
_CHILD_SELECTS = {
    "tags": "SELECT run_id, key, value FROM tags",
    "devices": "SELECT run_id, device, kind, energy_j, provenance, rel_uncertainty FROM devices",
    "phases": "SELECT run_id, phase, device, energy_j, duration_s, calls FROM phases",
    "counters": "SELECT run_id, name, value FROM counters",
}
_DAMAGE_HINT = "`greenai runs check` lists damaged rows"
_ROW_ERRORS = (ValueError, TypeError, OverflowError, RecursionError)

log = logging.getLogger(__name__)
R = TypeVar("R")


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
    *,
    live_only: bool = False,
) -> bool:
    """Append samples; replace totals, devices, phases and counters. RunNotFoundError if
    the run is not in the ledger. With `live_only` (a periodic flush), only while the run is
    `running` or `incomplete`: once its end is written (a flush that comes after it, from a
    sampler thread stop() gave up on) nothing is changed and False is returned."""
    cursor = conn.execute(
        "UPDATE runs SET updated_at = ?, duration_s = ?, energy_j = ?, rel_uncertainty = ?,"
        " provenance = ?, facility_energy_j = ?, carbon_g = ?, cost = ?, currency = ?,"
        " carbon_source = ?, pue = ? WHERE run_id = ? AND (? OR status IN (?, ?))",
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
            not live_only,
            RunStatus.RUNNING,
            RunStatus.INCOMPLETE,
        ),
    )
    if cursor.rowcount == 0:
        if live_only and conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            return False  # ended: its final totals stay as written
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
    if snapshot.coload is not None:
        write_coload_summary(conn, run_id, snapshot.coload)
    return True


def write_coload_summary(conn: sqlite3.Connection, run_id: str, coload: CoLoadSummary) -> None:
    """The run's co-load summary (schema v7)."""
    conn.execute(
        "UPDATE runs SET coload_median_cores = ?, coload_max_cores = ?, steal_median_cores = ?,"
        " steal_max_cores = ?, coload_busy_share = ?, coload_threshold_cores = ?, coload_seconds = ?,"
        " disturbed = ? WHERE run_id = ?",
        (
            coload.median_cores,
            coload.max_cores,
            coload.steal_median_cores,
            coload.steal_max_cores,
            coload.busy_share,
            coload.threshold_cores,
            coload.seconds,
            int(coload.disturbed),
            run_id,
        ),
    )


def insert_coload(conn: sqlite3.Connection, run_id: str, windows: Sequence[CoLoadWindow]) -> None:
    """Append a run's co-load windows (the `coload` table, schema v7)."""
    conn.executemany(
        "INSERT INTO coload (run_id, t, span_s, others_cores, steal_cores) VALUES (?, ?, ?, ?, ?)",
        [(run_id, w.t, w.span_s, w.others_cores, w.steal_cores) for w in windows],
    )


def read_coload(conn: sqlite3.Connection, run_id: str) -> list[CoLoadWindow]:
    """A run's co-load windows in time order (none before schema v7 or for runs without);
    unreadable rows are left out, with a warning."""
    if not _has_column(conn, "coload", "t"):
        return []
    rows = conn.execute(
        "SELECT t, span_s, others_cores, steal_cores FROM coload WHERE run_id = ? ORDER BY t, rowid", (run_id,)
    )
    problems: list[str] = []
    windows = _readable(
        rows,
        lambda r: CoLoadWindow(_time(r["t"]), _num(r["span_s"]), _num(r["others_cores"]), _num(r["steal_cores"])),
        "coload",
        problems,
    )
    if problems:
        log.warning("run %s: %s; left out (%s)", run_id, "; ".join(problems), _DAMAGE_HINT)
    return windows


def set_status(conn: sqlite3.Connection, run_id: str, status: str, ended_at: float | None) -> None:
    conn.execute("UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?", (status, ended_at, run_id))


def revive(conn: sqlite3.Connection, run_id: str) -> None:
    """A run wrongly marked incomplete that flushes again is running after all."""
    conn.execute(
        "UPDATE runs SET status = ?, ended_at = NULL WHERE run_id = ? AND status = ?",
        (RunStatus.RUNNING, run_id, RunStatus.INCOMPLETE),
    )


def resolve_id(conn: sqlite3.Connection, id_or_prefix: str) -> str:
    """The full run_id for an exact id or a unique prefix (ledger/lookup.py's rule):
    RunNotFoundError, or LedgerError when the prefix is ambiguous."""
    return resolve(conn, "runs", "run_id", id_or_prefix, what="run")


def list_records(
    conn: sqlite3.Connection,
    limit: int,
    name: str | None,
    status: str | None,
    since: float | None,
) -> list[RunRecord]:
    """Runs newest first; a run whose row cannot be read is left out, with a warning."""
    where, params = _run_filter(name, status, since)
    rows = conn.execute(
        f"SELECT * FROM runs WHERE {where} ORDER BY started_at DESC, run_id DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    records = []
    for read in _read_runs(conn, rows):
        if isinstance(read, DamagedRowError):
            log.warning("%s; left out (%s)", read, _DAMAGE_HINT)
        else:
            records.append(read)
    return records


@dataclass(frozen=True, slots=True)
class RunProgress:
    """What a live view shows of a run in progress (`runs_in_progress`)."""

    run_id: str
    name: str
    duration_s: float
    energy_j: float
    carbon_g: float


def runs_in_progress(conn: sqlite3.Connection, limit: int) -> list[RunProgress]:
    """Runs in progress, newest first: of the newest `limit` runs marked `running`, those whose
    process is not gone (judged as ledger/reconcile.py judges runs; nothing is written). One
    query of `limit` rows at most, of the runs table's columns a live view needs, however many
    runs, devices or phases the ledger holds; a row that cannot be read is left out."""
    host, now = socket.gethostname(), time.time()
    rows = conn.execute(
        "SELECT run_id, name, host, pid, started_at, updated_at, duration_s, energy_j, carbon_g FROM runs"
        " WHERE status = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
        (RunStatus.RUNNING, limit),
    )
    found = []
    for row in rows:
        try:
            if is_abandoned(
                _text(row["host"]), int(row["pid"]), _num(row["started_at"]), _num(row["updated_at"]), host, now
            ):
                continue
            found.append(
                RunProgress(
                    _text(row["run_id"]),
                    _text(row["name"]),
                    _num(row["duration_s"]),
                    _num(row["energy_j"]),
                    _num(row["carbon_g"]),
                )
            )
        except _ROW_ERRORS:
            continue
    return found


def count_records(conn: sqlite3.Connection, name: str | None, status: str | None, since: float | None) -> int:
    """How many runs `list_records` would list without a limit (damaged rows included)."""
    where, params = _run_filter(name, status, since)
    return int(conn.execute(f"SELECT count(*) FROM runs WHERE {where}", params).fetchone()[0])


def _run_filter(name: str | None, status: str | None, since: float | None) -> tuple[str, list[str | float]]:
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
    return " AND ".join(clauses), params


def read_record(conn: sqlite3.Connection, run_id: str) -> RunRecord:
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFoundError(f"no run {run_id} in the ledger")
    (read,) = _read_runs(conn, [row])
    if isinstance(read, DamagedRowError):
        raise LedgerError(f"{read}; {_DAMAGE_HINT}")
    return read


def damaged_runs(conn: sqlite3.Connection) -> list[str]:
    """One line per run that cannot be read back whole: left out of lists, or read flagged."""
    found = []
    runs = conn.execute("SELECT * FROM runs ORDER BY rowid")
    while rows := runs.fetchmany(_RUNS_PER_QUERY):
        for read in _read_runs(conn, rows, warn=False):
            if isinstance(read, DamagedRowError):
                found.append(f"{read}: left out of `greenai runs list`")
            else:
                found.extend(f"run {read.start.run_id}: {problem}" for problem in read.problems)
    return found


def read_samples(conn: sqlite3.Connection, run_id: str) -> list[SampleRow]:
    """A run's samples in time order; unreadable sample rows are left out, with a warning."""
    if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
        raise RunNotFoundError(f"no run {run_id} in the ledger")
    # a ledger read-only at a schema before V4 has no samples.phase
    phase = "phase" if _has_column(conn, "samples", "phase") else "NULL AS phase"
    rows = conn.execute(
        f"SELECT t, device, kind, power_w, energy_j, provenance, {phase} FROM samples WHERE run_id = ?"
        " ORDER BY t, rowid",
        (run_id,),
    )
    problems: list[str] = []
    samples = _readable(
        rows,
        lambda row: SampleRow(
            t=_time(row["t"]),
            device=_text(row["device"]),
            kind=DeviceKind(row["kind"]),
            power_w=_num(row["power_w"]),
            energy_j=_num(row["energy_j"]),
            provenance=Provenance(row["provenance"]),
            phase=None if row["phase"] is None else _text(row["phase"]),
        ),
        "samples",
        problems,
    )
    if problems:
        log.warning("run %s: %s; left out (%s)", run_id, "; ".join(problems), _DAMAGE_HINT)
    return samples


def delete_run(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


def _read_runs(
    conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], warn: bool = True
) -> Iterator[RunRecord | DamagedRowError]:
    """The run of each of `rows`, in order, with its child rows, or the DamagedRowError that
    says why it cannot be read. The child rows of `_RUNS_PER_QUERY` runs are read at once,
    one query per child table (so a list costs a bounded number of queries per that many
    runs, not four per run)."""
    for first in range(0, len(rows), _RUNS_PER_QUERY):
        chunk = rows[first : first + _RUNS_PER_QUERY]
        run_ids = [_text(row["run_id"]) for row in chunk]
        children = {table: _child_rows(conn, table, run_ids) for table in _CHILD_SELECTS}
        for run_id, row in zip(run_ids, chunk, strict=True):
            try:
                yield _record(
                    row, run_id, {table: rows_of.get(run_id, []) for table, rows_of in children.items()}, warn
                )
            except DamagedRowError as e:
                yield e


def _child_rows(conn: sqlite3.Connection, table: str, run_ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """run_id -> the rows of `table` (a key of `_CHILD_SELECTS`, whose first column is run_id)
    of the runs `run_ids`, each run's in insertion order."""
    marks = ", ".join("?" * len(run_ids))
    rows = conn.cursor()
    rows.row_factory = None  # plain tuples, in the order of the select's columns
    rows.execute(f"{_CHILD_SELECTS[table]} WHERE run_id IN ({marks}) ORDER BY run_id, rowid", run_ids)
    return {run_id: list(of_run) for run_id, of_run in groupby(rows.fetchall(), key=itemgetter(0))}


def _record(row: sqlite3.Row, run_id: str, children: dict[str, list[tuple[Any, ...]]], warn: bool) -> RunRecord:
    """The run of `row` with its child rows (`children`: table -> the run's rows in insertion
    order). DamagedRowError if the run's own row is unreadable; unreadable child rows and a
    malformed environment are left out and listed in `problems`."""
    problems: list[str] = []
    tags = dict(
        _readable(
            children["tags"],
            lambda r: (_text(r[1]), _text(r[2])),
            "tags",
            problems,
        )
    )
    devices = _readable(
        children["devices"],
        lambda r: DeviceTotal(
            device=_text(r[1]),
            kind=DeviceKind(r[2]),
            energy_j=_num(r[3]),
            provenance=Provenance(r[4]),
            rel_uncertainty=_num(r[5]),
        ),
        "devices",
        problems,
    )
    phases = _readable(
        children["phases"],
        lambda r: PhaseTotal(
            phase=_text(r[1]),
            device=_text(r[2]),
            energy_j=_num(r[3]),
            duration_s=_num(r[4]),
            calls=int(r[5]),
        ),
        "phases",
        problems,
    )
    counters = dict(
        _readable(
            children["counters"],
            lambda r: (_text(r[1]), _num(r[2])),
            "counters",
            problems,
        )
    )
    environment = _environment(row["environment_json"], problems)
    try:
        status = row["status"]
        if status not in RunStatus.ALL:
            raise ValueError(f"unknown status {status!r}")
        start = RunStart(
            run_id=run_id,
            name=_text(row["name"]),
            started_at=_time(row["started_at"]),
            host=_text(row["host"]),
            pid=int(row["pid"]),
            tags=tags,
            environment=environment,
        )
        snapshot = RunSnapshot(
            duration_s=_num(row["duration_s"]),
            energy_j=_num(row["energy_j"]),
            rel_uncertainty=_num(row["rel_uncertainty"]),
            provenance=Provenance(row["provenance"]),
            facility_energy_j=_num(row["facility_energy_j"]),
            carbon_g=_num(row["carbon_g"]),
            cost=_num(row["cost"]),
            currency=_text(row["currency"]),
            devices=tuple(devices),
            phases=tuple(phases),
            counters=counters,
            carbon_source=_text(row["carbon_source"]),
            pue=_num(row["pue"]),
            coload=_coload(row, problems),
        )
        command, exit_code = _command(row, problems), _exit_code(row, problems)  # before `problems` is taken
        record = RunRecord(
            start=start,
            status=status,
            ended_at=None if row["ended_at"] is None else _time(row["ended_at"]),
            updated_at=_time(row["updated_at"]),
            snapshot=snapshot,
            problems=tuple(problems),
            command=command,
            exit_code=exit_code,
        )
    except _ROW_ERRORS as e:
        raise DamagedRowError(f"run {run_id} in the ledger is damaged and cannot be read ({e})") from None
    if problems and warn:
        log.warning("run %s is read without what is damaged in it: %s (%s)", run_id, "; ".join(problems), _DAMAGE_HINT)
    return record


def _readable(rows: Any, build: Callable[[Any], R], table: str, problems: list[str]) -> list[R]:
    """`build(row)` for each row; a row it cannot build is counted in `problems` and left out."""
    built: list[R] = []
    bad: list[str] = []
    for row in rows:
        try:
            built.append(build(row))
        except _ROW_ERRORS as e:
            bad.append(str(e))
    if bad:
        problems.append(f"{len(bad)} unreadable {table} row(s) left out ({bad[0]})")
    return built


def _environment(raw: object, problems: list[str]) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, (str, bytes)) else None
    except _ROW_ERRORS:
        value = None
    if isinstance(value, dict):
        return value
    problems.append("its environment_json is not a JSON object: environment left out")
    return {}


def _coload(row: sqlite3.Row, problems: list[str]) -> CoLoadSummary | None:
    """The run's co-load summary; None for a run without one (before schema v7, a ledger
    read-only at an older schema, a machine where it could not be read)."""
    if "coload_seconds" not in row.keys() or row["coload_seconds"] is None:
        return None
    try:
        return CoLoadSummary(
            median_cores=_num(row["coload_median_cores"]),
            max_cores=_num(row["coload_max_cores"]),
            steal_median_cores=_num(row["steal_median_cores"]),
            steal_max_cores=_num(row["steal_max_cores"]),
            busy_share=_num(row["coload_busy_share"]),
            threshold_cores=_num(row["coload_threshold_cores"]),
            seconds=_num(row["coload_seconds"]),
        )
    except _ROW_ERRORS as e:
        problems.append(f"its co-load is unreadable ({e}): left out")
        return None


def _command(row: sqlite3.Row, problems: list[str]) -> tuple[str, ...] | None:
    """The argv `greenai run` recorded (schema v8); None for other runs."""
    raw = row["command_json"] if "command_json" in row.keys() else None
    if raw is None:
        return None
    try:
        argv = json.loads(raw)
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ValueError("not a list of strings")
    except ValueError as e:
        problems.append(f"its command line is unreadable ({e}): left out")
        return None
    return tuple(argv)


def _exit_code(row: sqlite3.Row, problems: list[str]) -> int | None:
    raw = row["exit_code"] if "exit_code" in row.keys() else None
    if raw is None or (isinstance(raw, int) and not isinstance(raw, bool)):
        return raw
    problems.append(f"its exit code is unreadable ({raw!r}): left out")
    return None


def set_command(conn: sqlite3.Connection, run_id: str, argv: Sequence[str]) -> None:
    """Record the command line a run tracks (`greenai run`)."""
    conn.execute("UPDATE runs SET command_json = ? WHERE run_id = ?", (json.dumps(list(argv)), run_id))


def set_exit_code(conn: sqlite3.Connection, run_id: str, exit_code: int) -> None:
    """Record how the tracked program ended (its exit code; 128+N when killed by signal N)."""
    conn.execute("UPDATE runs SET exit_code = ? WHERE run_id = ?", (int(exit_code), run_id))


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    found = conn.execute("SELECT 1 FROM pragma_table_info(?) WHERE name = ?", (table, column)).fetchone()
    return found is not None


def _num(value: object) -> float:
    """SQLite stores NaN as NULL; read it back as NaN. A value that is not a number raises
    ValueError (the row is damaged)."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{value!r} is not a number")


def _time(value: object) -> float:
    """A unix time that can be shown as a date."""
    t = _num(value)
    datetime.fromtimestamp(t, tz=UTC)  # ValueError / OverflowError for NaN, inf or out of range
    return t


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None:
        raise ValueError("a text value is NULL")
    return str(value)
