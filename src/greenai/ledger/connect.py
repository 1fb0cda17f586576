"""Opening a ledger file safely, and translating SQLite errors into LedgerError.

Nothing is written to the file before it has been recognised as a healthy greenai ledger
(or an empty file): a corrupt or foreign file is reported, never repaired or replaced. That
includes a foreign file left with a journal (`-journal` or `-wal`): SQLite would roll it
back or check it in on open, so the file is looked at first through a read-only, lock-free
view and refused without a byte changed (`inspect_file`).

Opening checks only what is cheap (the header, the greenai identity and schema version,
every table the schema needs, the root of every table); the full check of every page is
`greenai runs check` (`greenai.ledger.check.check_ledger`).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from greenai.errors import LedgerError
from greenai.ledger.schema import APP, MIGRATIONS, check_identity, migrate, missing_schema

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
_FIRST_BACKOFF_S = 0.01
_MAX_BACKOFF_S = 1.0
FIX_HINT = "move it aside or point GREENAI_LEDGER at another file"
PERMISSION_HINT = "fix its permissions or point GREENAI_LEDGER at another file"
CHECK_HINT = "`greenai runs check` runs a full check"
SQLITE_MAGIC = b"SQLite format 3\x00"

# Primary result codes (https://www.sqlite.org/rescode.html).
_PERM, _BUSY, _LOCKED, _READONLY, _CORRUPT, _CANTOPEN, _AUTH, _NOTADB = 3, 5, 6, 8, 11, 14, 23, 26
# Extended codes: a read-only connection met a hot rollback journal; it could not set up the
# WAL index (-shm) because the directory is not writable.
_READONLY_ROLLBACK, _READONLY_CANTINIT, _READONLY_DIRECTORY = 776, 1288, 1544


class _Connection(sqlite3.Connection):
    """A connection that remembers which file it has open (see `_open_here`)."""

    file_id: tuple[int, int] | None = None

    def close(self) -> None:
        self.file_id = None
        super().close()


_connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
_connections_lock = threading.Lock()


def open_connection(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Open, check and migrate the ledger at `path`; return an autocommit connection.

    Journal mode WAL (readers never block the writer), synchronous=NORMAL (a commit
    survives a process crash; only an OS crash may lose the last transactions),
    foreign keys on, busy timeout 30 s (`timeout=`).

    `read_only`: the file must exist; it is opened with SQLite's `mode=ro` and never written
    (not migrated, not switched to WAL); any write through the connection fails.
    """
    if read_only:
        _ensure_readable(path)
    else:
        _ensure_accessible(path)
    inspect_file(path)
    if read_only:
        return connect_read_only(path, prepare=_prepare_read_only)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, factory=_Connection
        )
    except sqlite3.Error as e:
        raise _translate(e, path) from e
    try:
        _track(conn, path)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        # Some steps (switching to WAL on a fresh file) get SQLITE_BUSY without waiting on
        # the busy handler when processes open the file together; all steps are idempotent.
        retry_while_busy(lambda: _prepare(conn, path), path)
        _track(conn, path)  # a new file exists now
    except BaseException:
        conn.close()
        raise
    return conn


def connect_read_only(
    path: Path, prepare: Callable[[sqlite3.Connection, Path], object] | None = None
) -> sqlite3.Connection:
    """A `mode=ro` connection to `path`, `prepare`d (checked) under the busy retries.

    A WAL ledger in a directory this user cannot write has no WAL index (-shm) to share;
    when it has no -wal either (it was closed cleanly) nothing is pending, and it is read as
    an immutable file instead.
    """
    check = prepare or _probe
    try:
        return _connect_checked(path, "mode=ro", check)
    except LedgerError as e:
        code = getattr(e.__cause__, "sqlite_errorcode", None)
        # no -shm can be made: SQLITE_READONLY_DIRECTORY (a read-only directory), or CANTOPEN (immutable)
        if code not in (_READONLY_CANTINIT, _READONLY_DIRECTORY, _CANTOPEN) or _sidecar(path, "-wal").exists():
            raise
    return _connect_checked(path, "mode=ro&immutable=1", check)


def _connect_checked(path: Path, query: str, check: Callable[[sqlite3.Connection, Path], object]) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            _uri(path, query),
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
    except sqlite3.Error as e:
        raise _translate(e, path) from e
    try:
        _track(conn, path)
        conn.row_factory = sqlite3.Row
        retry_while_busy(lambda: check(conn, path), path)
    except BaseException:
        conn.close()
        raise
    return conn


