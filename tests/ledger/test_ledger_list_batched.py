"""A list of runs reads their child rows (tags, devices, phases, counters) 50 runs at a time;
what it gives must be exactly what reading each run alone gives: the same records, the same
flags (`problems`) on damaged runs, the same runs left out, the same warnings, the same bytes
from `greenai runs list --json`."""

from __future__ import annotations

import io
import logging
import sqlite3
from pathlib import Path

import pytest
from ledger_factories import make_snapshot, make_start, raw
from tests.helpers import greenai

from greenai.cli.options import print_json
from greenai.errors import LedgerError
from greenai.ledger import Ledger, queries, record_to_dict
from greenai.ledger.check import check_ledger
from greenai.ledger.records import DeviceTotal, PhaseTotal, RunRecord, RunStatus
from greenai.meters.base import DeviceKind, Provenance

RUNS = 310  # several chunks of 50 and a partial one
T0 = 1_700_000_000.0


def _run_id(k: int) -> str:
    return f"{k:04d}" + "0" * 28


def _build(path: Path) -> None:
    """RUNS runs (run k started at T0 + k) with a varying number of child rows; every 10th has
    none but its tags, every 7th was left running (its process is gone: read incomplete), every
    3rd is written again at the end (its child rows after everyone's, in another order), and
    every 3rd other gets a tag last (its tag rows are not together)."""

    def work(conn: sqlite3.Connection) -> None:
        for k in range(RUNS):
            start = make_start(run_id=_run_id(k), name=("even" if k % 2 == 0 else "odd"), started_at=T0 + k)
            start.tags[f"k{k % 5}"] = str(k)
            queries.insert_run(conn, start, T0 + k)
            if k % 10 == 0:
                continue
            devices = tuple(
                DeviceTotal(f"gpu:{d}", DeviceKind.GPU, 10.0 * k + d, Provenance.MEASURED, 0.01 * d)
                for d in range(k % 4)
            )
            phases = tuple(PhaseTotal(f"p{p}", "cpu:0", float(p), 0.5 * p, p) for p in range(k % 3))
            snapshot = make_snapshot(energy_j=float(k), devices=devices, phases=phases, counters={"samples": k + 1.0})
            queries.write_snapshot(conn, start.run_id, snapshot, (), T0 + k + 1)
            if k % 7:
                queries.set_status(conn, start.run_id, RunStatus.COMPLETED, T0 + k + 2)
        for k in range(RUNS - 1, 0, -3):  # rewritten later, newest first: child rows of runs interleave
            if k % 10:
                devices = tuple(
                    DeviceTotal(f"cpu:{d}", DeviceKind.CPU, 1.0 * d, Provenance.MEASURED, 0.0) for d in (2, 0, 1)
                )
                phases = tuple(PhaseTotal(f"q{p}", "cpu:0", 1.0, 1.0, 1) for p in (1, 0))
                snapshot = make_snapshot(
                    energy_j=float(k), devices=devices, phases=phases, counters={"z": 1.0, "a": 2.0}
                )
                queries.write_snapshot(conn, _run_id(k), snapshot, (), T0 + k + 1)
        for k in range(2, RUNS, 3):  # a tag added late (as another tool may): a run's tag rows apart
            conn.execute("INSERT INTO tags (run_id, key, value) VALUES (?, 'a-late', 'x')", (_run_id(k),))

    with Ledger(path) as ledger:
        ledger.transaction(work, write=True)


# damage: (run, SQL); runs 49 and 50 sit on either side of a chunk boundary
LEFT_OUT = {
    13: "UPDATE runs SET provenance = 'made-up' WHERE run_id = ?",
    50: "UPDATE runs SET status = 'odd' WHERE run_id = ?",
}
FLAGGED = {
    5: "UPDATE runs SET environment_json = '{oops' WHERE run_id = ?",
    49: "UPDATE devices SET kind = 'toaster' WHERE run_id = ? AND device = 'gpu:0'",
    51: "UPDATE counters SET value = 'many' WHERE run_id = ?",
    101: "UPDATE phases SET calls = 'x' WHERE run_id = ? AND phase = 'p1'",
    150: "UPDATE runs SET coload_seconds = 'x' WHERE run_id = ?",
    152: "UPDATE runs SET exit_code = 'boom' WHERE run_id = ?",
    153: "UPDATE runs SET command_json = '[1, 2]' WHERE run_id = ?",
    299: "UPDATE devices SET energy_j = 'lots' WHERE run_id = ?",
}


