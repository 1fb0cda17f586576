"""Opening a ledger file safely, and translating SQLite errors into LedgerError.

Nothing is written to the file before it has been recognised as a healthy greenai ledger
(or an empty file): a corrupt or foreign file is reported, never repaired or replaced.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from greenai.errors import LedgerError
from greenai.ledger.schema import MIGRATIONS, check_identity, migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
_FIRST_BACKOFF_S = 0.01
_MAX_BACKOFF_S = 1.0
FIX_HINT = "move it aside or point GREENAI_LEDGER at another file"
PERMISSION_HINT = "fix its permissions or point GREENAI_LEDGER at another file"

# Primary result codes (https://www.sqlite.org/rescode.html).
_PERM, _BUSY, _LOCKED, _READONLY, _CORRUPT, _CANTOPEN, _AUTH, _NOTADB = 3, 5, 6, 8, 11, 14, 23, 26


def open_connection(path: Path) -> sqlite3.Connection:
    """Open, check and migrate the ledger at `path`; return an autocommit connection.

    Journal mode WAL (readers never block the writer), synchronous=NORMAL (a commit
    survives a process crash; only an OS crash may lose the last transactions),
    foreign keys on, busy timeout 30 s (`timeout=`).
    """
    _ensure_accessible(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise _translate(e, path) from e
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        # Some steps (switching to WAL on a fresh file) get SQLITE_BUSY without waiting on
        # the busy handler when processes open the file together; all steps are idempotent.
        retry_while_busy(lambda: _prepare(conn, path), path)
    except BaseException:
        conn.close()
        raise
    return conn


def retry_while_busy(action: Callable[[], T], path: Path) -> T:
    """Run `action`, retrying while SQLite reports busy/locked, with jittered exponential
    backoff, for up to BUSY_TIMEOUT_S. Other SQLite errors become LedgerError."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = _FIRST_BACKOFF_S
    while True:
        try:
            return action()
        except sqlite3.Error as e:
            if not _is_busy(e) or time.monotonic() + delay > deadline:
                raise _translate(e, path) from e
            time.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, _MAX_BACKOFF_S)


def _translate(error: sqlite3.Error, path: Path) -> LedgerError:
    """The one place where SQLite errors become the project's own, one-line, actionable."""
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_NOTADB, _CORRUPT):
        return LedgerError(f"ledger {path} is corrupt or not SQLite ({error}); {FIX_HINT}")
    if code in (_PERM, _READONLY, _CANTOPEN, _AUTH):
        return LedgerError(f"cannot write ledger {path} ({error}); {PERMISSION_HINT}")
    if code in (_BUSY, _LOCKED):
        return LedgerError(f"ledger {path} is locked by another process ({error}); try again")
    return LedgerError(f"ledger {path}: {error}")


def _is_busy(error: sqlite3.Error) -> bool:
    """True for SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock; retry."""
    return ((getattr(error, "sqlite_errorcode", None) or 0) & 0xFF) in (_BUSY, _LOCKED)


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file, then (only then) switch it to WAL and migrate it."""
    _check_integrity(conn, path)
    check_identity(conn, path, len(MIGRATIONS))
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("ledger %s: WAL journal unavailable (mode %s); writers will wait longer", path, mode)
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn, path)


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if [tuple(row) for row in rows] != [("ok",)]:
        raise LedgerError(f"ledger {path} is corrupt (quick_check: {rows[0][0]}); {FIX_HINT}")


def _ensure_accessible(path: Path) -> None:
    """Fail early, naming the path, where SQLite would only say 'unable to open'."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise LedgerError(f"permission denied: cannot read and write ledger {path}; {PERMISSION_HINT}")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise LedgerError(
                f"permission denied: ledger directory {path.parent} is not writable "
                f"(SQLite keeps {path.name}-wal beside the ledger); {PERMISSION_HINT}"
            )
    except OSError as e:
        raise LedgerError(f"cannot open ledger {path}: {e.strerror or e}; {PERMISSION_HINT}") from e
