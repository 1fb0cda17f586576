"""Job files (`schedule run`) and job traces (`schedule simulate`) are bounded (issue 16,
items 12 and 13): regular files only, of bounded size and job count, nesting refused before
it can recurse; the jobs the simulator generates are bounded too."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from greenai.errors import ConfigError, GreenAIError, JobFileError
from greenai.schedule.jobfile import MAX_JOB_FILE_BYTES, MAX_JOBS, load_job_file
from greenai.schedule.trace_jobs import MAX_SIMULATED_JOBS, hourly_jobs, load_jobs


def raised_within(fn: Callable[[], object], fifo: Path, seconds: float = 10.0) -> BaseException | None:
    """What `fn` raised (None if it returned); fails the test if it blocked on `fifo`."""
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 — handed to the test's thread
            outcome.append(e)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(fifo, "w"):  # let the reader go, so that the run ends
            pass
        pytest.fail(f"reading {fifo} blocked")
    return outcome[0]


@pytest.mark.parametrize("name", ["jobs.toml", "jobs.json"])
def test_nesting_too_deep_is_a_job_file_error(tmp_path: Path, name: str) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    path = tmp_path / name
    path.write_text(f"a = {deep}\n" if name.endswith(".toml") else deep)
    with pytest.raises(JobFileError, match=r"nested more than 100 levels deep"):
        load_job_file(path)
    if name.endswith(".toml"):  # parsed without trouble, but too deep to pass on
        path.write_text('[[job]]\nid = "a"\ncallable = "m:f"\nkwargs = ' + "{k = " * 150 + "1" + "}" * 150 + "\n")
    else:
        path.write_text('{"job": [{"id": "a", "callable": "m:f", "kwargs": ' + '{"k": ' * 150 + "1" + "}" * 150 + "}]}")
    with pytest.raises(JobFileError, match=r"nested more than 100 levels deep"):
        load_job_file(path)


def test_a_job_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(JobFileError, match="job file .*dir.toml is a directory, not a regular file"):
        load_job_file(tmp_path / "dir.toml")
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    error = raised_within(lambda: load_job_file(fifo), fifo)
    assert isinstance(error, JobFileError) and "is a named pipe (FIFO), not a regular file" in str(error)


def test_a_job_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with open(path, "wb") as f:
        f.truncate(MAX_JOB_FILE_BYTES + 1)
    with pytest.raises(JobFileError, match="over the maximum of 16 MiB"):
        load_job_file(path)


def test_more_jobs_than_the_maximum_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"job": [{}] * (MAX_JOBS + 1)}))
    with pytest.raises(JobFileError, match="100,001 jobs, more than the 100,000 a job file may hold"):
        load_job_file(path)


def test_a_job_trace_is_bounded_like_a_job_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(ConfigError, match="nested more than 100 levels deep"):
        load_jobs(deep)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ConfigError, match="is a directory, not a regular file"):
        load_jobs(tmp_path / "dir.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    error = raised_within(lambda: load_jobs(fifo), fifo)
    assert isinstance(error, ConfigError) and "named pipe" in str(error)
    many = tmp_path / "many.csv"
    many.write_text("job_id,arrival,duration_s\n" + "".join(f"j{i},{i},60\n" for i in range(MAX_SIMULATED_JOBS + 1)))
    with pytest.raises(ConfigError, match="more than the 100,000 jobs"):
        load_jobs(many)


def test_a_bom_before_a_job_trace_header_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_bytes(b"\xef\xbb\xbfjob_id,arrival,duration_s\nj1,0,60\n")
    assert [j.job_id for j in load_jobs(path)] == ["j1"]


@pytest.mark.parametrize("days", [1e9, 4.2e3, float("inf"), float("nan"), 0.0, -1.0])
def test_generated_jobs_are_bounded(days: float) -> None:
    with pytest.raises(ConfigError) as e:
        hourly_jobs(0.0, days)
    assert "days" in str(e.value)
    assert len(hourly_jobs(0.0, 7.0)) == 168


def test_the_bounds_are_greenai_errors() -> None:
    assert issubclass(JobFileError, GreenAIError) and issubclass(ConfigError, GreenAIError)
