"""Reports and the dashboard show the co-load a run ran under: a line in the headline (a
warning when the run was disturbed), a co-load series on the power chart, and the comparison's
ratio marked when a run was measured on a busy machine."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.hardware import coload
from greenai.hardware.coload import DISTURBED_CORES
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.reports import render_report
from greenai.testing.fake_machine import FakeMachine
from greenai.tracking.tracker import Tracker


def tracked(ledger: Path, name: str, seconds: float) -> str:
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, power_w=40.0)
    with Tracker(name, config=Config(ledger=ledger, sample_hz=20), meters=[meter]) as run:
        time.sleep(seconds)
    return run.run_id


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    """A quiet run, then a run while other processes keep 1.6 CPUs busy (a fake /proc/stat)."""
    ledger = tmp_path / "l.db"
    quiet = tracked(ledger, "quiet", 1.3)  # the suite's quiet machine
    path = tmp_path / "proc-stat"
    with FakeMachine(path, cores=1.6):
        monkeypatch.setattr(coload, "PROC_STAT", path)
        busy = tracked(ledger, "busy", 2.3)
    return ledger, quiet, busy


def power_chart(html: str) -> dict:
    """The power chart's figure, as embedded in the report."""
    found = re.search(r'Plotly\.newPlot\(\s*"chart-run1-power",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{', html, re.S)
    assert found, "no power chart"
    return {"data": json.loads(found.group(1)), "layout": json.loads(found.group(2))}


def test_a_disturbed_runs_report_says_so_and_draws_its_coload(runs) -> None:
    ledger, quiet, busy = runs
    html = render_report(busy, ledger=ledger)
    headline = re.search(r'<div class="note bad coload">([^<]*)</div>', html)
    assert headline is not None
    assert (
        f"Co-load: disturbed: other processes kept {DISTURBED_CORES:g} or more CPUs busy for 100% of the run"
        in headline.group(1)
    )
    assert "compare it only with runs measured on a quiet machine" in headline.group(1)
    figure = power_chart(html)
    (series,) = [t for t in figure["data"] if t.get("yaxis") == "y2"]
    assert "co-load" in series["name"] and "(disturbed)" in series["name"]
    assert len(series["y"]["bdata"] if isinstance(series["y"], dict) else series["y"]) > 0
    assert figure["layout"]["yaxis2"]["title"]["text"] == "co-load (CPUs)"
    assert "The dotted line (right axis) is the co-load" in html

    calm = render_report(quiet, ledger=ledger)
    assert 'class="muted coload">Co-load: quiet: other processes kept 0.00 CPUs busy' in calm
    assert 'class="note bad coload"' not in calm

    both = render_report(quiet, busy, ledger=ledger)
    assert "busy machine (this run disturbed): not comparable" in both  # next to each ratio of the busy run
    assert f"run {busy[:8]} (busy) was measured on a busy machine" in both


def test_the_dashboards_run_page_shows_the_coload_line(runs) -> None:
    from fastapi.testclient import TestClient

    from greenai.dashboard.app import create_app

    ledger, _, busy = runs
    page = TestClient(create_app(ledger), base_url="http://127.0.0.1").get(f"/runs/{busy}")
    assert page.status_code == 200
    assert (
        f'<div class="note bad coload">Co-load: disturbed: other processes kept {DISTURBED_CORES:g} or more CPUs busy'
        in page.text
    )


def planned(ledger: Path, name: str, steps: int, planned_steps: int) -> str:
    """A run of `steps` of its `planned_steps`, each counted."""
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, power_w=40.0)
    with Tracker(name, config=Config(ledger=ledger, sample_hz=20), meters=[meter], planned_steps=planned_steps) as run:
        for _ in range(steps):
            time.sleep(0.02)
            run.count("steps")
    return run.run_id


def forecast_note(html: str) -> str:
    section = html.split("Forecast against the actual total", 1)[1]
    found = re.search(r"<p[^>]*>([^<]*forecast[^<]*)</p>", section)
    assert found, section[:500]
    return found.group(1)


def test_a_report_says_why_a_planned_run_has_no_forecast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with a plan and no forecast in the ledger is explained by what the ledger says:
    ended before 5 % of its plan, or measured on a busy machine (whose forecasts the tracker
    withholds), never the one by the other (it said 'ended before 5 %' for both)."""
    ledger = tmp_path / "l.db"
    short = planned(ledger, "short", steps=3, planned_steps=1000)  # 0.3 % of its plan
    path = tmp_path / "proc-stat"
    with FakeMachine(path, cores=1.6):
        monkeypatch.setattr(coload, "PROC_STAT", path)
        busy = planned(ledger, "busy", steps=60, planned_steps=60)  # all of its plan, on a busy machine
    assert "the run ended at 0.3% of its plan, before the 5% a forecast needs" in forecast_note(
        render_report(short, ledger=ledger)
    )
    almost = planned(ledger, "almost", steps=46, planned_steps=1000)  # rounded down, never "at 5 %, before 5 %"
    assert "the run ended at 4.6% of its plan" in forecast_note(render_report(almost, ledger=ledger))
    note = forecast_note(render_report(busy, ledger=ledger))
    assert "the machine was busy while the run ran" in note and "5%" not in note
