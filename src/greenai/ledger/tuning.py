"""The `tuning_trials` table: every setting an online tuner profiled, and which it kept.

Written by `greenai.tune.tuner.OnlineTuner` at the end of profiling, read by reports.
A trial's run_id is kept only if that run is in this ledger (a tracker with store=False has
none), since the column references `runs`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from greenai.errors import LedgerError
from greenai.ledger.store import Ledger

_COLUMNS = (
    "tuning_id",
    "trial",
    "run_id",
    "created_at",
    "setting_json",
    "iterations",
    "warmup_iterations",
    "work",
    "duration_s",
    "energy_j",
    "rel_uncertainty",
    "provenance",
    "objective",
    "cost",
    "chosen",
    "notes",
)


@dataclass(frozen=True, slots=True)
class TuningTrialRow:
    """One profiled setting. Units: seconds, joules; `cost` in the objective's unit per unit
    of work (None: infeasible or failed, `notes` says why)."""

    tuning_id: str
    trial: int
    run_id: str | None
    created_at: float
    setting: dict[str, Any]
    iterations: int
    warmup_iterations: int
    work: float | None
    duration_s: float | None
    energy_j: float | None
    rel_uncertainty: float | None
    provenance: str
    objective: str
    cost: float | None
    chosen: bool
    notes: str = ""


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def write_trials(ledger: Ledger, rows: Sequence[TuningTrialRow]) -> None:
    """Insert (or replace, by tuning_id and trial) `rows` in one transaction."""

    def work(conn: sqlite3.Connection) -> None:
        for r in rows:
            run_id = None
            if r.run_id is not None:
                found = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (r.run_id,)).fetchone()
                run_id = r.run_id if found else None
            try:
                setting_json = json.dumps(r.setting, sort_keys=True)
            except (TypeError, ValueError) as e:
                raise LedgerError(
                    f"tuning {r.tuning_id[:8]} trial {r.trial}: setting is not JSON-serialisable: {e}"
                ) from e
            conn.execute(
                f"INSERT OR REPLACE INTO tuning_trials ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                (
                    r.tuning_id,
                    r.trial,
                    run_id,
                    r.created_at,
                    setting_json,
                    r.iterations,
                    r.warmup_iterations,
                    _finite(r.work),
                    _finite(r.duration_s),
                    _finite(r.energy_j),
                    _finite(r.rel_uncertainty),
                    r.provenance,
                    r.objective,
                    _finite(r.cost),
                    int(r.chosen),
                    r.notes,
                ),
            )

    ledger.transaction(work, write=True)


def read_trials(ledger: Ledger, tuning_id: str | None = None, run_id: str | None = None) -> list[TuningTrialRow]:
    """Trials of one tuning (or of all tunings of a run, or all), oldest first."""
    where, args = [], []
    if tuning_id is not None:
        where.append("tuning_id = ?")
        args.append(tuning_id)
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM tuning_trials"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY created_at, tuning_id, trial"
    )

    def work(conn: sqlite3.Connection) -> list[TuningTrialRow]:
        return [_row(values) for values in conn.execute(sql, args)]

    return ledger.transaction(work, write=False)


def _row(values: Sequence[Any]) -> TuningTrialRow:
    d = dict(zip(_COLUMNS, values))
    return TuningTrialRow(
        tuning_id=d["tuning_id"],
        trial=int(d["trial"]),
        run_id=d["run_id"],
        created_at=float(d["created_at"]),
        setting=json.loads(d["setting_json"]),
        iterations=int(d["iterations"]),
        warmup_iterations=int(d["warmup_iterations"]),
        work=d["work"],
        duration_s=d["duration_s"],
        energy_j=d["energy_j"],
        rel_uncertainty=d["rel_uncertainty"],
        provenance=d["provenance"],
        objective=d["objective"],
        cost=d["cost"],
        chosen=bool(d["chosen"]),
        notes=d["notes"],
    )
