"""Reports of runs that outlived their carbon trace (read at exact times): the tracker charged
the time past the trace's end at its last intensity (carbon/held.py), and the reports rebuild
the intensity the same way. The run report used to drop its intensity series ("give a trace
that covers the run's dates"); the batch report and the dashboard's batch page used to fail
for the whole batch. What still cannot be charged (an arrival before the trace's start) is a
note on its job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.report.world import BatchJob, add_batch

from greenai.ledger.jobs import batch_jobs
from greenai.ledger.run_forecasts import run_forecasts
from greenai.ledger.store import Ledger
from greenai.reports import render_report
from greenai.reports.api import _load
from greenai.reports.model import POWER_BUCKETS, run_view
from greenai.reports.multi import batch_view

T = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
STEP_S = 600.0
VALUES = [100, 150, 200, 250, 300, 350, 400, 450]  # rows from T - 1 h: the trace ends at T + 20 min


@dataclass(frozen=True)
class Ledgered:
    ledger: Path
    held: str  # a batch: "long" outlives the trace, "short" does not
    early: str  # a batch: "early" arrived before the trace's start


@pytest.fixture(scope="module")
def ledgered(tmp_path_factory: pytest.TempPathFactory) -> Ledgered:
    folder = tmp_path_factory.mktemp("trace_ends")
    rows = "".join(
        f"{datetime.fromtimestamp(T - 3600 + k * STEP_S, UTC):%Y-%m-%dT%H:%M:%S},{v}\n" for k, v in enumerate(VALUES)
    )
    (folder / "short.csv").write_text("Time,Carbon Intensity\n" + rows)
    spec = f"trace:{folder / 'short.csv'}"
    ledger = folder / "ledger.db"
    held = add_batch(
        ledger,
        "batch-held",
        [BatchJob("long", "long", T - 600, T, 40.0, spec), BatchJob("short", "short", T, T, 10.0, spec)],
    )
    early = add_batch(
        ledger,
        "batch-early",
        [BatchJob("early", "early", T - 7200, T - 1800, 10.0, spec), BatchJob("on-time", "on-time", T, T, 10.0, spec)],
    )
    return Ledgered(ledger, held, early)


def jobs_of(ledgered: Ledgered, batch: str):
    with Ledger(ledgered.ledger) as store:
        view = batch_view(batch_jobs(store, batch), lambda run_id: _load(store, run_id))
        records = {j.job.job_id: store.get_run(j.job.run_id) for j in view.jobs if j.job.run_id}
    return view, {j.job.job_id: j for j in view.jobs}, records


def test_the_run_report_draws_the_intensity_held_past_the_traces_end(ledgered: Ledgered) -> None:
    _, _, records = jobs_of(ledgered, ledgered.held)
    with Ledger(ledgered.ledger) as store:
        record = records["long"]
        series = store.power_series(record.start.run_id, POWER_BUCKETS)
        view = run_view(record, series, run_forecasts(store, record.start.run_id))
    iv = view.intensity
    assert iv.t_s is not None and iv.g_per_kwh is not None  # the series, not "cannot rebuild"
    past_end = [g for t, g in zip(iv.t_s, iv.g_per_kwh, strict=True) if T + t >= T + 1200.0]
    assert past_end and set(past_end) == {450.0}  # the held part: the trace's last value
    assert iv.g_per_kwh[0] == 400.0 and iv.varies
    assert "held at 450 gCO2e/kWh" in iv.note and "cannot" not in iv.note
    html = render_report(record.start.run_id, ledger=ledgered.ledger)
    assert "held at 450 gCO2e/kWh" in html and "cannot rebuild" not in html


def test_the_batch_report_charges_each_job_as_the_tracker_did(ledgered: Ledgered) -> None:
    view, jobs, records = jobs_of(ledgered, ledgered.held)
    for job_id in ("long", "short"):
        assert jobs[job_id].carbon_g == pytest.approx(records[job_id].snapshot.carbon_g, rel=1e-9)
        assert jobs[job_id].note == ""
    assert jobs["long"].carbon_at_arrival_g is not None and view.saving_g is not None
    assert view.intensity_g is not None and view.intensity_g[-1] == 450.0  # the curve holds it too
    assert "held at 450 gCO2e/kWh" in view.intensity_source
    html = render_report(batch=ledgered.held, ledger=ledgered.ledger)
    assert "Had each job run at arrival" in html


def test_a_job_that_cannot_be_charged_at_arrival_is_a_note_not_a_failed_report(ledgered: Ledgered) -> None:
    view, jobs, records = jobs_of(ledgered, ledgered.early)
    early = jobs["early"]
    assert early.carbon_g == pytest.approx(records["early"].snapshot.carbon_g, rel=1e-9)
    assert early.carbon_at_arrival_g is None
    assert (
        early.note.startswith("cannot charge it as if started at its arrival: time ") and "outside trace" in early.note
    )
    assert jobs["on-time"].carbon_at_arrival_g is not None and "covers 1 of 2 jobs" in view.note
    html = render_report(batch=ledgered.early, ledger=ledgered.ledger)
    assert "cannot charge it as if started at its arrival" in html


def test_the_dashboards_batch_pages_render(ledgered: Ledgered) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from greenai.dashboard.app import create_app

    c = TestClient(create_app(ledgered.ledger), base_url="http://127.0.0.1")
    held = c.get(f"/batches/{ledgered.held}")
    assert held.status_code == 200 and 'data-figure="batch"' in held.text
    early = c.get(f"/batches/{ledgered.early}")
    assert early.status_code == 200 and "cannot charge it as if started at its arrival" in early.text
