"""Job files: TOML and JSON parse into Jobs; every bad field is a clear JobFileError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenai.schedule.jobfile import (
    JobFileError,
    load_job_file,
    parse_duration_s,
    parse_jobs,
)

GOOD_TOML = """
[defaults]
cpus = 0.5

[[job]]
id = "a"
command = ["python", "-c", "print(1)"]
slack = "1h30m"
predicted_energy_j = 1200
predicted_duration_s = 60

[[job]]
id = "b"
name = "train b"
callable = "pkg.mod:train"
kwargs = { epochs = 3, lr = 0.1 }
cpus = 2
gpus = 1
interruptible = true
deadline = "2h"
predicted_duration_s = 600
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_job_file(tmp_path: Path) -> None:
    a, b = load_job_file(write(tmp_path, "jobs.toml", GOOD_TOML))
    assert a.job_id == "a" and a.name == "a" and a.command == ("python", "-c", "print(1)")
    assert a.cpus == 0.5 and a.slack_s == 5400 and a.predicted_energy_j == 1200
    assert b.callable_path == "pkg.mod:train" and b.kwargs == {"epochs": 3, "lr": 0.1}
    assert b.name == "train b" and b.cpus == 2 and b.gpus == 1 and b.interruptible
    assert b.slack_s == 7200 - 600  # the deadline minus the predicted duration


def test_json_job_file_and_bare_list(tmp_path: Path) -> None:
    data = [{"id": "x", "command": "python -c 'print(2)'", "slack": 90}]
    (x,) = load_job_file(write(tmp_path, "jobs.json", json.dumps(data)))
    assert x.command == ("python", "-c", "print(2)") and x.slack_s == 90 and x.cpus == 1.0
    (y,) = load_job_file(write(tmp_path, "j2.json", json.dumps({"job": [{"id": "y", "callable": "m:f"}]})))
    assert y.callable_path == "m:f"


@pytest.mark.parametrize(
    "entry, needles",
    [
        ({"command": ["x"]}, ["job #1", "missing field 'id'"]),
        ({"id": "j"}, ["'j'", "exactly one of 'command' or 'callable'", "neither"]),
        ({"id": "j", "command": ["x"], "callable": "m:f"}, ["'j'", "both are set"]),
        ({"id": "j", "callable": "no_colon"}, ["'j'", "'callable'", "module:function"]),
        ({"id": "j", "command": []}, ["'j'", "'command'", "non-empty list"]),
        ({"id": "j", "command": ["x"], "cpus": -1}, ["'j'", "'cpus'", ">= 0"]),
        ({"id": "j", "command": ["x"], "gpus": "two"}, ["'gpus'"]),
        ({"id": "j", "command": ["x"], "slack": "soon"}, ["'j'", "'slack'", "not a duration"]),
        ({"id": "j", "command": ["x"], "deadline": "1h"}, ["'deadline' needs 'predicted_duration_s'"]),
        ({"id": "j", "command": ["x"], "deadline": 10, "predicted_duration_s": 60}, ["shorter than"]),
        ({"id": "j", "command": ["x"], "slack": 1, "deadline": 2}, ["'slack' or 'deadline', not both"]),
        ({"id": "j", "command": ["x"], "kwargs": {"a": 1}}, ["'kwargs' applies only to a 'callable'"]),
        ({"id": "j", "command": ["x"], "interruptible": "yes"}, ["'interruptible'", "true or false"]),
        ({"id": "j", "command": ["x"], "gpu": 1}, ["'j'", "unknown field 'gpu'"]),
        ({"id": 7, "command": ["x"]}, ["'id' must be a non-empty string"]),
    ],
)
def test_bad_job_names_job_and_field(entry: dict, needles: list[str]) -> None:
    with pytest.raises(JobFileError) as info:
        parse_jobs({"job": [entry]}, "jobs.toml")
    message = str(info.value)
    assert message.startswith("jobs.toml: job #1")
    for needle in needles:
        assert needle in message, message


def test_file_level_errors(tmp_path: Path) -> None:
    two = '[[job]]\nid = "a"\ncommand = ["x"]\n[[job]]\nid = "a"\ncommand = ["y"]\n'
    with pytest.raises(JobFileError, match=r"job #2: duplicate id 'a' \(already used by job #1\)"):
        load_job_file(write(tmp_path, "dup.toml", two))
    with pytest.raises(JobFileError, match="no jobs"):
        load_job_file(write(tmp_path, "empty.toml", ""))
    with pytest.raises(JobFileError, match="unknown top-level key 'jobs'"):
        load_job_file(write(tmp_path, "typo.toml", '[[jobs]]\nid = "a"\n'))
    with pytest.raises(JobFileError, match="not valid TOML"):
        load_job_file(write(tmp_path, "broken.toml", "[[job]\n"))
    with pytest.raises(JobFileError, match="not valid JSON"):
        load_job_file(write(tmp_path, "broken.json", "{"))
    with pytest.raises(JobFileError, match="use .toml or .json"):
        load_job_file(write(tmp_path, "jobs.yaml", "job: []"))
    with pytest.raises(JobFileError, match="does not exist"):
        load_job_file(tmp_path / "missing.toml")
    with pytest.raises(JobFileError, match=r"\[defaults\] cannot set 'id'"):
        parse_jobs({"defaults": {"id": "x"}, "job": [{"id": "a", "command": ["x"]}]})


@pytest.mark.parametrize(
    "text, seconds",
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("45s", 45.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        (" 2H 5M ", 7500.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("bad", ["", "h", "2x", "1h-5m", -1, True, None, "nan"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration_s(bad)


def test_custom_resources_are_read_and_checked(tmp_path: Path) -> None:
    from greenai.schedule.jobfile import JobFileError, load_job_file

    good = tmp_path / "jobs.toml"
    good.write_text('[[job]]\nid = "a"\ncommand = ["true"]\nresources = { accelerator = 1 }\n')
    assert load_job_file(good)[0].resources == {"accelerator": 1.0}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[job]]\nid = "a"\ncommand = ["true"]\nresources = { accelerator = "lots" }\n')
    with pytest.raises(JobFileError, match="'resources' must be a table"):
        load_job_file(bad)
    for key in ("CPU", "gpu"):
        builtin = tmp_path / f"{key}.toml"
        builtin.write_text(f'[[job]]\nid = "a"\ncommand = ["true"]\nresources = {{ {key} = 2 }}\n')
        with pytest.raises(JobFileError, match=f"cannot name '{key}'; use the field '{key.lower()}s'"):
            load_job_file(builtin)


def test_callable_and_estimate_take_the_one_spec_rule() -> None:
    """`callable` and `estimate` accept what greenai.factories loads (a .py file too: the
    estimator and the executor accept one) and reject with the rule's reason."""
    (job,) = parse_jobs(
        {
            "job": [
                {
                    "id": "f",
                    "callable": "jobs/train.py:Trainer.run",
                    "estimate": "models/zoo.py:build",
                    "estimate_steps": 10,
                }
            ]
        }
    )
    assert (job.callable_path, job.estimate_factory) == ("jobs/train.py:Trainer.run", "models/zoo.py:build")
    with pytest.raises(JobFileError, match=r"field 'callable' must look like 'module:function'.*'my-pkg' is neither"):
        parse_jobs({"job": [{"id": "j", "callable": "my-pkg:train"}]})
    with pytest.raises(JobFileError, match=r"field 'estimate' must look like 'module:factory'.*no ':'"):
        parse_jobs({"job": [{"id": "j", "command": ["x"], "estimate": "zoo", "estimate_steps": 1}]})
