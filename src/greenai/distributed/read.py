"""Reading distributed jobs back from a ledger."""

from __future__ import annotations

from pathlib import Path

from greenai.ledger import distributed as rows
from greenai.ledger.distributed import JobRecord
from greenai.ledger.store import Ledger, default_ledger_path


def read_job(job_id: str, ledger: Path | str | None = None) -> JobRecord:
    """The job with this id (or unique prefix) from `ledger` (default: the usual ledger)."""
    with Ledger.open_existing(Path(ledger) if ledger is not None else default_ledger_path()) as db:
        return db.transaction(lambda conn: rows.read_job(conn, job_id), write=False)


def list_jobs(ledger: Path | str | None = None, limit: int = 50) -> list[JobRecord]:
    """Jobs newest first."""
    with Ledger.open_existing(Path(ledger) if ledger is not None else default_ledger_path()) as db:
        return db.transaction(lambda conn: rows.list_jobs(conn, limit), write=False)
