"""The `forecasts` table: what a run predicted for itself as it went."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol, TypeVar

T = TypeVar("T")


class Transactional(Protocol):
    """What this module needs of a `greenai.ledger.store.Ledger` (which imports this module)."""

    def transaction(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T: ...


@dataclass(frozen=True)
class ForecastRow:
    """One forecast: made `made_at_s` seconds into the run, at `progress` (0..1) of the plan."""

    made_at_s: float
    progress: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    duration_s: float
    carbon_g: float
    cost: float
    provenance: str

    @classmethod
    def of(cls, forecast: object) -> ForecastRow:
        """From a `greenai.tracking.forecast.Forecast`."""
        values = {f.name: getattr(forecast, f.name) for f in fields(cls) if f.name != "provenance"}
        return cls(**values, provenance=forecast.provenance.value)  # type: ignore[attr-defined]


COLUMNS = tuple(f.name for f in fields(ForecastRow))


def insert_forecast(conn: sqlite3.Connection, run_id: str, row: ForecastRow) -> None:
    """Inside a write transaction (the tracker's flush)."""
    conn.execute(
        f"INSERT OR REPLACE INTO forecasts (run_id, {', '.join(COLUMNS)}) "
        f"VALUES (?, {', '.join('?' for _ in COLUMNS)})",
        (run_id, *(getattr(row, c) for c in COLUMNS)),
    )


def run_forecasts(ledger: Transactional, run_id: str) -> list[ForecastRow]:
    """A run's forecasts, oldest first (`run_id` must be the full id)."""

    def work(conn: sqlite3.Connection) -> list[tuple]:
        return conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM forecasts WHERE run_id = ? ORDER BY made_at_s", (run_id,)
        ).fetchall()

    return [ForecastRow(*values) for values in ledger.transaction(work, write=False)]