@pytest.fixture
def damaged(db_path: Path) -> Path:
    _build(db_path)
    conn = raw(db_path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    for k, sql in {**LEFT_OUT, **FLAGGED}.items():
        assert conn.execute(sql, (_run_id(k),)).rowcount >= 1, (k, sql)
    conn.close()
    return db_path


def _one_by_one(ledger: Ledger, newest_first: list[int]) -> list[RunRecord]:
    """Each run read alone (its child rows by their own queries), the left-out ones skipped."""
    records = []
    for k in newest_first:
        try:
            records.append(ledger.get_run(_run_id(k)))
        except LedgerError:
            assert k in LEFT_OUT
    return records


def _json(records: list[RunRecord]) -> str:
    out = io.StringIO()
    print_json([record_to_dict(r) for r in records], out)
    return out.getvalue()


def test_a_list_gives_what_reading_each_run_alone_gives(damaged: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Ledger(damaged) as ledger:
        with caplog.at_level(logging.WARNING):
            listed = ledger.list_runs(limit=1_000_000)
        list_warnings = [r.getMessage() for r in caplog.records]
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            alone = _one_by_one(ledger, list(range(RUNS - 1, -1, -1)))
        alone_warnings = [r.getMessage() for r in caplog.records]
    assert len(listed) == RUNS - len(LEFT_OUT)
    assert repr(listed) == repr(alone)  # repr: NaN (a NULL figure) compares equal to itself there
    assert _json(listed) == _json(alone)
    flagged = {r.start.run_id: r.problems for r in listed if r.problems}
    assert set(flagged) == {_run_id(k) for k in FLAGGED}
    assert all(len(p) == 1 for p in flagged.values()), flagged
    # the same warnings, in the same order; a left-out run is warned about where it would have been
    left_out = [m for m in list_warnings if "left out (" in m and "is damaged and cannot be read" in m]
    assert [m.split()[1] for m in left_out] == [_run_id(k) for k in sorted(LEFT_OUT, reverse=True)]
    assert [m for m in list_warnings if m not in left_out] == alone_warnings
    # what was written comes back (a run of each shape)
    by_id = {r.start.run_id: r for r in listed}
    seven = by_id[_run_id(7)]
    assert seven.status == RunStatus.INCOMPLETE and seven.start.tags == {
        "model": "resnet18",
        "team": "vision",
        "k2": "7",
    }
    assert [(d.device, d.energy_j) for d in seven.snapshot.devices] == [
        ("gpu:0", 70.0),
        ("gpu:1", 71.0),
        ("gpu:2", 72.0),
    ]
    assert [p.phase for p in seven.snapshot.phases] == ["p0"] and seven.snapshot.counters == {"samples": 8.0}
    # each run's child rows in the order they were written, not in an index's
    assert list(by_id[_run_id(2)].start.tags) == ["model", "team", "k2", "a-late"]
    nine = by_id[_run_id(9)].snapshot
    assert [d.device for d in nine.devices] == ["cpu:2", "cpu:0", "cpu:1"] and list(nine.counters) == ["z", "a"]
    assert [p.phase for p in nine.phases] == ["q1", "q0"]
    assert by_id[_run_id(10)].snapshot.devices == () and by_id[_run_id(10)].snapshot.phases == ()
    assert [d.device for d in by_id[_run_id(49)].snapshot.devices] == []  # its one device was the bad one
    assert len(check_ledger(damaged).problems) == len(LEFT_OUT) + len(FLAGGED)


def test_filters_and_limits_give_the_same_runs(damaged: Path) -> None:
    with Ledger(damaged) as ledger:
        for limit, name, since in ((1, None, None), (49, None, None), (51, "even", None), (120, "odd", T0 + 100)):
            listed = ledger.list_runs(limit=limit, name=name, since=since)
            newest = [k for k in range(RUNS - 1, -1, -1) if (name is None or (k % 2 == 0) == (name == "even"))]
            newest = [k for k in newest if since is None or T0 + k >= since][:limit]
            assert repr(listed) == repr(_one_by_one(ledger, newest)), (limit, name, since)


def test_greenai_runs_list_json_prints_the_runs_read_alone_byte_for_byte(damaged: Path) -> None:
    with Ledger(damaged) as ledger:
        expected = _json(_one_by_one(ledger, list(range(RUNS - 1, -1, -1))))
    listed = greenai("runs", "list", "--all", "--json", ledger=damaged)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == expected
    assert f"run {_run_id(13)} in the ledger is damaged" in listed.stderr
