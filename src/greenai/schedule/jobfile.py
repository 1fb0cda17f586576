"""Job files: a TOML or JSON list of jobs for `greenai schedule run`.

```toml
[defaults]                 # optional: merged into every job (a job's own keys win)
cpus = 1

[[job]]
id = "train-a"
command = ["python", "train.py", "--lr", "0.1"]   # or a string, split like a shell would
slack = "2h"                                      # or seconds; or deadline = "3h"
predicted_energy_j = 5000

[[job]]
id = "train-b"
callable = "mypackage.train:main"                 # or "path/train.py:main"; called with kwargs
kwargs = { epochs = 3 }
```

JSON takes the same keys: `{"defaults": {...}, "job": [{...}, ...]}` or a bare list of jobs.
`deadline` is relative to the job's submission and needs `predicted_duration_s`: the slack
is what is left of the deadline once the job has run. Every problem is a `JobFileError`
naming the file, the job and the field.

A job file is a regular file of at most `MAX_JOB_FILE_BYTES` (16 MiB) holding at most
`MAX_JOBS` (100,000) jobs; nesting past 100 levels is refused (`greenai.inputs`).
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenai.errors import DurationError, JobFileError
from greenai.factories import spec_problem
from greenai.inputs import MIB, load_json, load_toml, read_user_file
from greenai.schedule.jobs import Job
from greenai.units import parse_duration_s  # the one duration parser (re-exported here)

JOB_KEYS = frozenset(
    {
        "id",
        "name",
        "command",
        "callable",
        "kwargs",
        "cpus",
        "gpus",
        "slack",
        "deadline",
        "interruptible",
        "predicted_energy_j",
        "predicted_duration_s",
        "resources",
        "estimate",
        "estimate_steps",
    }
)
TOP_KEYS = frozenset({"job", "defaults"})
MAX_JOB_FILE_BYTES = 16 * MIB
MAX_JOBS = 100_000


def load_job_file(path: Path | str) -> list[Job]:
    """Read and validate the job file at `path` (.toml or .json)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise JobFileError(f"job file {path}: unknown type {suffix or '(none)'!r}; use .toml or .json")
    if not os.path.lexists(path):
        raise JobFileError(f"job file {path} does not exist")
    text = read_user_file(path, "job file", MAX_JOB_FILE_BYTES, JobFileError)
    load = load_toml if suffix == ".toml" else load_json
    data: Any = load(text, str(path), JobFileError)
    return parse_jobs(data, str(path))


def parse_jobs(data: Any, source: str = "job file") -> list[Job]:
    """Validate already-parsed job-file data (a mapping with `job` and optional `defaults`,
    or a list of job mappings) and build the jobs."""
    if isinstance(data, list):
        data = {"job": data}
    if not isinstance(data, Mapping):
        raise JobFileError(f"{source}: expected a table of jobs, got {type(data).__name__}")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise JobFileError(
            f"{source}: unknown top-level key {unknown[0]!r}; expected [[job]] entries and an optional [defaults] table"
        )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise JobFileError(f"{source}: [defaults] must be a table")
    if "id" in defaults:
        raise JobFileError(f"{source}: [defaults] cannot set 'id'; every job needs its own")
    entries = data.get("job")
    if not entries:
        raise JobFileError(f"{source}: no jobs; add at least one [[job]] with an id and a command or callable")
    if not isinstance(entries, list):
        raise JobFileError(f"{source}: 'job' must be a list of tables ([[job]])")
    if len(entries) > MAX_JOBS:
        raise JobFileError(f"{source}: {len(entries):,} jobs, more than the {MAX_JOBS:,} a job file may hold")
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise JobFileError(f"{source}: job #{index} must be a table, got {type(entry).__name__}")
        job = parse_job({**defaults, **entry}, f"{source}: job #{index}")
        if job.job_id in seen:
            raise JobFileError(
                f"{source}: job #{index}: duplicate id {job.job_id!r} (already used by job #{seen[job.job_id]})"
            )
        seen[job.job_id] = index
        jobs.append(job)
    return jobs