def writable(path: Path) -> bool:
    """True if this process may write the ledger file and create its -wal beside it."""
    return os.access(path, os.R_OK | os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def inspect_file(path: Path) -> None:
    """Refuse a file that is not SQLite or is another program's database, before SQLite
    opens it for writing (which would roll back or check in a journal it left behind).

    Reads the header, then the schema through an immutable view (no locks, no journal
    applied, nothing written). Only when that view shows no greenai ledger and a journal
    lies beside the file does it look through SQLite's locking, read-only: a hot rollback
    journal is then refused rather than rolled back; a WAL is read, not checked in.

    Skipped for a file a connection of this process has open (it was inspected then):
    closing a descriptor of it opened outside SQLite's locking would drop that connection's
    POSIX locks (https://www.sqlite.org/howtocorrupt.html, section 2.2).
    """
    if _open_here(path):
        return
    try:
        with path.open("rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as e:
        raise LedgerError(f"cannot read ledger {path}: {e.strerror or e}; {PERMISSION_HINT}") from e
    if header and header != SQLITE_MAGIC:
        raise LedgerError(f"ledger {path} is corrupt or not SQLite (its header is not SQLite's); {FIX_HINT}")
    journals = [j for j in (_sidecar(path, "-wal"), _sidecar(path, "-journal")) if j.exists()]
    view = _immutable_view(path) if header else "empty"
    if view == "foreign":
        raise _foreign(path, journals)
    if view == "greenai" or not journals:
        return
    _locked_view(path, journals)


def _immutable_view(path: Path) -> str | None:
    """'greenai', 'foreign' or 'empty' as the main file alone shows it; None if it could not
    be read (a concurrent checkpoint, a page of a half-done transaction)."""
    try:
        conn = sqlite3.connect(_uri(path, "mode=ro&immutable=1"), uri=True, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return "empty"
        if "greenai_meta" not in tables:
            return "foreign"
        app = conn.execute("SELECT value FROM greenai_meta WHERE key = 'app'").fetchone()
        return "greenai" if app is not None and app[0] == APP else None
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _locked_view(path: Path, journals: list[Path]) -> None:
    """Identify the file as SQLite shows it with its journal, without writing: a read-only
    connection refuses to roll back a hot journal (SQLITE_READONLY_ROLLBACK) and never
    checks a WAL in."""
    try:
        conn = sqlite3.connect(_uri(path, "mode=ro"), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        return  # the writable open that follows reports it
    try:
        retry_while_busy(lambda: check_identity(conn, path, len(MIGRATIONS)), path)
    except LedgerError as e:
        code = getattr(e.__cause__, "sqlite_errorcode", None)
        if code == _READONLY_ROLLBACK:
            raise LedgerError(
                f"ledger {path} is not recognisably a greenai ledger and has a journal of an interrupted write "
                f"({journals[-1].name}) that opening it would roll back; left untouched: open it with the program "
                f"that wrote it, or {FIX_HINT}"
            ) from None
        if e.__cause__ is None:  # refused by check_identity: foreign or an unknown version
            raise
        # other SQLite errors (e.g. no WAL index in a read-only directory): the open that follows reports them
    finally:
        conn.close()


def _track(conn: _Connection, path: Path) -> None:
    conn.file_id = _file_id(path)
    with _connections_lock:
        _connections.add(conn)


def _open_here(path: Path) -> bool:
    """True if a connection opened here (and not closed) has this very file open."""
    file_id = _file_id(path)
    with _connections_lock:
        return file_id is not None and any(c.file_id == file_id for c in list(_connections))


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _foreign(path: Path, journals: list[Path]) -> LedgerError:
    left = f" (left untouched with its {', '.join(j.name for j in journals)})" if journals else ""
    return LedgerError(
        f"ledger {path} is an SQLite database but not a greenai ledger{left}; point GREENAI_LEDGER at another file"
    )


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _uri(path: Path, query: str) -> str:
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


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
    if code == _CORRUPT:
        return LedgerError(f"ledger {path} is corrupt or not SQLite ({error}); {FIX_HINT} ({CHECK_HINT})")
    if code == _NOTADB:
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
    _check_cheaply(conn, path)
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("ledger %s: WAL journal unavailable (mode %s); writers will wait longer", path, mode)
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn, path)


def _prepare_read_only(conn: sqlite3.Connection, path: Path) -> None:
    version = _check_cheaply(conn, path)
    if version == 0:
        raise LedgerError(f"ledger {path} is empty: track a run first (e.g. `greenai demo`)")
    if version < len(MIGRATIONS):
        log.warning(
            "ledger %s is at schema v%d and read-only, so it is read as it is (this greenai writes v%d)",
            path,
            version,
            len(MIGRATIONS),
        )


def _check_cheaply(conn: sqlite3.Connection, path: Path) -> int:
    """What can be checked in a few milliseconds whatever the file's size: the identity and
    version, the tables and columns that version must have, and the root page of every
    table (a damaged root fails here, as SQLITE_CORRUPT). Returns the schema version."""
    version = check_identity(conn, path, len(MIGRATIONS))
    if version == 0:
        return 0
    missing = missing_schema(conn, version)
    if missing:
        raise LedgerError(
            f"ledger {path} is a greenai ledger (schema v{version}) but lacks {', '.join(missing)}: "
            f"every write would fail; it was damaged or edited; {FIX_HINT} ({CHECK_HINT})"
        )
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        # names come from sqlite_master, quoted as identifiers
        conn.execute(f'SELECT 1 FROM "{table.replace(chr(34), chr(34) * 2)}" NOT INDEXED LIMIT 1').fetchall()
    return version


def _probe(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


def _ensure_readable(path: Path) -> None:
    try:
        if not path.is_file():
            raise LedgerError(f"no ledger at {path} (or it is not a file)")
        if not os.access(path, os.R_OK):
            raise LedgerError(f"permission denied: cannot read ledger {path}; {PERMISSION_HINT}")
    except OSError as e:
        raise LedgerError(f"cannot open ledger {path}: {e.strerror or e}; {PERMISSION_HINT}") from e


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
