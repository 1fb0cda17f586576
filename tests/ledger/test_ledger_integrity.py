"""Opening checks what is cheap; the full check is `check_ledger` / `greenai runs check`; foreign files with a
journal, greenai ledgers missing a table and unknown schema versions are refused without a byte changed."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ledger_factories import make_samples, make_snapshot, make_start, raw
from tests.helpers import as_json, assert_one_line_error, greenai

from greenai.errors import LedgerError
from greenai.ledger import Ledger
from greenai.ledger.check import check_ledger
from greenai.ledger.records import RunStatus
from greenai.ledger.schema import MIGRATIONS


def _state(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of `directory` with its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def _child(code: str, cwd: Path) -> None:
    """Run `code` in a fresh interpreter, which ends with os._exit (no clean close)."""
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, check=True, timeout=120)


def _ledger_with_samples(path: Path, flushes: int = 60) -> str:
    with Ledger(path) as ledger:
        start = make_start()
        ledger.begin_run(start)
        for k in range(flushes):
            ledger.flush(start.run_id, make_snapshot(), make_samples(start.started_at + k, 50))
        ledger.end_run(start.run_id, RunStatus.COMPLETED, start.started_at + flushes, make_snapshot())
    return start.run_id


# -- item 10: cheap checks at open, the full check on demand ---------------------------------------------------


def test_open_does_not_read_every_page_and_check_ledger_does(db_path: Path) -> None:
    """A damaged leaf page deep in the samples table is not read by opening (no quick_check of the whole file
    at every Tracker.start); the full check finds it, without changing the file."""
    run_id = _ledger_with_samples(db_path)
    conn = raw(db_path)
    pages = [
        row[0]
        for row in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'samples' AND pagetype = 'leaf' ORDER BY pageno"
        )
    ]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    assert len(pages) > 10
    victim = pages[len(pages) // 2]
    data = bytearray(db_path.read_bytes())
    data[(victim - 1) * page_size + 8 : victim * page_size] = b"\x07" * (page_size - 8)
    db_path.write_bytes(bytes(data))

    with Ledger(db_path) as ledger:  # opens: only the header, schema and table roots are read
        assert ledger.get_run(run_id).status == RunStatus.COMPLETED

    before = _state(db_path.parent)["ledger.db"]
    report = check_ledger(db_path)
    assert not report.ok
    assert any("integrity_check" in p for p in report.problems), report.problems
    assert _state(db_path.parent)["ledger.db"] == before  # read-only (SQLite may leave an empty -wal beside)


def test_check_ledger_of_a_healthy_ledger(db_path: Path) -> None:
    _ledger_with_samples(db_path, flushes=3)
    report = check_ledger(db_path)
    assert report.ok, report.problems
    assert (report.schema_version, report.runs) == (len(MIGRATIONS), 1)


def test_a_damaged_table_root_is_caught_at_open_with_a_pointer_to_the_full_check(db_path: Path) -> None:
    _ledger_with_samples(db_path, flushes=3)
    conn = raw(db_path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'counters'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db_path.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\x07" * page_size
    db_path.write_bytes(bytes(data))
    before = _state(db_path.parent)
    with pytest.raises(LedgerError, match=r"corrupt.*move it aside.*greenai runs check"):
        Ledger(db_path)
    assert _state(db_path.parent) == before


# -- item 15: foreign files with a journal, missing tables, unknown versions -------------------------------------


def test_foreign_file_with_a_hot_rollback_journal_is_refused_untouched(tmp_path: Path) -> None:
    _child(
        """
        import os, sqlite3
        conn = sqlite3.connect("other.db", isolation_level=None)
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, bio TEXT)")
        conn.executemany("INSERT INTO users (bio) VALUES (?)", [("x" * 400,)] * 200)
        conn.execute("PRAGMA cache_size = 1")  # pages spill into the file before the commit
        conn.execute("BEGIN")
        conn.execute("UPDATE users SET bio = 'y' || bio")
        conn.executemany("INSERT INTO users (bio) VALUES (?)", [("z" * 400,)] * 500)
        os._exit(0)  # killed mid-transaction: other.db-journal is hot
        """,
        tmp_path,
    )
    assert (tmp_path / "other.db-journal").exists()
    # what any writable open does: roll the journal back, changing the file
    witness = tmp_path / "witness"
    witness.mkdir()
    for name in ("other.db", "other.db-journal"):
        shutil.copy2(tmp_path / name, witness / name)
    before_witness = _state(witness)
    sqlite3.connect(witness / "other.db").execute("SELECT count(*) FROM users").fetchone()
    assert _state(witness) != before_witness
    shutil.rmtree(witness)

    before = _state(tmp_path)
    with pytest.raises(LedgerError, match="not a greenai ledger") as info:
        Ledger(tmp_path / "other.db")
    assert "\n" not in str(info.value)
    assert _state(tmp_path) == before


def test_foreign_file_with_a_leftover_wal_is_refused_untouched(tmp_path: Path) -> None:
    _child(
        """
        import os, sqlite3
        conn = sqlite3.connect("other.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.org')")
        os._exit(0)  # the insert is only in other.db-wal
        """,
        tmp_path,
    )
    assert (tmp_path / "other.db-wal").stat().st_size > 0
    before = _state(tmp_path)
    with pytest.raises(LedgerError, match="not a greenai ledger"):
        Ledger(tmp_path / "other.db")
    assert _state(tmp_path) == before  # not checked in, not even its WAL index rebuilt


def test_foreign_file_whose_tables_are_only_in_its_wal_is_refused(tmp_path: Path) -> None:
    _child(
        """
        import os, sqlite3
        conn = sqlite3.connect("other.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.org')")
        os._exit(0)
        """,
        tmp_path,
    )
    data = {name: _state(tmp_path)[name] for name in ("other.db", "other.db-wal")}
    with pytest.raises(LedgerError, match="not a greenai ledger"):
        Ledger(tmp_path / "other.db")
    # read through SQLite's locking (its -shm index may be rebuilt); the file and its WAL stay as they were
    assert {name: _state(tmp_path)[name] for name in data} == data


def test_a_young_greenai_ledger_whose_tables_are_only_in_its_wal_opens(tmp_path: Path) -> None:
    """A tracker killed before the first checkpoint leaves the schema in the WAL only: still ours."""
    _child(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from ledger_factories import make_start
        from greenai.ledger import Ledger
        ledger = Ledger("young.db")
        ledger.begin_run(make_start(run_id="young1"))
        os._exit(0)
        """,
        tmp_path,
    )
    assert (tmp_path / "young.db-wal").stat().st_size > 0
    with Ledger(tmp_path / "young.db") as ledger:
        assert ledger.get_run("young1").status == RunStatus.INCOMPLETE


