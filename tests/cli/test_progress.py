"""Long commands say how far they are and how long is left: Rich's bar with an ETA on a
terminal, a plain line every few seconds in a pipe or a log (calibrate, optimize, schedule
simulate were silent, or showed a spinner, for minutes)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from greenai.cli.render import progress


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=120, markup=False), out


def test_plain_lines_when_not_a_terminal():
    console, out = _console(False)
    with progress(console, "calibrating", every_s=0) as report:
        report.update(0, 10, "matmul")
        report.update(4, 10, "conv [b]")
    lines = out.getvalue().splitlines()
    assert lines[0] == "calibrating: 0% (0/10), matmul"
    assert lines[1].startswith("calibrating: 40% (4/10), conv [b]; about ") and lines[1].endswith(" left")
    assert lines[-1].startswith("calibrating: done in ")


def test_plain_lines_are_spaced_out_and_a_quick_command_prints_none():
    console, out = _console(False)
    with progress(console, "optimizing", every_s=3600) as report:
        for done in range(100):
            report.update(done, 100, "round")
    assert out.getvalue() == ""


def test_a_bar_with_an_eta_on_a_terminal():
    console, out = _console(True)
    with progress(console, "simulating") as report:
        report.update(5, 10, "policy carbon")
    rendered = out.getvalue()
    assert "simulating: policy carbon" in rendered and "ETA" in rendered and "50%" in rendered


def test_schedule_simulate_reports_progress_in_a_pipe(monkeypatch, capsys):
    import json

    from greenai.cli import render
    from greenai.cli.main import _invoke

    monkeypatch.setattr(render, "PROGRESS_EVERY_S", 0.0)  # a line at every step, not every 5 s
    assert _invoke(["schedule", "simulate", "--hourly-jobs", "--days", "20", "--policy", "carbon", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["jobs"] == 480
    lines = captured.err.splitlines()
    assert lines[0] == "simulating 480 jobs: 0% (0/960), policy fifo"
    assert any(line.startswith("simulating 480 jobs: 50% (480/960), policy carbon") for line in lines)
    assert lines[-1].startswith("simulating 480 jobs: done in ")


def test_the_library_reports_its_steps():
    from greenai.carbon.grid_forecast import load_intensity_series
    from greenai.schedule.policies import Fifo
    from greenai.schedule.simulate import simulate
    from greenai.schedule.trace_jobs import hourly_jobs

    trace = load_intensity_series("gb_2020")
    jobs = hourly_jobs(trace.start_s + 7 * 86400, 2, duration_s=3600, slack_s=0)
    heard: list[tuple[float, float, str]] = []
    simulate(jobs, trace, Fifo(), on_advance=lambda *a: heard.append(a))
    assert heard[-1] == (48, 48, "fifo")
    assert [d for d, _, _ in heard] == sorted(d for d, _, _ in heard)


@pytest.mark.usefixtures("one_thread")
def test_optimize_counts_its_steps_to_the_end(tmp_path):
    import torch
    from torch import nn

    from greenai.config import Config
    from greenai.optimize.candidate import OptimizeTask
    from greenai.optimize.search import optimize
    from greenai.optimize.transforms.runtime import Threads

    x = torch.randn(64, 16)
    task = OptimizeTask(nn.Sequential(nn.Linear(16, 8)), lambda m: 1.0, inputs=[(x[:32],), (x[32:],)])
    heard: list[tuple[float, float, str]] = []
    optimize(
        task,
        [Threads(1)],
        repeats=2,
        min_repeat_s=0.02,
        config=Config(simulate=True, ledger=tmp_path / "l.db"),
        on_advance=lambda *a: heard.append(a),
    )
    done = [d for d, _, _ in heard]
    assert done == sorted(done) and heard[-1][0] == heard[-1][1] and heard[-1][2] == "done"
    assert any("round 2/2" in what for _, _, what in heard)
    assert all(d <= t for d, t, _ in heard)


def test_calibrate_counts_its_benchmarks(tmp_path, monkeypatch):
    from greenai.estimation.calibrate import calibrate

    monkeypatch.setenv("GREENAI_CALIBRATION_DIR", str(tmp_path / "calib"))
    heard: list[tuple[float, float, str]] = []
    calibrate(3.0, save=False, on_advance=lambda *a: heard.append(a))
    assert heard[0][0] == 0 and heard[-1] == (heard[-1][1], heard[-1][1], "fitting") and heard[-1][1] > 5
    assert [d for d, _, _ in heard] == sorted(d for d, _, _ in heard)
