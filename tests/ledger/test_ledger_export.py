from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime

import pytest
from ledger_factories import make_samples, make_snapshot, make_start

from greenai.ledger import Ledger, export_runs, record_to_dict
from greenai.ledger.export import RUN_COLUMNS
from greenai.ledger.records import RunRecord, RunStatus


@pytest.fixture
def two_runs(ledger: Ledger) -> list[RunRecord]:
    # Fixed past start times (2024-05-01T12:00:00.25Z); another host, so the run still
    # flushing is judged by its last flush, not by this test process's age.
    first = make_start(name="baseline", started_at=1_714_564_800.25, host="node-x")
    second = make_start(name="quantized", started_at=1_714_568_400.0, host="node-x")
    ledger.begin_run(first)
    ledger.end_run(
        first.run_id,
        RunStatus.COMPLETED,
        first.started_at + 60,
        make_snapshot(3_600_000.0),
        make_samples(first.started_at, 3),
    )
    ledger.begin_run(second)
    ledger.flush(second.run_id, make_snapshot(1800.0, carbon_g=math.nan), make_samples(second.started_at, 2))
    return [ledger.get_run(first.run_id), ledger.get_run(second.run_id)]


def test_json_parses_back_with_every_field(ledger: Ledger, two_runs: list[RunRecord]) -> None:
    out = io.StringIO()
    export_runs(two_runs, "json", out, samples=True, load_samples=ledger.samples)
    runs = json.loads(out.getvalue())

    first = runs[0]
    assert first["run_id"] == two_runs[0].start.run_id
    assert first["name"] == "baseline"
    assert first["status"] == "completed"
    assert first["started_at"] == 1_714_564_800.25
    assert first["started_at_utc"] == "2024-05-01T12:00:00.250000+00:00"
    assert first["ended_at"] == 1_714_564_860.25
    assert first["energy_j"] == 3_600_000.0
    assert first["energy_kwh"] == 1.0
    assert first["provenance"] == "integrated"
    assert first["pue"] == 1.2
    assert first["tags"] == {"model": "resnet18", "team": "vision"}
    assert first["environment"]["gpus"] == ["A100"]
    assert first["devices"][1] == {
        "device": "gpu:0",
        "kind": "gpu",
        "energy_j": 2_700_000.0,
        "provenance": "integrated",
        "rel_uncertainty": 0.1,
    }
    assert first["phases"][0] == {
        "phase": "train/forward",
        "device": "gpu:0",
        "energy_j": 1_800_000.0,
        "duration_s": 6.0,
        "calls": 40,
    }
    assert first["counters"] == {"samples": 1280.0, "tokens": 65536.0}
    assert [s["energy_j"] for s in first["samples"]] == [15.0, 30.0, 45.0]
    assert first["samples"][0]["kind"] == "gpu"
    assert runs[1]["carbon_g"] is None  # NaN is not JSON
    assert runs[1]["status"] == "running" and runs[1]["ended_at"] is None
    assert len(runs[1]["samples"]) == 2


def test_record_to_dict_is_json_safe(two_runs: list[RunRecord]) -> None:
    data = record_to_dict(two_runs[1])
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["provenance"] == "integrated" and type(data["provenance"]) is str


def test_csv_one_row_per_run(two_runs: list[RunRecord]) -> None:
    out = io.StringIO()
    export_runs(two_runs, "csv", out)
    out.seek(0)
    reader = csv.DictReader(out)
    assert tuple(reader.fieldnames or ()) == RUN_COLUMNS
    rows = list(reader)
    assert len(rows) == 2
    first = rows[0]
    assert datetime.fromisoformat(first["started_at"]).timestamp() == 1_714_564_800.25
    assert float(first["energy_j"]) == 3_600_000.0
    assert float(first["energy_kwh"]) == 1.0
    assert float(first["carbon_g"]) == 56.0
    assert (first["provenance"], first["currency"], first["pue"]) == ("integrated", "EUR", "1.2")
    assert first["carbon_source"] == "country FRA 56.0 g/kWh (Ember 2022)"
    assert rows[1]["carbon_g"] == ""


def test_csv_one_row_per_sample(ledger: Ledger, two_runs: list[RunRecord]) -> None:
    out = io.StringIO()
    export_runs(two_runs, "csv", out, samples=True, load_samples=ledger.samples)
    out.seek(0)
    rows = list(csv.DictReader(out))
    assert len(rows) == 5
    assert [r["run_id"] for r in rows] == [two_runs[0].start.run_id] * 3 + [two_runs[1].start.run_id] * 2
    assert float(rows[1]["t"]) == 1_714_564_800.35
    assert datetime.fromisoformat(rows[0]["time_utc"]).timestamp() == 1_714_564_800.25
    assert (rows[1]["device"], rows[1]["kind"], rows[1]["provenance"]) == (
        "gpu:0",
        "gpu",
        "integrated",
    )
    assert (float(rows[1]["power_w"]), float(rows[1]["energy_j"])) == (151.0, 30.0)


def test_bad_requests_are_refused(two_runs: list[RunRecord]) -> None:
    with pytest.raises(ValueError, match="load_samples"):
        export_runs(two_runs, "json", io.StringIO(), samples=True)
    with pytest.raises(ValueError, match="xml"):
        export_runs(two_runs, "xml", io.StringIO())  # type: ignore[arg-type]
