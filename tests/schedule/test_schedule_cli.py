"""`greenai schedule simulate` through Typer (the `schedule` group main.py assembles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from greenai.cli.main import schedule_app
from greenai.errors import CarbonDataError, ConfigError
from greenai.schedule.policies import parse_node
from greenai.units import parse_duration_s as parse_duration

runner = CliRunner()


def invoke(*args: str):
    app = typer.Typer()
    app.add_typer(schedule_app, name="schedule")
    return runner.invoke(app, ["schedule", "simulate", *args], catch_exceptions=True)


def test_simulate_table():
    result = invoke("--carbon", "fr_2020", "--hourly-jobs", "--days", "2", "--start", "2020-03-01")
    assert result.exit_code == 0, result.output
    for needle in (
        "48 jobs against carbon trace fr_2020",
        "fifo",
        "carbon",
        "oracle",
        "deadline misses",
        "% of oracle saving",
        "100.0%",
        "estimated",
    ):
        assert needle in result.output


def test_simulate_json_with_a_job_file_and_a_stack(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "job_id,arrival,duration_s,slack_s,energy_j\n"
        + "".join(f"j{i},2020-06-01T{i:02d}:00:00,3600,43200,3600000\n" for i in range(6))
    )
    result = invoke(
        "--carbon",
        "gb_2020",
        "--jobs",
        str(jobs),
        "--policy",
        "carbon+budget",
        "--policy",
        "oracle",
        "--max-power-w",
        "1000",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = [p["policy"] for p in data["policies"]]
    assert names == ["fifo", "carbon+budget", "oracle"] and data["jobs"] == 6
    for p in data["policies"]:
        assert p["energy_j"] == pytest.approx(6 * 3.6e6) and p["provenance"] == "estimated"
    oracle = data["policies"][2]
    assert oracle["share_of_oracle_saving"] == 1.0 and oracle["saving_vs_fifo_g"] >= 0


def test_simulate_bad_input(tmp_path):
    r = invoke("--hourly-jobs", "--policy", "greedy")
    assert isinstance(r.exception, ConfigError) and "known policies: fifo, carbon" in str(r.exception)
    r = invoke("--carbon", str(tmp_path / "nope.csv"), "--hourly-jobs")
    assert isinstance(r.exception, CarbonDataError) and "neither a shipped trace" in str(r.exception)
    r = invoke("--carbon", "gb_2020")
    assert isinstance(r.exception, ConfigError) and "--jobs FILE or --hourly-jobs" in str(r.exception)
    r = invoke("--hourly-jobs", "--duration", "soon")
    assert isinstance(r.exception, ConfigError) and "--duration 'soon'" in str(r.exception)


def test_option_parsers():
    assert parse_duration("1.5h") == 5400 and parse_duration("30min") == 1800 and parse_duration("90") == 90
    node = parse_node("gpu0:0.6:4")
    assert (node.name, node.energy_factor, node.slots) == ("gpu0", 0.6, 4)
    with pytest.raises(ConfigError, match="NAME"):
        parse_node(":1")


def test_schedule_run_through_the_real_command(tmp_path: Path) -> None:
    from tests.helpers import as_json, assert_one_line_error, greenai

    jobs = tmp_path / "jobs.toml"
    jobs.write_text(
        '[[job]]\nid = "ok"\ncommand = ["python", "-c", "pass"]\n'
        '[[job]]\nid = "bad"\ncommand = ["python", "-c", "raise SystemExit(3)"]\n'
    )
    proc = greenai("schedule", "run", str(jobs), "--json", ledger=tmp_path / "l.db")
    assert proc.returncode == 1, proc.stderr  # one job failed; the batch went on
    import json

    data = json.loads(proc.stdout)
    assert data is not None
    text = json.dumps(data)
    assert '"ok"' in text and '"bad"' in text and "exit code 3" in text
    missing = tmp_path / "missing.toml"
    missing.write_text('[[job]]\nname = "no id"\ncommand = ["true"]\n')
    assert_one_line_error(greenai("schedule", "run", str(missing), ledger=tmp_path / "l.db"), 1, "missing field 'id'")
    assert (
        as_json(greenai("schedule", "simulate", "--hourly-jobs", "--days", "2", "--json", ledger=tmp_path / "l.db"))
        is not None
    )