def test_greenai_ledger_missing_a_table_is_refused_at_open(db_path: Path) -> None:
    _ledger_with_samples(db_path, flushes=2)
    conn = raw(db_path)
    conn.execute("DROP TABLE forecasts")
    conn.execute("ALTER TABLE schedule_jobs DROP COLUMN pauses")
    conn.close()
    before = _state(db_path.parent)
    with pytest.raises(LedgerError) as info:
        Ledger(db_path)
    message = str(info.value)
    assert "lacks table forecasts, column schedule_jobs.pauses" in message
    assert str(db_path) in message and "\n" not in message
    assert _state(db_path.parent) == before
    report = check_ledger(db_path)
    assert any("lacks table forecasts" in p for p in report.problems), report.problems


@pytest.mark.parametrize("version", [-1, -7, 0, len(MIGRATIONS) + 1])
def test_unknown_schema_versions_are_refused_untouched(db_path: Path, version: int) -> None:
    """A negative version used to re-apply the last migration (MIGRATIONS[-1:]); 0 with tables, the first."""
    _ledger_with_samples(db_path, flushes=1)
    conn = raw(db_path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    before = _state(db_path.parent)
    with pytest.raises(LedgerError, match=rf"schema v{version}\)|unknown schema version \({version};") as info:
        Ledger(db_path)
    assert str(db_path) in str(info.value)
    assert _state(db_path.parent) == before


def test_not_sqlite_header_is_refused_before_sqlite_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"PK\x03\x04" + os.urandom(5000))
    (tmp_path / "ledger.db-journal").write_bytes(os.urandom(600))
    before = _state(tmp_path)
    with pytest.raises(LedgerError, match="corrupt or not SQLite.*move it aside"):
        Ledger(path)
    assert _state(tmp_path) == before


def test_a_second_open_in_one_process_keeps_the_first_connections_locks(db_path: Path) -> None:
    """Looking at the file before SQLite opens it must not close a descriptor of a file this process already has
    open: that drops the first connection's POSIX locks, and another process closing the ledger then checks in and
    deletes the WAL under it (a scheduler's driver records a worker's run while holding the ledger: disk I/O error)."""
    with Ledger(db_path) as first:
        first.begin_run(make_start(run_id="one"))
        Ledger(db_path).close()
        _child(f"from greenai.ledger import Ledger; Ledger({str(db_path)!r}).close()", db_path.parent)
        assert (db_path.parent / "ledger.db-wal").exists()  # not checked in and deleted under `first`
        first.begin_run(make_start(run_id="two"))
    with Ledger(db_path) as again:
        assert {r.start.run_id for r in again.list_runs()} == {"one", "two"}


def test_runs_check_command(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    run_id = _ledger_with_samples(path, flushes=3)
    healthy = greenai("runs", "check", ledger=path)
    assert healthy.returncode == 0, healthy.stderr
    assert f"ledger {path}: ok (schema v{len(MIGRATIONS)}, 1 run(s))" in healthy.stdout
    assert as_json(greenai("runs", "check", "--json", ledger=path))["ok"] is True

    conn = raw(path)
    conn.execute("UPDATE runs SET environment_json = 'oops' WHERE run_id = ?", (run_id,))
    conn.close()
    damaged = greenai("runs", "check", ledger=path)
    assert_one_line_error(damaged, 1, f"ledger {path}: 1 problem(s) found")
    assert f"run {run_id}: its environment_json is not a JSON object" in damaged.stdout
    assert_one_line_error(greenai("runs", "check", ledger=tmp_path / "none.db"), 1, "no ledger at")
