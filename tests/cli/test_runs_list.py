"""`greenai runs list` says when it shows only part of the ledger, an unpriced run's cost is
unknown (null, "—") rather than 0.0, and the CSV export carries each run's tags."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace

from tests.helpers import as_json, greenai
from tests.ledger.ledger_factories import make_snapshot, make_start

from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger


def _fill(path, n: int, *, price: float | None = 0.25) -> list[str]:
    ids = []
    with Ledger(path) as ledger:
        for i in range(n):
            start = make_start(name=f"run-{i}", started_at=time.time() - 1000 + i)
            start = replace(start, environment={**start.environment, "config": {"price_per_kwh": price}})
            snapshot = make_snapshot(100.0 + i) if price is not None else make_snapshot(100.0 + i, cost=0.0)
            ledger.begin_run(start)
            ledger.end_run(start.run_id, RunStatus.COMPLETED, time.time(), snapshot)
            ids.append(start.run_id)
    return ids


def test_list_says_it_is_truncated_and_all_lists_every_run(tmp_path):
    ledger = tmp_path / "l.db"
    _fill(ledger, 25)
    shown = greenai("runs", "list", ledger=ledger)
    assert shown.returncode == 0, shown.stderr
    assert "20 of 25 runs (newest first); --limit N or --all for more" in shown.stdout
    assert "run(s)" not in shown.stdout
    every = greenai("runs", "list", "--all", ledger=ledger)
    assert "25 run(s) (newest first)" in every.stdout and "of 25" not in every.stdout
    assert "run-0" in every.stdout and "run-24" in every.stdout
    assert "5 of 25 runs" in greenai("runs", "list", "--limit", "5", ledger=ledger).stdout
    listed = greenai("runs", "list", "--json", ledger=ledger)
    assert len(json.loads(listed.stdout)) == 20
    assert "20 of 25 runs" in listed.stderr and "--all" in listed.stderr
    assert len(as_json(greenai("runs", "list", "--json", "--all", ledger=ledger))) == 25


def test_an_unpriced_run_has_no_cost_not_a_zero_cost(tmp_path):
    unpriced, priced = tmp_path / "unpriced.db", tmp_path / "priced.db"
    [run_id] = _fill(unpriced, 1, price=None)
    _fill(priced, 1)
    assert as_json(greenai("runs", "show", run_id, "--json", ledger=unpriced))["cost"] is None
    assert as_json(greenai("runs", "list", "--json", ledger=unpriced))[0]["cost"] is None
    assert as_json(greenai("runs", "list", "--json", ledger=priced))[0]["cost"] > 0
    table = greenai("runs", "list", ledger=unpriced).stdout
    assert "cost" in table and "—" in table
    assert "EUR" in greenai("runs", "list", ledger=priced).stdout
    exported = list(csv.DictReader(io.StringIO(greenai("runs", "export", "--format", "csv", ledger=unpriced).stdout)))
    assert exported[0]["cost"] == ""
    compared = as_json(greenai("runs", "compare", run_id, run_id, "--json", ledger=unpriced))
    assert compared["runs"][0]["cost"] is None and compared["runs"][1]["ratio"]["cost"] is None


def test_csv_export_has_the_tags(tmp_path):
    ledger = tmp_path / "l.db"
    _fill(ledger, 2)
    proc = greenai("runs", "export", "--format", "csv", ledger=ledger)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 2
    assert all(json.loads(r["tags"]) == {"model": "resnet18", "team": "vision"} for r in rows)


def test_every_view_of_a_run_says_the_same_about_its_price(tmp_path):
    """One rule (ledger.export.run_cost) for runs show, the JSON, the export and the report: a
    run recorded without its config is judged by its cost; a price recorded as text "None" is
    no price (the report and runs show used rules of their own)."""
    from greenai.reports.api import render_report

    ledger = tmp_path / "l.db"
    with Ledger(ledger) as store:
        no_config = make_start(name="no-config")  # its environment records no settings
        store.begin_run(no_config)
        store.end_run(no_config.run_id, RunStatus.COMPLETED, time.time(), make_snapshot(100.0, cost=0.5))
        as_text = replace(make_start(name="as-text"), environment={"config": {"price_per_kwh": "None"}})
        store.begin_run(as_text)
        store.end_run(as_text.run_id, RunStatus.COMPLETED, time.time(), make_snapshot(100.0, cost=0.0))
    shown = greenai("runs", "show", no_config.run_id, ledger=ledger, env={"COLUMNS": "200"}).stdout
    assert "Cost 0.5" in " ".join(shown.split()) and "not computed" not in shown
    assert as_json(greenai("runs", "show", no_config.run_id, "--json", ledger=ledger))["cost"] == 0.5
    unpriced = greenai("runs", "show", as_text.run_id, ledger=ledger).stdout
    assert "Cost not computed" in " ".join(unpriced.split())
    assert as_json(greenai("runs", "show", as_text.run_id, "--json", ledger=ledger))["cost"] is None
    assert "facility kWh × price" in render_report(no_config.run_id, ledger=ledger)
    assert "no electricity price configured" in render_report(as_text.run_id, ledger=ledger)


def test_the_list_marks_the_runs_measured_on_a_busy_machine(tmp_path):
    """From the runs' own rows (the list's one query): a disturbed run's co-load cell says
    "disturbed" with its figure, a quiet run's gives its figure, a run without co-load "?", and
    the line under the table says what they mean; --json carries the same verdict."""
    from greenai.hardware.coload import CoLoadSummary
    from greenai.ledger.compare import coload_legend

    busy = CoLoadSummary(1.9, 2.0, 0.0, 0.0, busy_share=0.85, threshold_cores=0.3, seconds=20.0)
    quiet = CoLoadSummary(0.05, 0.2, 0.0, 0.0, busy_share=0.0, threshold_cores=0.3, seconds=20.0)
    ledger = tmp_path / "l.db"
    ids = {}
    with Ledger(ledger) as store:
        for i, (name, coload) in enumerate((("unmeasured", None), ("quiet", quiet), ("busy", busy))):
            start = make_start(name=name, started_at=time.time() - 100 + i)
            store.begin_run(start)
            store.end_run(start.run_id, RunStatus.COMPLETED, time.time(), make_snapshot(100.0, coload=coload))
            ids[name] = start.run_id[:8]
    shown = greenai("runs", "list", ledger=ledger)
    assert shown.returncode == 0, shown.stderr
    row = {name: next(x for x in shown.stdout.splitlines() if run_id in x) for name, run_id in ids.items()}
    assert row["busy"].rstrip(" │").endswith("disturbed 1.90")
    assert row["quiet"].rstrip(" │").endswith("0.05") and "disturbed" not in row["quiet"]
    assert row["unmeasured"].rstrip(" │").endswith("?")
    assert " ".join(coload_legend().split()) in " ".join(shown.stdout.split())
    listed = {r["name"]: r["coload"] for r in as_json(greenai("runs", "list", "--json", ledger=ledger))}
    assert listed["busy"]["disturbed"] is True and listed["quiet"]["disturbed"] is False
    assert listed["unmeasured"] is None
