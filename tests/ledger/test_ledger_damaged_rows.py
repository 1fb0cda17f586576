"""One malformed row (bad environment_json, a value of the wrong type, an unknown enum) never hides the
other runs: it is read flagged, or left out with a warning, and `check_ledger` lists it."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from ledger_factories import make_samples, make_snapshot, make_start, raw
from tests.helpers import as_json, greenai

from greenai.errors import LedgerError
from greenai.ledger import Ledger, export_runs, record_to_dict
from greenai.ledger.check import check_ledger
from greenai.ledger.records import RunStatus


def _three_runs(path: Path) -> list[str]:
    ids = []
    with Ledger(path) as ledger:
        for k in range(3):
            start = make_start(run_id=f"run{k}" + "0" * 28, started_at=1_700_000_000.0 + k)
            ledger.begin_run(start)
            ledger.flush(start.run_id, make_snapshot(), make_samples(start.started_at, 3))
            ledger.end_run(start.run_id, RunStatus.COMPLETED, start.started_at + 5, make_snapshot())
            ids.append(start.run_id)
    return ids


@pytest.mark.parametrize("environment_json", ["{not json", "[1, 2]", "5", "null", "[" * 100_000 + "]" * 100_000])
def test_bad_environment_json_is_read_flagged(
    db_path: Path, environment_json: str, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _three_runs(db_path)
    conn = raw(db_path)
    conn.execute("UPDATE runs SET environment_json = ? WHERE run_id = ?", (environment_json, ids[1]))
    conn.close()
    with caplog.at_level(logging.WARNING), Ledger(db_path) as ledger:
        records = ledger.list_runs()
        assert [r.start.run_id for r in records] == ids[::-1]
        damaged = ledger.get_run(ids[1])
    assert damaged.start.environment == {}
    assert damaged.snapshot.energy_j == make_snapshot().energy_j  # the rest of the run is there
    assert damaged.problems and "environment_json" in damaged.problems[0]
    assert record_to_dict(damaged)["problems"] == list(damaged.problems)
    assert "environment_json" in caplog.text and ids[1] in caplog.text
    assert any(ids[1] in p for p in check_ledger(db_path).problems)


@pytest.mark.parametrize(
    ("column", "value"),
    [("provenance", "made-up"), ("started_at", "yesterday"), ("energy_j", "lots"), ("pid", "x"), ("status", "odd")],
)
def test_unreadable_run_row_is_left_out_of_lists_with_a_warning(
    db_path: Path, column: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _three_runs(db_path)
    conn = raw(db_path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (value, ids[0]))
    conn.close()
    with caplog.at_level(logging.WARNING), Ledger(db_path) as ledger:
        assert [r.start.run_id for r in ledger.list_runs()] == [ids[2], ids[1]]
        with pytest.raises(LedgerError, match=rf"run {ids[0]} in the ledger is damaged.*greenai runs check"):
            ledger.get_run(ids[0])
    assert f"run {ids[0]} in the ledger is damaged" in caplog.text
    problems = check_ledger(db_path).problems
    assert len(problems) == 1 and ids[0] in problems[0], problems


def test_unreadable_child_rows_are_left_out_and_flagged(db_path: Path) -> None:
    ids = _three_runs(db_path)
    conn = raw(db_path)
    conn.execute("UPDATE devices SET kind = 'toaster' WHERE run_id = ? AND device = 'gpu:0'", (ids[2],))
    conn.execute("UPDATE counters SET value = 'many' WHERE run_id = ? AND name = 'tokens'", (ids[2],))
    conn.execute("UPDATE samples SET provenance = 'guessed' WHERE run_id = ? AND rowid % 2 = 0", (ids[2],))
    conn.close()
    with Ledger(db_path) as ledger:
        record = ledger.get_run(ids[2])
        samples = ledger.samples(ids[2])
        assert len(ledger.list_runs()) == 3
    assert [d.device for d in record.snapshot.devices] == ["cpu:0"]
    assert record.snapshot.counters == {"samples": 1280.0}
    assert len(record.problems) == 2
    assert 0 < len(samples) < 3 and all(not math.isnan(s.t) for s in samples)


def test_cli_lists_the_other_runs_when_one_row_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ids = _three_runs(path)
    conn = raw(path)
    conn.execute("UPDATE runs SET environment_json = '{oops' WHERE run_id = ?", (ids[0],))
    conn.execute("UPDATE runs SET provenance = 'made-up' WHERE run_id = ?", (ids[1],))
    conn.close()
    listed = greenai("runs", "list", "--json", ledger=path)
    assert [r["run_id"] for r in as_json(listed)] == [ids[2], ids[0]]
    assert ids[1] in listed.stderr and "damaged" in listed.stderr
    table = greenai("runs", "list", ledger=path)
    assert table.returncode == 0, table.stderr
    assert ids[0][:8] in table.stdout and ids[2][:8] in table.stdout
    export = greenai("runs", "export", "--format", "json", ledger=path)
    assert len(as_json(export)) == 2


def test_export_of_a_flagged_run(db_path: Path) -> None:
    import io

    ids = _three_runs(db_path)
    conn = raw(db_path)
    conn.execute("UPDATE runs SET environment_json = 'nope' WHERE run_id = ?", (ids[0],))
    conn.close()
    with Ledger(db_path) as ledger:
        out = io.StringIO()
        export_runs(ledger.list_runs(), "csv", out)
    assert len(out.getvalue().splitlines()) == 4


@pytest.mark.parametrize(
    ("column", "value"),
    [("pid", "x"), ("pid", -1), ("pid", 2**40), ("started_at", "yesterday"), ("updated_at", "soon")],
)
def test_a_running_run_with_a_damaged_process_row_does_not_stop_the_ledger_opening(
    db_path: Path, column: str, value: object
) -> None:
    """Opening a ledger looks for running runs whose process is gone; a row whose pid or times
    are not numbers says nothing about its process: it is left as it is, and the ledger opens."""
    ids = _three_runs(db_path)
    with Ledger(db_path) as ledger:  # a fourth run, still running
        start = make_start(run_id="run3" + "0" * 28)
        ledger.begin_run(start)
    conn = raw(db_path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (value, start.run_id))
    conn.close()
    with Ledger(db_path) as ledger:
        listed = [r.start.run_id for r in ledger.list_runs()]
    assert set(ids) <= set(listed)
    status = raw(db_path).execute("SELECT status FROM runs WHERE run_id = ?", (start.run_id,)).fetchone()[0]
    assert status == RunStatus.RUNNING
    assert greenai("runs", "list", ledger=db_path).returncode == 0