def parse_job(entry: Mapping[str, Any], where: str) -> Job:
    """One job from its mapping; `where` names it in errors until its id is known."""
    unknown = sorted(set(entry) - JOB_KEYS)
    job_id = entry.get("id")
    if not isinstance(job_id, str) or not job_id.strip():
        raise JobFileError(
            f"{where}: missing field 'id' (a non-empty string)"
            if job_id is None
            else f"{where}: field 'id' must be a non-empty string (got {job_id!r})"
        )
    where = f"{where} ({job_id!r})"
    if unknown:
        raise JobFileError(f"{where}: unknown field {unknown[0]!r}; known fields: {', '.join(sorted(JOB_KEYS))}")
    name = entry.get("name", job_id)
    if not isinstance(name, str):
        raise JobFileError(f"{where}: field 'name' must be a string (got {name!r})")
    command = _command(entry.get("command"), where)
    callable_path = _spec(entry, "callable", "function", where)
    if (command is None) == (callable_path is None):
        raise JobFileError(
            f"{where}: give exactly one of 'command' or 'callable'"
            + (" (both are set)" if command is not None else " (neither is set)")
        )
    kwargs = entry.get("kwargs", {})
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise JobFileError(f"{where}: field 'kwargs' must be a table with string keys")
    if kwargs and callable_path is None:
        raise JobFileError(f"{where}: field 'kwargs' applies only to a 'callable' job")
    duration = _number(entry, "predicted_duration_s", where)
    slack = _slack(entry, duration, where)
    interruptible = entry.get("interruptible", False)
    if not isinstance(interruptible, bool):
        raise JobFileError(f"{where}: field 'interruptible' must be true or false (got {interruptible!r})")
    cpus = _number(entry, "cpus", where)
    gpus = _number(entry, "gpus", where)
    resources = entry.get("resources", {})
    if not isinstance(resources, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for k, v in resources.items()
    ):
        raise JobFileError(f"{where}: field 'resources' must be a table of custom resource names to amounts >= 0")
    builtin = [k for k in resources if k.upper() in ("CPU", "GPU")]
    if builtin:
        raise JobFileError(
            f"{where}: field 'resources' cannot name {builtin[0]!r}; "
            f"use the field '{builtin[0].lower()}s' for CPUs and GPUs"
        )
    try:
        return Job(
            job_id=job_id,
            name=name,
            command=command,
            callable_path=callable_path,
            kwargs=dict(kwargs),
            cpus=1.0 if cpus is None else cpus,
            gpus=gpus or 0.0,
            resources={k: float(v) for k, v in resources.items()},
            estimate_factory=_estimate(entry, where),
            estimate_steps=_steps(entry, where),
            slack_s=slack,
            interruptible=interruptible,
            predicted_duration_s=duration,
            predicted_energy_j=_number(entry, "predicted_energy_j", where),
        )
    except ValueError as e:
        raise JobFileError(f"{where}: {e}") from None


def _estimate(entry: Mapping[str, Any], where: str) -> str | None:
    spec = _spec(entry, "estimate", "factory", where)
    if spec is not None and entry.get("estimate_steps") is None:
        raise JobFileError(f"{where}: field 'estimate' needs 'estimate_steps' (training steps to estimate)")
    return spec


def _spec(entry: Mapping[str, Any], key: str, noun: str, where: str) -> str | None:
    """A field naming a function, checked by greenai.factories' one rule (nothing imported)."""
    spec = entry.get(key)
    problem = None if spec is None else spec_problem(spec)
    if problem:
        raise JobFileError(
            f"{where}: field {key!r} must look like 'module:{noun}' or 'path/file.py:{noun}' (got {spec!r}): {problem}"
        )
    return spec


def _steps(entry: Mapping[str, Any], where: str) -> int | None:
    steps = entry.get("estimate_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise JobFileError(f"{where}: field 'estimate_steps' must be a whole number >= 1 (got {steps!r})")
    return steps


def _command(raw: Any, where: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = shlex.split(raw)
        except ValueError as e:
            raise JobFileError(f"{where}: field 'command' cannot be split: {e}") from None
    if not isinstance(raw, Sequence) or not raw or not all(isinstance(a, str) for a in raw):
        raise JobFileError(f"{where}: field 'command' must be a non-empty list of strings or a string")
    return tuple(raw)


def _number(entry: Mapping[str, Any], key: str, where: str) -> float | None:
    raw = entry.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0:
        raise JobFileError(f"{where}: field {key!r} must be a number >= 0 (got {raw!r})")
    return float(raw)


def _slack(entry: Mapping[str, Any], duration: float | None, where: str) -> float:
    if "slack" in entry and "deadline" in entry:
        raise JobFileError(f"{where}: give 'slack' or 'deadline', not both")
    for key in ("slack", "deadline"):
        if key in entry:
            try:
                seconds = parse_duration_s(entry[key])
            except DurationError as e:
                raise JobFileError(f"{where}: field {key!r}: {e}") from None
            if key == "slack":
                return seconds
            if duration is None:
                raise JobFileError(
                    f"{where}: field 'deadline' needs 'predicted_duration_s' "
                    "(the slack is the deadline minus the duration)"
                )
            if seconds < duration:
                raise JobFileError(
                    f"{where}: deadline {seconds:g} s is shorter than the predicted duration {duration:g} s"
                )
            return seconds - duration
    return 0.0
