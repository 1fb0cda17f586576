"""The full check of a ledger file (`greenai runs check`), read-only.

Opening a ledger checks only what is cheap (connect.py); this reads every page: SQLite's
`integrity_check`, rows that refer to runs no longer there, and every run's own rows as
greenai reads them back (queries.damaged_runs). It never writes, so it runs on a ledger
opened read-only, in use by trackers, or refused at open.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from greenai.errors import LedgerError
from greenai.ledger import queries
from greenai.ledger.connect import connect_read_only, inspect_file, retry_while_busy
from greenai.ledger.schema import MIGRATIONS, check_identity, missing_schema

MAX_PROBLEMS = 100


@dataclass(frozen=True)
class LedgerCheck:
    """What `check_ledger` found: `problems` is empty for a healthy ledger."""

    path: Path
    schema_version: int | None
    runs: int | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(path: Path, max_problems: int = MAX_PROBLEMS) -> LedgerCheck:
    """Check the whole ledger at `path` without writing it (LedgerError if it is missing or
    cannot be read at all); at most `max_problems` integrity problems are listed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LedgerError(f"no ledger at {path} (or it is not a file)")
    try:
        inspect_file(path)
    except LedgerError as e:
        return LedgerCheck(path, None, None, (str(e),))
    try:
        conn = connect_read_only(path)
    except LedgerError as e:
        return LedgerCheck(path, None, None, (str(e),))
    try:
        return retry_while_busy(lambda: _check(conn, path, max_problems), path)
    except LedgerError as e:
        return LedgerCheck(path, None, None, (str(e),))
    finally:
        conn.close()


def _check(conn: sqlite3.Connection, path: Path, max_problems: int) -> LedgerCheck:
    problems: list[str] = []
    conn.execute("BEGIN")  # one snapshot, while trackers may write
    try:
        integrity = [str(row[0]) for row in conn.execute(f"PRAGMA integrity_check({int(max_problems)})")]
        if integrity != ["ok"]:
            problems.extend(f"SQLite integrity_check: {line}" for line in integrity)
            return LedgerCheck(path, None, None, tuple(problems))
        try:
            version = check_identity(conn, path, len(MIGRATIONS))
        except LedgerError as e:
            return LedgerCheck(path, None, None, (str(e),))
        if version == 0:
            return LedgerCheck(path, 0, 0, ())
        missing = missing_schema(conn, version)
        problems.extend(f"schema v{version} lacks {m}" for m in missing)
        if missing:
            return LedgerCheck(path, version, None, tuple(problems))
        dangling: dict[str, int] = {}
        for row in conn.execute("PRAGMA foreign_key_check"):
            dangling[str(row[0])] = dangling.get(str(row[0]), 0) + 1
        problems.extend(
            f"{n} row(s) of {table} refer to a run that is not in the ledger" for table, n in sorted(dangling.items())
        )
        problems.extend(queries.damaged_runs(conn))
        runs = int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return LedgerCheck(path, version, runs, tuple(problems))
