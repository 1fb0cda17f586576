"""`Ledger`: the SQLite store of runs, written as a run goes and read by reports and the CLI.

Several processes may write the same file: every write is one `BEGIN IMMEDIATE`
transaction, retried with backoff while another writer holds the lock. A tracker's flushes
and its final write pass `timeout_s`: they are retried (while the ledger is locked, and while
the disk is full or the write fails) for that long at most, then fail with LedgerError, so a
locked or full ledger never holds the tracked program up for longer.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from greenai.errors import LedgerError
from greenai.hardware.coload import CoLoadWindow
from greenai.ledger import queries
from greenai.ledger.connect import BUSY_TIMEOUT_S, open_connection, retry_while_busy, writable
from greenai.ledger.reconcile import as_marked, find_abandoned, mark_incomplete
from greenai.ledger.records import (
    RunRecord,
    RunSnapshot,
    RunStart,
    RunStatus,
    SampleRow,
)
from greenai.ledger.run_forecasts import ForecastRow, insert_forecast
from greenai.ledger.series import SampleSeries, read_series

T = TypeVar("T")

# SQLite primary result codes worth retrying within a bounded write: busy, locked, I/O error
# (a write refused, e.g. EFBIG past a file-size limit), full (ENOSPC)
_RETRYABLE = {5, 6, 10, 13}
_FIRST_BACKOFF_S = 0.02
_MAX_BACKOFF_S = 0.5


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

    `read_only=True` opens an existing ledger with SQLite's `mode=ro` and never writes it
    (no migration, no reconciliation written; runs whose process is gone are still read as
    `incomplete`); a write raises LedgerError.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_connection(self.path, read_only=read_only)
        try:
            self._reconcile()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open_existing(cls, path: Path) -> Ledger:
        """An existing ledger: read-write when this process may write it (and its directory),
        else read-only, so a ledger shared read-only (or on a read-only file system) can
        still be read; writing to it then raises LedgerError."""
        path = Path(path).expanduser()
        return cls(path, read_only=not writable(path))

    # -- writing -------------------------------------------------------------------

    def begin_run(self, start: RunStart) -> None:
        """Record a new run as `running`."""
        self._transaction(lambda conn: queries.insert_run(conn, start, time.time()), write=True)

    def flush(
        self,
        run_id: str,
        snapshot: RunSnapshot,
        new_samples: Sequence[SampleRow],
        forecast: ForecastRow | None = None,
        *,
        timeout_s: float | None = None,
        coload: Sequence[CoLoadWindow] = (),
    ) -> None:
        """Append `new_samples` (and the run's latest forecast, and its new co-load windows)
        and replace the run's totals, in one transaction (given up after `timeout_s`, if given).
        A run whose end is written already is left as it is (a late flush changes nothing)."""

        def work(conn: sqlite3.Connection) -> None:
            if not queries.write_snapshot(conn, run_id, snapshot, new_samples, time.time(), live_only=True):
                return
            queries.insert_coload(conn, run_id, coload)
            queries.revive(conn, run_id)
            if forecast is not None:
                insert_forecast(conn, run_id, forecast)

        self._write(work, timeout_s)

    def end_run(
        self,
        run_id: str,
        status: str,
        ended_at: float,
        snapshot: RunSnapshot,
        new_samples: Sequence[SampleRow] = (),
        *,
        timeout_s: float | None = None,
        coload: Sequence[CoLoadWindow] = (),
    ) -> None:
        """Write the final totals (and the last co-load windows) and the run's final status,
        in one transaction (retried for `timeout_s` at most, if given; LedgerError if it could
        not be written)."""
        if status not in RunStatus.ALL or status == RunStatus.RUNNING:
            raise ValueError(f"a run cannot end with status {status!r}")

        def work(conn: sqlite3.Connection) -> None:
            queries.write_snapshot(conn, run_id, snapshot, new_samples, time.time())
            queries.insert_coload(conn, run_id, coload)
            queries.set_status(conn, run_id, status, ended_at)

        self._write(work, timeout_s)

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
        abandoned = self._reconcile()
        return self._as_marked(
            self._transaction(lambda conn: queries.list_records(conn, limit, name, status, since), write=False),
            abandoned,
        )

    def count_runs(self, name: str | None = None, status: str | None = None, since: float | None = None) -> int:
        """How many runs `list_runs` would list with no limit."""
        return self._transaction(lambda conn: queries.count_records(conn, name, status, since), write=False)

    def set_command(self, run_id: str, argv: Sequence[str], timeout_s: float | None = None) -> None:
        """Record the command line the run tracks (`greenai run`), shown by `runs show`
        (given up after `timeout_s`, if given: LedgerError)."""
        self._write(lambda conn: queries.set_command(conn, run_id, argv), timeout_s)

    def set_exit_code(self, run_id: str, exit_code: int) -> None:
        """Record the tracked program's exit code (128+N: killed by signal N)."""
        self._transaction(lambda conn: queries.set_exit_code(conn, run_id, exit_code), write=True)

    def get_run(self, id_or_prefix: str) -> RunRecord:
        """The run with this id or unique id prefix (RunNotFoundError, or LedgerError if
        the prefix is ambiguous)."""
        abandoned = self._reconcile()
        record = self._transaction(
            lambda conn: queries.read_record(conn, queries.resolve_id(conn, id_or_prefix)),
            write=False,
        )
        return self._as_marked([record], abandoned)[0]

    def samples(self, run_id: str) -> list[SampleRow]:
        """All samples of a run, in time order."""
        return self._transaction(lambda conn: queries.read_samples(conn, run_id), write=False)

    def power_series(
        self, run_id: str, buckets: int = 1000, *, after: int | None = None, phases: bool = True
    ) -> SampleSeries:
        """A run's samples for a chart: per device, each of about `buckets` time buckets' first,
        lowest, highest and last sample (every sample of a short series), aggregated by SQLite
        (from the overview the ledger keeps as samples are written, or from the samples), with
        the phases per bucket and the cursor it was read at (the largest rowid of the run's rows
        read); `after`: only the rows written after that cursor. See ledger/series.py. Figures
        (energy, carbon) come from the run's totals, not from these points."""
        return self._transaction(lambda conn: read_series(conn, run_id, buckets, after, phases), write=False)

    def coload(self, run_id: str) -> list[CoLoadWindow]:
        """A run's co-load windows (CPUs other processes kept busy, about a second each), in
        time order; none for runs recorded before schema v7."""
        return self._transaction(lambda conn: queries.read_coload(conn, run_id), write=False)

    # -- lifetime ------------------------------------------------------------------

    def close(self, timeout_s: float | None = None) -> None:
        """Close the connection; with `timeout_s`, give up (leaving it open) if another
        thread of this process holds it longer than that."""
        if not self._lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            return
        try:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        finally:
            self._lock.release()

    def hold(self, timeout_s: float) -> bool:
        """Take the connection's lock (no transaction can then be under way in this process);
        False if another thread kept it for `timeout_s`. Around a fork: see tracker.py."""
        return self._lock.acquire(timeout=timeout_s)

    def release(self) -> None:
        self._lock.release()

    def abandon(self) -> sqlite3.Connection | None:
        """Forget the connection without touching it (in a forked child, where it belongs to
        the parent); returns it so that the caller can keep it from being closed."""
        conn, self._conn = self._conn, None
        self._lock = threading.Lock()
        return conn

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

    def write(self, work: Callable[[sqlite3.Connection], T], *, timeout_s: float) -> T:
        """Run `work(conn)` in one write transaction, retried with backoff while the ledger is
        locked or the write fails, for `timeout_s` at most (then LedgerError), as a tracker's
        flushes are; for the modules that own other tables (ledger/distributed.py's)."""
        return self._bounded(work, timeout_s)

    def read(self, work: Callable[[sqlite3.Connection], T], *, timeout_s: float) -> T:
        """Run `work(conn)` in one read transaction, waited for `timeout_s` at most in all (this
        process's other thread, SQLite's busy handler), then LedgerError; for readers that
        must not stall (a distributed job's writer reading the ranks' rows)."""
        return self._bounded(work, timeout_s, begin="BEGIN")

    def transaction(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work(conn)` in one transaction (retried while another writer holds the
        lock); for the modules that own the optimize, tuning and schedule tables."""
        return self._transaction(work, write=write)

    def _reconcile(self) -> list[tuple[str, float]]:
        """Mark runs whose process is gone as incomplete (keeping all their rows); return
        them (a read-only ledger is not marked: its records are shown so by `_as_marked`)."""
        abandoned = self._transaction(find_abandoned, write=False)
        if abandoned and not self.read_only:
            self._transaction(lambda conn: mark_incomplete(conn, abandoned), write=True)
        return abandoned

    def _as_marked(self, records: list[RunRecord], abandoned: list[tuple[str, float]]) -> list[RunRecord]:
        return as_marked(records, abandoned) if self.read_only else records

    def _write(self, work: Callable[[sqlite3.Connection], T], timeout_s: float | None) -> T:
        return self._transaction(work, write=True) if timeout_s is None else self._bounded(work, timeout_s)

    def _bounded(self, work: Callable[[sqlite3.Connection], T], timeout_s: float, begin: str = "BEGIN IMMEDIATE") -> T:
        """A write transaction (or, with `begin="BEGIN"`, a read) retried with jittered
        backoff while the ledger is locked or the write fails (disk full, I/O error), for
        `timeout_s` at most in all (waiting for this process's other thread included)."""
        started = time.monotonic()
        deadline = started + timeout_s
        if not self._lock.acquire(timeout=max(timeout_s, 0.0)):
            raise LedgerError(f"ledger {self.path}: still in use by this process after {timeout_s:g} s")
        try:
            if self._conn is None:
                raise LedgerError(f"ledger {self.path} is closed")
            conn = self._conn
            delay = _FIRST_BACKOFF_S
            attempts = 0
            try:
                while True:
                    attempts += 1
                    left = deadline - time.monotonic()
                    # SQLite's own busy handler waits (and backs off) on a lock, up to the deadline
                    conn.execute(f"PRAGMA busy_timeout = {max(int(left * 1000), 1)}")
                    try:
                        return _in_transaction(conn, begin, work)
                    except sqlite3.Error as e:
                        code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
                        if code not in _RETRYABLE:  # retrying cannot help: say so, not a wait that never was
                            raise LedgerError(f"ledger {self.path}: {e} (not retried)") from e
                        if time.monotonic() + delay > deadline:
                            tried_s = time.monotonic() - started
                            tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
                            raise LedgerError(f"ledger {self.path}: {e} (tried for {tried_s:.1f} s, {tries})") from e
                        time.sleep(delay * random.uniform(0.5, 1.0))
                        delay = min(delay * 2, _MAX_BACKOFF_S)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        finally:
            self._lock.release()

    def _transaction(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` in one transaction; the whole of it is retried while another
        connection holds the lock (see `retry_while_busy`)."""
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        with self._lock:
            if self._conn is None:
                raise LedgerError(f"ledger {self.path} is closed")
            conn = self._conn
            return retry_while_busy(lambda: _in_transaction(conn, begin, work), self.path)


def _in_transaction(conn: sqlite3.Connection, begin: str, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(conn)` between `begin` and COMMIT; rolled back if anything fails (a failed
    rollback is not reported: the error that caused it is the one that matters)."""
    conn.execute(begin)
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
        raise
    return result
