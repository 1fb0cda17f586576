"""Opening files: migration, newer schemas, corrupt, foreign and unwritable files."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from ledger_factories import make_samples, make_snapshot, make_start, raw

from greenai.errors import LedgerError
from greenai.ledger import Ledger
from greenai.ledger.schema import MIGRATIONS, V1, migrate, split_statements

FAKE_V2 = "ALTER TABLE runs ADD COLUMN gpu_model TEXT; CREATE TABLE notes (run_id TEXT, body TEXT);"


def _hand_made_v1(path: Path) -> None:
    conn = raw(path)
    conn.executescript(V1)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO runs (run_id, name, status, started_at, updated_at, host, pid, provenance,"
        " energy_j) VALUES"
        " ('old1', 'legacy', 'completed', 1000.0, 1010.0, 'h', 1, 'measured', 42.0)"
    )
    conn.close()


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_migrates_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _hand_made_v1(path)
    conn = raw(path)
    assert migrate(conn, path, migrations=(V1, FAKE_V2)) == 2
    assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    assert columns[-1] == "gpu_model"
    assert conn.execute("SELECT run_id, name, gpu_model FROM runs").fetchall() == [("old1", "legacy", None)]
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    conn.close()


def test_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _hand_made_v1(path)
    conn = raw(path)
    broken_v3 = "CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);"
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        migrate(conn, path, migrations=(V1, FAKE_V2, broken_v3))
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"notes", "half_done"} & tables == set()
    assert "gpu_model" not in [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    conn.close()


def test_hand_made_v1_opens_with_current_code(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _hand_made_v1(path)
    with Ledger(path) as ledger:
        record = ledger.get_run("old")
    assert (record.start.name, record.status, record.snapshot.energy_j) == (
        "legacy",
        "completed",
        42.0,
    )


def test_refuses_a_newer_schema_and_leaves_it_alone(db_path: Path) -> None:
    Ledger(db_path).close()
    conn = raw(db_path)
    newer = len(MIGRATIONS) + 1  # a version this greenai never wrote
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    before = _files(db_path.parent)
    with pytest.raises(LedgerError, match=rf"written by a newer greenai \(schema v{newer}\); upgrade greenai"):
        Ledger(db_path)
    assert _files(db_path.parent) == before


def test_random_bytes_are_refused_and_never_touched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(os.urandom(16384))
    before = _files(tmp_path)
    with pytest.raises(LedgerError) as info:
        Ledger(path)
    message = str(info.value)
    assert str(path) in message and "move it aside or point GREENAI_LEDGER" in message
    assert "\n" not in message
    assert _files(tmp_path) == before


def test_damaged_pages_are_caught_by_quick_check(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        start = make_start()
        ledger.begin_run(start)
        for k in range(40):
            ledger.flush(start.run_id, make_snapshot(), make_samples(start.started_at + k, 50))
    data = bytearray(db_path.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[2 * page : len(data) - page] = b"\x07" * (len(data) - 3 * page)  # keep header page
    db_path.write_bytes(bytes(data))
    before = _files(db_path.parent)
    with pytest.raises(LedgerError, match=r"corrupt.*move it aside"):
        Ledger(db_path)
    assert _files(db_path.parent) == before


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = raw(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    conn.execute("INSERT INTO users (email) VALUES ('a@example.org')")
    conn.close()
    before = _files(tmp_path)
    with pytest.raises(LedgerError, match="is an SQLite database but not a greenai ledger"):
        Ledger(path)
    assert _files(tmp_path) == before


def test_meta_table_of_another_app_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = raw(path)
    conn.execute("CREATE TABLE greenai_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO greenai_meta VALUES ('app', 'somethingelse')")
    conn.close()
    with pytest.raises(LedgerError, match="not a greenai ledger"):
        Ledger(path)


def test_empty_file_becomes_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with Ledger(path) as ledger:
        ledger.begin_run(make_start(run_id="fresh"))
        assert ledger.get_run("fresh").status == "running"


def _open_each(targets: list[Path]) -> list[str]:
    """Try to open each path; return "opened" or the LedgerError message for each."""
    messages = []
    for target in targets:
        try:
            Ledger(target).close()
            messages.append("opened")
        except LedgerError as e:
            messages.append(str(e))
    return messages


def _open_each_as_nobody(targets: list[Path]) -> list[str]:
    """Root ignores file modes, so a forked child drops to uid "nobody" first."""
    parent_end, child_end = multiprocessing.get_context("fork").Pipe()

    def child() -> None:
        os.setgid(65534)
        os.setuid(65534)
        child_end.send(_open_each(targets))

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    return parent_end.recv()


def test_permission_denied_names_the_path() -> None:
    with tempfile.TemporaryDirectory() as top:  # pytest's tmp dirs are private to root
        Path(top).chmod(0o755)
        _check_permission_messages(Path(top))


def _check_permission_messages(top: Path) -> None:
    locked = top / "locked"
    locked.mkdir()
    read_only = top / "ro.db"
    Ledger(read_only).close()
    read_only.chmod(0o444)
    locked.chmod(0o555)
    targets = [locked / "ledger.db", read_only, locked / "sub" / "ledger.db"]
    try:
        messages = _open_each_as_nobody(targets) if os.geteuid() == 0 else _open_each(targets)
    finally:
        locked.chmod(0o755)
    assert messages[0] == (
        f"permission denied: ledger directory {locked} is not writable (SQLite keeps "
        "ledger.db-wal beside the ledger); "
        "fix its permissions or point GREENAI_LEDGER at another file"
    )
    assert messages[1] == (
        f"permission denied: cannot read and write ledger {read_only}; "
        "fix its permissions or point GREENAI_LEDGER at another file"
    )
    assert messages[2].startswith(f"cannot open ledger {targets[2]}: Permission denied")
    assert read_only.stat().st_size > 0
    assert not (locked / "sub").exists()


def test_split_statements_keeps_comments_and_multiline_bodies() -> None:
    script = "-- a; comment\nCREATE TABLE t (x TEXT DEFAULT ';');\n\nCREATE INDEX i ON t (x);\n"
    assert [s.strip() for s in split_statements(script)] == [
        "-- a; comment\nCREATE TABLE t (x TEXT DEFAULT ';');",
        "CREATE INDEX i ON t (x);",
    ]


def test_v3_keeps_every_scheduled_job_and_allows_paused(tmp_path: Path) -> None:
    """The schedule_jobs rebuild (a new CHECK and a `pauses` column) copies rows in order."""
    from greenai.ledger.jobs import JobStatus, batch_jobs, mark_paused
    from greenai.ledger.schema import V2

    path = tmp_path / "v2.db"
    _hand_made_v1(path)
    conn = raw(path)
    assert migrate(conn, path, migrations=(V1, V2)) == 2
    conn.execute("PRAGMA foreign_keys = OFF")  # as an old writer could have left it
    conn.executemany(
        "INSERT INTO schedule_jobs (batch_id, job_id, name, status, run_id, energy_j) VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("b", "z", "last-added-first", "completed", "old1", 5.0),
            ("b", "a", "second", "deferred", None, None),
            ("b", "d", "dangling", "failed", "deleted-run", 1.0),
        ],
    )
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE schedule_jobs SET status = 'paused' WHERE job_id = 'a'")
    conn.close()
    with Ledger(path) as ledger:  # opening migrates to the current version
        rows = batch_jobs(ledger, "b")
        assert [(r.job_id, r.status, r.run_id, r.energy_j, r.pauses) for r in rows] == [
            ("z", "completed", "old1", 5.0, 0),
            ("a", "deferred", None, None, 0),
            ("d", "failed", None, 1.0, 0),
        ]  # a run that is gone: NULL, as ON DELETE SET NULL does
        mark_paused(ledger, "b", "a", pauses=2)
        assert [(r.status, r.pauses) for r in batch_jobs(ledger, "b")][1] == (JobStatus.PAUSED, 2)


def test_a_ledger_created_between_the_identity_checks_reads_is_not_refused(tmp_path: Path) -> None:
    """Ranks of a distributed job open the job's fresh ledger at the same moment. The identity
    check read the version and the tables in two autocommit reads: another rank creating the
    ledger between them made it read version 0 beside greenai's tables and refuse the ledger as
    hand-edited (seen with three ranks in threads). Here the other opener runs exactly there."""
    import threading
    import time

    from greenai.ledger.schema import MIGRATIONS, check_identity
    from greenai.ledger.store import Ledger

    path = tmp_path / "fresh.db"
    other = threading.Thread(target=lambda: Ledger(path).close())

    class Racing(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            if sql.startswith("SELECT name FROM sqlite_master") and other.ident is None:
                other.start()  # the other rank creates the ledger now, after this check read the version
                time.sleep(0.5)
            return super().execute(sql, *args)

    conn = sqlite3.connect(path, isolation_level=None, factory=Racing, timeout=0.1)
    try:
        assert check_identity(conn, path, len(MIGRATIONS)) == 0  # one snapshot: empty, as it was read
    finally:
        conn.close()
    other.join(60)
    with Ledger(path) as ledger:  # the other rank's ledger is whole
        assert ledger.list_runs() == []
