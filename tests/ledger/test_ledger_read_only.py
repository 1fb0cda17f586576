"""A ledger this process cannot write (file and directory read-only, or a read-only file system) can still be
read: `Ledger.open_existing` opens it with SQLite's mode=ro, and the read commands use it. Nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ledger_factories import make_samples, make_snapshot, make_start
from tests.helpers import as_json, assert_one_line_error, greenai

from greenai.errors import LedgerError
from greenai.ledger import Ledger
from greenai.ledger.check import check_ledger
from greenai.ledger.jobs import JobRow, JobStatus, add_jobs, batch_jobs
from greenai.ledger.records import RunStatus
from greenai.ledger.run_forecasts import run_forecasts


def _state(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


@contextmanager
def frozen(directory: Path) -> Iterator[None]:
    """Make `directory` and its files unwritable for this process: modes for a user, the immutable attribute for
    root (whom modes do not stop)."""
    paths = [directory, *directory.iterdir()]
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True)
        if done.returncode != 0:
            subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True)
            pytest.skip(f"cannot make files immutable here: {done.stderr.decode().strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def _clean_ledger(directory: Path) -> Path:
    directory.mkdir()
    path = directory / "ledger.db"
    with Ledger(path) as ledger:
        start = make_start(run_id="a" * 32, name="shared")
        ledger.begin_run(start)
        ledger.flush(start.run_id, make_snapshot(), make_samples(start.started_at, 5))
        ledger.end_run(start.run_id, RunStatus.COMPLETED, start.started_at + 2, make_snapshot())
        add_jobs(ledger, [JobRow("batch1", "j1", "job one", JobStatus.PENDING)])
    assert sorted(p.name for p in directory.iterdir()) == ["ledger.db"]  # closed cleanly: no -wal
    return path


def test_a_clean_read_only_ledger_is_read_and_never_written(tmp_path: Path) -> None:
    path = _clean_ledger(tmp_path / "shared")
    with frozen(path.parent):
        before = _state(path.parent)
        with Ledger.open_existing(path) as ledger:
            assert ledger.read_only
            assert [r.start.name for r in ledger.list_runs()] == ["shared"]
            assert ledger.get_run("aaaa").snapshot.energy_j == make_snapshot().energy_j
            assert len(ledger.samples("a" * 32)) == 5
            assert run_forecasts(ledger, "a" * 32) == []
            assert [j.job_id for j in batch_jobs(ledger, "batch1")] == ["j1"]
            with pytest.raises(LedgerError, match=rf"cannot write ledger {path}"):
                ledger.delete_run("aaaa")
        with Ledger(path, read_only=True) as ledger:
            assert len(ledger.list_runs()) == 1
        assert check_ledger(path).ok
        assert _state(path.parent) == before
        with pytest.raises(LedgerError, match="permission denied"):
            Ledger(path)  # the writable open still refuses, naming the path


def test_a_read_only_ledger_left_by_a_killed_tracker_shows_the_run_incomplete(tmp_path: Path) -> None:
    directory = tmp_path / "killed"
    directory.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, sys
                sys.path.insert(0, {str(Path(__file__).parent)!r})
                from ledger_factories import make_samples, make_snapshot, make_start
                from greenai.ledger import Ledger
                ledger = Ledger({str(directory / "ledger.db")!r})
                start = make_start(run_id="k" * 32)
                ledger.begin_run(start)
                ledger.flush(start.run_id, make_snapshot(), make_samples(start.started_at, 5))
                os._exit(0)
                """
            ),
        ],
        check=True,
        timeout=120,
    )
    assert (directory / "ledger.db-wal").exists()
    with frozen(directory):
        before = _state(directory)
        with Ledger.open_existing(directory / "ledger.db") as ledger:
            record = ledger.get_run("kkkk")
            assert ledger.list_runs()[0].status == RunStatus.INCOMPLETE
        assert (record.status, record.ended_at) == (RunStatus.INCOMPLETE, record.updated_at)
        assert record.snapshot.energy_j == make_snapshot().energy_j
        assert _state(directory) == before


def test_read_commands_work_on_a_read_only_ledger(tmp_path: Path) -> None:
    path = _clean_ledger(tmp_path / "shared")
    with frozen(path.parent):
        before = _state(path.parent)
        assert [r["name"] for r in as_json(greenai("runs", "list", "--json", ledger=path))] == ["shared"]
        assert as_json(greenai("runs", "show", "aaaa", "--json", ledger=path))["run_id"] == "a" * 32
        exported = greenai("runs", "export", "--format", "csv", ledger=path)
        assert exported.returncode == 0 and "shared" in exported.stdout, exported.stderr
        assert [j["job_id"] for j in as_json(greenai("schedule", "show", "batch1", "--json", ledger=path))] == ["j1"]
        assert as_json(greenai("studies", "--json", ledger=path)) == []
        assert_one_line_error(greenai("runs", "delete", "aaaa", "--yes", ledger=path), 1, "cannot write ledger")
        assert _state(path.parent) == before
