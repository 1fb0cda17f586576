"""Bad input through the real `greenai` command (issue 16, items 12, 13, 14 and 16): each case
is one line on stderr naming the problem, a non-zero exit, no traceback and no "internal
error"; nothing hangs, nothing grows without bound, nothing is created by mistake."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest
from tests.helpers import assert_one_line_error, greenai

QUICK_TIMEOUT = 60  # seconds: a command that hangs fails the test instead of the run


def refused(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert_one_line_error(proc, code, *needles)
    assert "internal error" not in proc.stderr


def _cap_memory() -> None:  # in the child: without the bound, /dev/zero grew to 24 GB
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))


TRACE = "Time,Carbon Intensity\n" + "".join(f"2020-01-01T{h:02d}:00,{100 + h}\n" for h in range(24))


# -- 12. resource blow-ups --------------------------------------------------------------------


def test_a_device_as_a_trace_is_refused_before_it_is_read(tmp_path: Path) -> None:
    proc = greenai(
        "run", "--simulate", "--intensity", "trace:/dev/zero", "--", "true",
        ledger=tmp_path / "l.db", timeout=QUICK_TIMEOUT, preexec_fn=_cap_memory,
    )  # fmt: skip
    refused(proc, 1, "trace /dev/zero is a device, not a regular file")


def test_a_named_pipe_as_a_trace_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    proc = greenai(
        "run", "--simulate", "--intensity", f"trace:{tmp_path / 'pipe.csv'}", "--", "true",
        ledger=tmp_path / "l.db", timeout=QUICK_TIMEOUT,
    )  # fmt: skip
    refused(proc, 1, "is a named pipe (FIFO), not a regular file")


def test_a_named_pipe_as_a_job_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "jobs.toml")
    proc = greenai("schedule", "run", str(tmp_path / "jobs.toml"), ledger=tmp_path / "l.db", timeout=QUICK_TIMEOUT)
    refused(proc, 1, "job file", "is a named pipe (FIFO), not a regular file")


def test_a_directory_as_the_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "greenai.toml").mkdir()
    refused(greenai("env", cwd=tmp_path, timeout=QUICK_TIMEOUT), 1, "greenai.toml is a directory, not a regular file")


@pytest.mark.parametrize("days", ["1e9", "inf"])
def test_generated_jobs_are_bounded(tmp_path: Path, days: str) -> None:
    proc = greenai("schedule", "simulate", "--hourly-jobs", "--days", days, timeout=QUICK_TIMEOUT)
    refused(proc, 1, "days")


# -- 13. "internal error" one-liners ----------------------------------------------------------


def test_a_limit_too_large_for_sqlite_is_a_usage_error(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    assert greenai("run", "--simulate", "-q", "--", "true", ledger=ledger).returncode == 0
    refused(greenai("runs", "list", "--limit", "9223372036854775808", ledger=ledger), 2, "--limit", "1000000")
    refused(greenai("schedule", "batches", "--limit", "9223372036854775808", ledger=ledger), 2, "--limit")


@pytest.mark.parametrize(
    ("name", "text", "needles"),
    [
        ("greenai.toml", "meters = [1, 2]\n", ("meters", "[1, 2]")),
        ("pyproject.toml", "[tool]\ngreenai = 5\n", ("[tool.greenai] must be a table of settings",)),
        ("greenai.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n", ("nested more than 100 levels deep",)),
    ],
)
def test_config_files_of_the_wrong_shape_are_worded_errors(
    tmp_path: Path, name: str, text: str, needles: tuple[str, ...]
) -> None:
    (tmp_path / name).write_text(text)
    refused(greenai("env", cwd=tmp_path), 1, *needles)


@pytest.mark.parametrize("name", ["jobs.toml", "jobs.json"])
def test_deeply_nested_job_files_are_worded_errors(tmp_path: Path, name: str) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    (tmp_path / name).write_text(f"job = {deep}\n" if name.endswith(".toml") else deep)
    proc = greenai("schedule", "run", str(tmp_path / name), ledger=tmp_path / "l.db")
    refused(proc, 1, name, "nested more than 100 levels deep")
    if name.endswith(".json"):
        refused(greenai("schedule", "simulate", "--jobs", str(tmp_path / name)), 1, "nested more than 100 levels")


# -- 14. accepted silently --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needles"),
    [("pue = true\n", ("pue", "True")), ("sample_hz = true\n", ("sample_hz", "True"))],
)
def test_true_is_not_a_number(tmp_path: Path, text: str, needles: tuple[str, ...]) -> None:
    (tmp_path / "greenai.toml").write_text(text)
    refused(greenai("run", "--simulate", "--", "true", cwd=tmp_path), 1, *needles, "true and false are not numbers")


def test_a_table_as_the_ledger_path_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "greenai.toml").write_text("ledger = {a = 1}\n")
    refused(greenai("run", "--simulate", "--", "true", cwd=tmp_path), 1, "ledger", "{'a': 1}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["greenai.toml"]


def test_an_empty_intensity_is_refused(tmp_path: Path) -> None:
    proc = greenai("run", "--simulate", "--intensity", "", "--", "true", ledger=tmp_path / "l.db")
    refused(proc, 1, "intensity is empty")
    assert not (tmp_path / "l.db").exists()


@pytest.mark.parametrize("power", ["inf", "1e300"])
def test_an_infinite_job_power_is_refused(power: str) -> None:
    proc = greenai("schedule", "simulate", "--hourly-jobs", "--days", "1", "--power-w", power)
    refused(proc, 1, "power_w must be a finite number > 0")


@pytest.mark.parametrize("value", ["inf", "1e301"])
def test_an_absurd_intensity_is_refused(tmp_path: Path, value: str) -> None:
    proc = greenai("run", "--simulate", "--intensity", value, "--", "true", ledger=tmp_path / "l.db")
    refused(proc, 1, "carbon intensity must be a finite number >= 0")


@pytest.mark.parametrize(("field", "needle"), [("cpus = 1e9", "asks for 1e+09 CPUs"), ("gpus = 1", "asks for 1 GPUs")])
def test_a_job_the_local_machine_cannot_hold_is_refused_before_anything_runs(
    tmp_path: Path, field: str, needle: str
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "jobs.toml").write_text(
        f'[[job]]\nid = "big"\ncommand = ["touch", "{marker}"]\n{field}\n'
        f'[[job]]\nid = "small"\ncommand = ["touch", "{marker}"]\n'
    )
    proc = greenai(
        "schedule", "run", str(tmp_path / "jobs.toml"), "--simulate",
        ledger=tmp_path / "l.db", env={"CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    refused(proc, 1, needle, "this machine has")
    assert not marker.exists()


# -- 16. trace CSVs ---------------------------------------------------------------------------


def test_a_trace_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + TRACE.encode())
    (tmp_path / "jobs.csv").write_text("job_id,arrival,duration_s,slack_s\na,2020-01-01T01:00,3600,7200\n")
    proc = greenai(
        "schedule", "simulate", "--carbon", str(tmp_path / "bom.csv"), "--jobs", str(tmp_path / "jobs.csv"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["jobs"] == 1


def test_a_two_day_gap_in_a_short_trace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gap.csv").write_text(
        "Time,Carbon Intensity\n2020-01-01T00:00,100\n2020-01-01T01:00,200\n2020-01-03T01:00,300\n"
    )
    proc = greenai(
        "run", "--simulate", "--intensity", f"trace:{tmp_path / 'gap.csv'}", "--", "true", ledger=tmp_path / "l.db"
    )
    refused(proc, 1, "gap of 2 d between line 3 and line 4")
