"""The tuning_trials table through ledger/tuning.py, on a real SQLite ledger."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from ledger_factories import make_start, raw

from greenai.errors import LedgerError
from greenai.ledger.store import Ledger
from greenai.ledger.tuning import TuningTrialRow, read_trials, write_trials


def row(trial: int, run_id: str | None = None, **kw: object) -> TuningTrialRow:
    base = dict(
        tuning_id="t" * 32,
        trial=trial,
        run_id=run_id,
        created_at=1000.0 + trial,
        setting={"threads": 2, "batch_size": 16 * (trial + 1), "clock": None},
        iterations=20,
        warmup_iterations=2,
        work=20.0 * 16 * (trial + 1),
        duration_s=1.5,
        energy_j=12.0,
        rel_uncertainty=0.5,
        provenance="estimated",
        objective="energy",
        cost=12.0 / (20.0 * 16 * (trial + 1)),
        chosen=trial == 1,
        notes="",
    )
    base.update(kw)
    return TuningTrialRow(**base)  # type: ignore[arg-type]


def test_trials_round_trip(ledger: Ledger) -> None:
    start = make_start()
    ledger.begin_run(start)
    rows = [row(0, start.run_id), row(1, start.run_id), row(2, start.run_id)]
    write_trials(ledger, rows)
    assert read_trials(ledger, "t" * 32) == rows
    assert read_trials(ledger, run_id=start.run_id) == rows
    assert read_trials(ledger, "other") == []


def test_unknown_run_is_stored_as_null_and_deleting_a_run_keeps_its_trials(ledger: Ledger) -> None:
    start = make_start()
    ledger.begin_run(start)
    write_trials(ledger, [row(0, "f" * 32), row(1, start.run_id)])
    got = read_trials(ledger)
    assert [r.run_id for r in got] == [None, start.run_id]
    ledger.delete_run(start.run_id)
    assert [r.run_id for r in read_trials(ledger)] == [None, None]


def test_non_finite_figures_become_null_and_rewrites_replace(ledger: Ledger, db_path) -> None:
    write_trials(ledger, [row(0, cost=math.inf, energy_j=math.nan, notes="infeasible: too slow")])
    write_trials(ledger, [row(1)])
    got = read_trials(ledger)
    assert got[0].cost is None and got[0].energy_j is None and got[0].notes == "infeasible: too slow"
    write_trials(ledger, [replace(got[0], chosen=True, cost=1.0)])  # same (tuning_id, trial)
    got = read_trials(ledger)
    assert len(got) == 2 and got[0].chosen and got[0].cost == 1.0
    conn = raw(db_path)
    assert conn.execute("SELECT setting_json FROM tuning_trials WHERE trial = 1").fetchone()[0] == (
        '{"batch_size": 32, "clock": null, "threads": 2}'
    )
    conn.close()


def test_unserialisable_setting_is_a_clear_error_and_writes_nothing(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="trial 1: setting is not JSON-serialisable"):
        write_trials(ledger, [row(0), row(1, setting={"x": object()})])
    assert read_trials(ledger) == []
