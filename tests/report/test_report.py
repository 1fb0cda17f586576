"""`greenai report` and `greenai.report(...)`: what a report shows, and that it is one file
that loads nothing and escapes what users wrote."""

from __future__ import annotations

import math
import re

import pytest
from tests.helpers import assert_one_line_error, greenai
from tests.report.world import World

from greenai.errors import GreenAIError, RunNotFoundError
from greenai.ledger.run_forecasts import run_forecasts
from greenai.ledger.store import Ledger
from greenai.reports import render_report, report
from greenai.reports.model import POWER_BUCKETS, run_view
from greenai.reports.multi import _profile_carbon, intensity_of
from greenai.tracking.phases import NO_PHASE
from greenai.units import J_PER_KWH


def view_of(world: World, run_id: str):
    with Ledger(world.ledger) as store:
        record = store.get_run(run_id)
        series = store.power_series(record.start.run_id, POWER_BUCKETS)
        return run_view(record, series, run_forecasts(store, record.start.run_id))


def scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>", html, flags=re.IGNORECASE)


def test_a_run_report_shows_the_headline_devices_phases_metrics_and_environment(world: World):
    html = render_report(world.run_id, ledger=world.ledger)
    v = view_of(world, world.run_id)
    snap = v.record.snapshot
    # headline: energy with provenance and band, duration, carbon, cost, per-unit figures, status
    assert "Energy (IT)" in html and "simulated" in html
    assert f"{snap.energy_j:,.1f} J" in html
    assert "~95 %" in html
    assert "Energy per sample" in html and "samples/kJ" in html
    j_per_sample = snap.energy_j / snap.counters["samples"]
    assert {u.counter: u.j_per_unit for u in v.units}["samples"] == pytest.approx(j_per_sample)
    assert {u.counter: u.units_per_kj for u in v.units}["samples"] == pytest.approx(1000 / j_per_sample)
    assert v.cost == pytest.approx(snap.cost) and snap.cost > 0
    assert 'class="status completed"' in html
    # devices with provenance, mean power and the maximum the meter knows
    rows = {d.device: d for d in v.devices}
    assert set(rows) == {"cpu:0", "dram:0", "gpu:0"}
    assert rows["gpu:0"].max_power_w == pytest.approx(300.0)  # 250 W +/- 50 W sinusoid
    assert rows["cpu:0"].max_power_w == pytest.approx(60.0)
    assert rows["gpu:0"].provenance == "simulated"
    # phases: nested ones rolled up into their parent, (no phase) last, shares of the total
    phases = {p.path: p for p in v.phases}
    assert {"train", "train/forward", "train/backward", "eval"} <= set(phases)
    train = phases["train"]
    assert train.energy_j == pytest.approx(
        phases["train/forward"].energy_j + phases["train/backward"].energy_j + train.exclusive_j
    )
    assert sum(p.energy_j for p in v.phases if p.depth == 0) == pytest.approx(snap.energy_j, rel=1e-9)
    assert v.phases[-1].path == NO_PHASE or NO_PHASE not in phases
    # the power series carries the phases that held each interval
    assert {s.label for s in v.spans} & {"train/backward", "train/forward", "eval"}
    assert len(v.power) == 3 and all(len(s.t_s) > 10 for s in v.power if s.kind != "dram")  # DRAM: 1 Hz rows


def test_seed_metrics_carry_formula_inputs_and_values(world: World):
    v = view_of(world, world.run_id)
    snap = v.record.snapshot
    metrics = {m.name: m for m in v.metrics}
    gpu = next(d for d in v.devices if d.device == "gpu:0")
    assert metrics["E gpu:0"].formula == "E = P × t"
    assert float(metrics["RUR gpu:0"].value) == pytest.approx(gpu.mean_power_w / 300.0, rel=1e-3)
    assert "simulated trace maximum" in metrics["RUR gpu:0"].inputs
    assert float(metrics["EER"].value) == pytest.approx(1 / 1.25, rel=1e-3)
    assert float(metrics["PUE"].value) == pytest.approx(1.25)
    assert float(metrics["ERF"].value) == pytest.approx(0.3)
    ere = (snap.facility_energy_j * (1 - 0.3)) / snap.energy_j
    assert float(metrics["ERE"].value) == pytest.approx(ere, rel=1e-3)
    assert ere == pytest.approx((1 - 0.3) * 1.25, rel=1e-6)


def test_intensity_forecasts_budgets_and_environment(world: World):
    v = view_of(world, world.run_id)
    html = render_report(world.run_id, ledger=world.ledger)
    # FR: a constant country figure, said in a sentence, with the mean the run was charged
    assert "country FRA" in v.intensity.source and not v.intensity.varies
    assert v.intensity.mean_g_per_kwh == pytest.approx(
        v.record.snapshot.carbon_g / (v.record.snapshot.facility_energy_j / J_PER_KWH)
    )
    # forecasts made along the way, scored against the actual total of the completed run
    assert v.forecasts and all(f.error is not None for f in v.forecasts)
    assert "Forecast against the actual total" in html and "band held" in html
    # the 60 J warn budget fired, and where the energy passed it is found from the samples
    (budget,) = v.budgets
    assert budget.fired == "warn" and budget.at_s is not None
    crossing = next(t for t, e in zip(v.cumulative_t_s, v.cumulative_j) if e > 60.0)
    assert budget.at_s == pytest.approx(float(crossing), abs=0.05)
    # environment: meters in use, the missing ones, CPU, torch
    labels = dict(v.environment.rows)
    assert {"host", "CPU", "GPU", "torch", "Python"} <= set(labels)
    assert "simulated" in {m["name"] for m in v.environment.meters}


