"""`Ledger`: the SQLite store of runs, written as a run goes and read by reports and the CLI.

Several processes may write the same file: every write is one `BEGIN IMMEDIATE`
transaction, retried with backoff while another writer holds the lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from greenai.errors import LedgerError
from greenai.ledger import queries
from greenai.ledger.connect import open_connection, retry_while_busy
from greenai.ledger.reconcile import find_abandoned, mark_incomplete
from greenai.ledger.records import (
    RunRecord,
    RunSnapshot,
    RunStart,
    RunStatus,
    SampleRow,
)
from greenai.ledger.run_forecasts import ForecastRow, insert_forecast

T = TypeVar("T")


def default_ledger_path() -> Path:
    """`$GREENAI_LEDGER`, else `$XDG_DATA_HOME/greenai/ledger.db`, else
    `~/.local/share/greenai/ledger.db` (a relative XDG_DATA_HOME is ignored, as the
    XDG spec asks)."""
    explicit = os.environ.get("GREENAI_LEDGER")
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "greenai" / "ledger.db"


class Ledger:
    """The run ledger at `path` (created, checked and migrated on open).

    Thread-safety: one connection shared by all threads, guarded by a lock held for a
    whole transaction. The tracker's main thread (begin/end) and its sampler thread
    (flush) use the same Ledger; the lock keeps their transactions from interleaving on
    the connection, and `close()` can close the one connection deterministically, which
    a connection per thread (left open in each thread-local) would not allow.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_connection(self.path)
        try:
            self._reconcile()
        except BaseException:
            self.close()
            raise

    # -- writing -------------------------------------------------------------------

    def begin_run(self, start: RunStart) -> None:
        """Record a new run as `running`."""
        self._transaction(lambda conn: queries.insert_run(conn, start, time.time()), write=True)

    def flush(
        self, run_id: str, snapshot: RunSnapshot, new_samples: Sequence[SampleRow], forecast: ForecastRow | None = None
    ) -> None:
        """Append `new_samples` (and the run's latest forecast) and replace the run's totals,
        in one transaction."""

        def work(conn: sqlite3.Connection) -> None:
            queries.write_snapshot(conn, run_id, snapshot, new_samples, time.time())
            queries.revive(conn, run_id)
            if forecast is not None:
                insert_forecast(conn, run_id, forecast)

        self._transaction(work, write=True)

    def end_run(
        self,
        run_id: str,
        status: str,
        ended_at: float,
        snapshot: RunSnapshot,
        new_samples: Sequence[SampleRow] = (),
    ) -> None:
        """Write the final totals and the run's final status, in one transaction."""
        if status not in RunStatus.ALL or status == RunStatus.RUNNING:
            raise ValueError(f"a run cannot end with status {status!r}")

        def work(conn: sqlite3.Connection) -> None:
            queries.write_snapshot(conn, run_id, snapshot, new_samples, time.time())
            queries.set_status(conn, run_id, status, ended_at)

        self._transaction(work, write=True)

    def delete_run(self, id_or_prefix: str) -> str:
        """Delete a run and all its rows; return its full id."""

        def work(conn: sqlite3.Connection) -> str:
            run_id = queries.resolve_id(conn, id_or_prefix)
            queries.delete_run(conn, run_id)
            return run_id

        return self._transaction(work, write=True)

    # -- reading -------------------------------------------------------------------

    def list_runs(
        self,
        limit: int = 50,
        name: str | None = None,
        status: str | None = None,
        since: float | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, without samples; `since` is a unix time (started at or after)."""
        self._reconcile()
        return self._transaction(lambda conn: queries.list_records(conn, limit, name, status, since), write=False)

    def get_run(self, id_or_prefix: str) -> RunRecord:
        """The run with this id or unique id prefix (RunNotFoundError, or LedgerError if
        the prefix is ambiguous)."""
        self._reconcile()
        return self._transaction(
            lambda conn: queries.read_record(conn, queries.resolve_id(conn, id_or_prefix)),
            write=False,
        )

    def samples(self, run_id: str) -> list[SampleRow]:
        """All samples of a run, in time order."""
        return self._transaction(lambda conn: queries.read_samples(conn, run_id), write=False)

    # -- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------

    def transaction(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work(conn)` in one transaction (retried while another writer holds the
        lock); for the modules that own the optimize, tuning and schedule tables."""
        return self._transaction(work, write=write)

    def _reconcile(self) -> None:
        """Mark runs whose process is gone as incomplete (keeping all their rows)."""
        abandoned = self._transaction(find_abandoned, write=False)
        if abandoned:
            self._transaction(lambda conn: mark_incomplete(conn, abandoned), write=True)

    def _transaction(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` in one transaction; the whole of it is retried while another
        connection holds the lock (see `retry_while_busy`)."""
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        with self._lock:
            if self._conn is None:
                raise LedgerError(f"ledger {self.path} is closed")
            conn = self._conn

            def attempt() -> T:
                conn.execute(begin)
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise
                return result

            return retry_while_busy(attempt, self.path)
