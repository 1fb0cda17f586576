"""The `optimize_candidates` table: every candidate a search built, measured or skipped."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from greenai.errors import RunNotFoundError
from greenai.ledger.lookup import matching_ids, resolve
from greenai.ledger.store import Ledger

COLUMNS = (
    "study_id",
    "name",
    "created_at",
    "transforms_json",
    "status",
    "reason",
    "run_id",
    "energy_per_sample_j",
    "rel_uncertainty",
    "provenance",
    "time_per_sample_s",
    "quality",
    "quality_name",
    "size_bytes",
    "parameters",
    "nonzero_parameters",
    "notes_json",
)


@dataclass(frozen=True)
class CandidateRow:
    """One candidate of a study as stored: energy, its provenance and the quality are set
    only for measured candidates; `run_id` is the study's measurement run."""

    study_id: str
    name: str
    status: str  # measured | skipped | failed
    transforms: tuple[str, ...] = ()
    reason: str = ""
    run_id: str | None = None
    energy_per_sample_j: float | None = None
    rel_uncertainty: float | None = None
    provenance: str = ""
    time_per_sample_s: float | None = None
    quality: float | None = None
    quality_name: str = ""
    size_bytes: int | None = None
    parameters: int | None = None
    nonzero_parameters: int | None = None
    notes: tuple[str, ...] = ()
    created_at: float = 0.0


def record_candidates(ledger: Ledger, rows: list[CandidateRow]) -> None:
    """Insert (or replace) the rows of one study in a single transaction."""
    now = time.time()

    def work(conn: sqlite3.Connection) -> None:
        conn.executemany(
            f"INSERT OR REPLACE INTO optimize_candidates ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)})",
            [
                (
                    r.study_id,
                    r.name,
                    r.created_at or now,
                    json.dumps(list(r.transforms)),
                    r.status,
                    r.reason,
                    r.run_id,
                    r.energy_per_sample_j,
                    r.rel_uncertainty,
                    r.provenance,
                    r.time_per_sample_s,
                    r.quality,
                    r.quality_name,
                    r.size_bytes,
                    r.parameters,
                    r.nonzero_parameters,
                    json.dumps(list(r.notes)),
                )
                for r in rows
            ],
        )

    ledger.transaction(work, write=True)


def study_candidates(ledger: Ledger, study_id: str) -> list[CandidateRow]:
    """The rows of the studies `study_id` names (ledger/lookup.py's rule: the study with
    exactly that id, else those whose id starts with it, at most 11), in the order they were
    recorded; callers check that it named one study (`one_study`)."""

    def work(conn: sqlite3.Connection) -> list[tuple]:
        return _rows_of(conn, matching_ids(conn, "optimize_candidates", "study_id", study_id))

    return [_row(values) for values in ledger.transaction(work, write=False)]


def one_study(ledger: Ledger, study_id: str) -> list[CandidateRow]:
    """The rows of the one study `study_id` names (an id or a unique prefix); RunNotFoundError
    when no study or more than one matches."""

    def work(conn: sqlite3.Connection) -> list[tuple]:
        found = resolve(
            conn, "optimize_candidates", "study_id", study_id, what="optimization study", ambiguous=RunNotFoundError
        )
        return _rows_of(conn, [found])

    try:
        return [_row(values) for values in ledger.transaction(work, write=False)]
    except RunNotFoundError as e:
        raise RunNotFoundError(f"{e} (see `greenai studies`)") from None


def _rows_of(conn: sqlite3.Connection, study_ids: list[str]) -> list[tuple]:
    if not study_ids:
        return []
    marks = ", ".join("?" * len(study_ids))
    return conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM optimize_candidates WHERE study_id IN ({marks}) ORDER BY created_at, rowid",
        study_ids,
    ).fetchall()


def list_studies(ledger: Ledger) -> list[tuple[str, float, int]]:
    """(study_id, first created_at, number of candidates), newest first."""

    def work(conn: sqlite3.Connection) -> list[tuple[str, float, int]]:
        return conn.execute(
            "SELECT study_id, min(created_at), count(*) FROM optimize_candidates "
            "GROUP BY study_id ORDER BY min(created_at) DESC"
        ).fetchall()

    return ledger.transaction(work, write=False)


def study_run_names(ledger: Ledger) -> dict[str, str]:
    """study_id -> the name of the run that measured it (`optimize FILE.py:TASK` from the
    CLI: it names the task); studies whose run was deleted are left out."""

    def work(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT c.study_id, min(r.name) FROM optimize_candidates c JOIN runs r ON r.run_id = c.run_id "
            "GROUP BY c.study_id"
        ).fetchall()

    return dict(ledger.transaction(work, write=False))


def _row(values: tuple) -> CandidateRow:
    d = dict(zip(COLUMNS, values))
    return CandidateRow(
        study_id=d["study_id"],
        name=d["name"],
        status=d["status"],
        transforms=tuple(json.loads(d["transforms_json"])),
        reason=d["reason"],
        run_id=d["run_id"],
        energy_per_sample_j=d["energy_per_sample_j"],
        rel_uncertainty=d["rel_uncertainty"],
        provenance=d["provenance"],
        time_per_sample_s=d["time_per_sample_s"],
        quality=d["quality"],
        quality_name=d["quality_name"],
        size_bytes=d["size_bytes"],
        parameters=d["parameters"],
        nonzero_parameters=d["nonzero_parameters"],
        notes=tuple(json.loads(d["notes_json"])),
        created_at=d["created_at"],
    )