def test_the_file_is_self_contained(world: World, tmp_path):
    path = report(world.run_id, ledger=world.ledger, output=tmp_path / "r.html")
    html = path.read_text()
    tags = scripts(html)
    assert all("src=" not in t for t in tags), tags  # nothing loaded, every script inline
    assert html.count("Plotly.newPlot") >= 4 and html.count("plotly.js v") <= 1  # plotly.js once
    assert not re.search(r"<link[^>]+href=", html) and "@import" not in html and "@font-face" not in html
    assert "<noscript>" in html


def test_a_killed_run_says_incomplete(world: World):
    v = view_of(world, world.killed_id)
    html = render_report(world.killed_id, ledger=world.ledger)
    assert v.status == "incomplete"
    assert 'class="status incomplete"' in html and "last flush" in html
    assert v.energy_j > 0  # energy up to its last flush


def test_several_runs_are_compared_with_ratios_to_the_first(world: World):
    html = render_report(world.run_id, world.other_id[:10], ledger=world.ledger)
    with Ledger(world.ledger) as store:
        first, second = store.get_run(world.run_id), store.get_run(world.other_id)
    assert "2 runs compared" in html
    ratio = second.snapshot.energy_j / first.snapshot.energy_j
    assert f"{ratio:.3g}×" in html
    per = (second.snapshot.energy_j / second.snapshot.counters["samples"]) / (
        first.snapshot.energy_j / first.snapshot.counters["samples"]
    )
    assert f"{per:.3g}×" in html
    assert "Energy by device" in html and "Energy by phase" in html
    assert html.count('id="run1"') == 1 and html.count('id="run2"') == 1


def test_a_study_report_shows_the_front_the_table_and_the_recommendation(world: World):
    html = render_report(study=world.study_id[:5], ledger=world.ledger)
    assert "Optimization study" in html
    assert "int8-dynamic ★" in html  # cheapest within baseline - 0.01
    assert "2.00x less energy per sample" in html
    assert "no QAT engine" in html and "skipped" in html
    assert "quality ≥ 0.94" in html
    # a looser bound takes the pruned model
    loose = render_report(study=world.study_id, ledger=world.ledger, max_quality_drop=0.2)
    assert "prune=0.9 ★" in loose


def test_a_batch_report_draws_waits_and_the_saving_against_running_at_arrival(world: World):
    from greenai.ledger.jobs import batch_jobs
    from greenai.reports.api import _load
    from greenai.reports.multi import batch_view

    with Ledger(world.ledger) as store:
        jobs = batch_jobs(store, world.batch_id)
        bv = batch_view(jobs, lambda run_id: _load(store, run_id))
        a = next(j for j in bv.jobs if j.job.job_id == "a")
        record, samples = _load(store, a.job.run_id)
    assert a.wait_s == pytest.approx(7200.0)
    # the saving: the same profile charged two hours earlier, at arrival
    expected = _profile_carbon(samples, record, intensity_of(record), -7200.0)
    assert a.carbon_at_arrival_g == pytest.approx(expected)
    assert a.carbon_g == pytest.approx(record.snapshot.carbon_g, rel=1e-6)
    b = next(j for j in bv.jobs if j.job.job_id == "b")
    assert b.wait_s == pytest.approx(0.0) and b.carbon_at_arrival_g == pytest.approx(b.carbon_g)
    assert bv.saving_g == pytest.approx(expected - a.carbon_g)
    assert not math.isclose(bv.saving_g, 0.0, abs_tol=1e-9)
    html = render_report(batch=world.batch_id, ledger=world.ledger)
    assert "Had each job run at arrival" in html and "job &lt;a&gt;" in html


def test_names_and_tags_with_html_are_escaped(world: World):
    html = render_report(world.hostile_id, ledger=world.ledger)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html
    # every <script> tag is ours: plotly.js and one per chart
    assert len(scripts(html)) == 1 + html.count("Plotly.newPlot")


def test_unknown_runs_and_ledgers_are_clear_errors(world: World, tmp_path):
    with pytest.raises(RunNotFoundError, match="no run matches 'nope'"):
        render_report("nope", ledger=world.ledger)
    with pytest.raises(GreenAIError, match="no ledger at"):
        render_report("x", ledger=tmp_path / "missing.db")
    with pytest.raises(GreenAIError, match="exactly one"):
        render_report(world.run_id, study="s", ledger=world.ledger)
    proc = greenai("report", "nope", "--ledger", str(world.ledger), "-o", str(tmp_path / "x.html"))
    assert_one_line_error(proc, 1, "no run matches 'nope'")
    assert not (tmp_path / "x.html").exists()
    proc = greenai("report", "--study", "zzz", "--ledger", str(world.ledger))
    assert_one_line_error(proc, 1, "no optimization study")


def test_the_cli_writes_the_file_and_prints_its_path(world: World, tmp_path):
    out = tmp_path / "sub" / "run.html"
    proc = greenai("report", world.run_id[:8], "--ledger", str(world.ledger), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert str(out.resolve()) in proc.stdout and out.stat().st_size > 1_000_000


def test_greenai_report_is_the_function_even_after_the_package_is_imported(world: World, tmp_path):
    import greenai as g
    import greenai.reports  # noqa: F401  (binds greenai.reports, never greenai.report)

    for i in range(2):
        assert callable(g.report) and g.report.__module__ == "greenai.reports.api"
        path = g.report(world.run_id, ledger=world.ledger, output=tmp_path / f"{i}.html")
        assert path.exists()
    from greenai import report as imported

    assert imported is g.report
