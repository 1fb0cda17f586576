"""Job traces for the scheduling simulator: read from CSV or JSON, or generated.

Fields (CSV header or JSON object keys): ``job_id``, ``arrival`` (ISO 8601 time, read as UTC
when it has no offset, or unix seconds), ``duration_s`` are required; ``slack_s`` (default 0),
``energy_j`` (default: duration x the simulator's power), ``interruptible`` (default false)
and ``name`` are optional. JSON is a list of such objects or ``{"jobs": [...]}``.
Every problem is a ``ConfigError`` naming the file, the row and the field.

Bounds: a job trace is a regular file of at most ``MAX_JOB_TRACE_BYTES`` (64 MiB; nesting past
100 levels refused, see ``greenai.inputs``), and a simulation has at most
``MAX_SIMULATED_JOBS`` (100,000: over 11 years of hourly jobs), read or generated.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from greenai.config import parse_bool
from greenai.errors import ConfigError
from greenai.inputs import MIB, load_json, read_user_file
from greenai.schedule.jobs import Job
from greenai.units import S_PER_DAY, S_PER_HOUR, format_duration

REQUIRED = ("job_id", "arrival", "duration_s")
OPTIONAL = ("slack_s", "energy_j", "interruptible", "name")
MAX_JOB_TRACE_BYTES = 64 * MIB
MAX_SIMULATED_JOBS = 100_000


def _number(value: Any, field: str, where: str, *, positive: bool = False) -> float:
    try:
        if isinstance(value, bool):  # JSON true/false are not numbers
            raise TypeError(value)
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: {field} {value!r} is not a number") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise ConfigError(f"{where}: {field} {value!r} must be a finite number {'>' if positive else '>='} 0")
    return x


def _time(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, "arrival", where)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: arrival {text!r} is neither ISO 8601 nor unix seconds") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def job_from_record(record: Mapping[str, Any], where: str) -> Job:
    """One job from a row or object; ``where`` names it in error messages."""
    missing = [f for f in REQUIRED if record.get(f) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    energy = record.get("energy_j")
    return Job(
        job_id=str(record["job_id"]).strip(),
        name=str(record.get("name") or ""),
        arrival_s=_time(record["arrival"], where),
        predicted_duration_s=_number(record["duration_s"], "duration_s", where, positive=True),
        slack_s=_number(record.get("slack_s") or 0, "slack_s", where),
        predicted_energy_j=None if energy in (None, "") else _number(energy, "energy_j", where),
        interruptible=parse_bool(record.get("interruptible", False), f"{where}: interruptible"),
    )


def load_jobs(path: str | os.PathLike[str]) -> list[Job]:
    """Jobs of a ``.csv`` or ``.json`` file, sorted by arrival; ids must be unique."""
    file = Path(path)
    text = read_user_file(file, "job file", MAX_JOB_TRACE_BYTES, ConfigError)
    if file.suffix.lower() == ".json":
        jobs = _from_json(text, file)
    else:
        jobs = _from_csv(text, file)
    if not jobs:
        raise ConfigError(f"job file {file}: no jobs")
    seen: set[str] = set()
    for job in jobs:
        if job.job_id in seen:
            raise ConfigError(f"job file {file}: job_id {job.job_id!r} appears twice")
        seen.add(job.job_id)
    return sorted(jobs, key=lambda j: j.arrival_s)


def _from_csv(text: str, file: Path) -> list[Job]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    absent = [f for f in REQUIRED if f not in header]
    if absent:
        raise ConfigError(f"job file {file}: header {header} lacks column(s) {', '.join(absent)}")
    jobs: list[Job] = []
    for row in reader:
        if len(jobs) >= MAX_SIMULATED_JOBS:
            raise ConfigError(_too_many(file))
        clean = {(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        if any(clean.values()):
            jobs.append(job_from_record(clean, f"job file {file} line {reader.line_num}"))
    return jobs


def _from_json(text: str, file: Path) -> list[Job]:
    data = load_json(text, f"job file {file}", ConfigError)
    if isinstance(data, dict):
        data = data.get("jobs")
    if not isinstance(data, list):
        raise ConfigError(f'job file {file}: expected a list of jobs or {{"jobs": [...]}}')
    if len(data) > MAX_SIMULATED_JOBS:
        raise ConfigError(_too_many(file))
    jobs = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConfigError(f"job file {file} job #{i}: expected an object, got {type(item).__name__}")
        jobs.append(job_from_record(item, f"job file {file} job #{i}"))
    return jobs


def _too_many(file: Path) -> str:
    return f"job file {file}: more than the {MAX_SIMULATED_JOBS:,} jobs a simulation may have"


def hourly_jobs(
    start_s: float,
    days: float,
    *,
    duration_s: float = S_PER_HOUR,
    slack_s: float = 12 * S_PER_HOUR,
    every_s: float = S_PER_HOUR,
    energy_j: float | None = None,
    interruptible: bool = False,
) -> list[Job]:
    """The benchmark's pattern: a job of ``duration_s`` every ``every_s`` for ``days`` days
    from ``start_s``, each with ``slack_s`` of slack; at most ``MAX_SIMULATED_JOBS`` jobs."""
    values = (days, duration_s, every_s, slack_s, start_s)
    if not all(math.isfinite(v) for v in values) or days <= 0 or duration_s <= 0 or every_s <= 0 or slack_s < 0:
        raise ConfigError(
            f"hourly jobs need finite days, duration and period > 0 and slack >= 0 (got days={days!r}, "
            f"duration_s={duration_s!r}, every_s={every_s!r}, slack_s={slack_s!r}, start_s={start_s!r})"
        )
    count = round(days * S_PER_DAY / every_s)
    if count > MAX_SIMULATED_JOBS:
        most = MAX_SIMULATED_JOBS * every_s / S_PER_DAY
        raise ConfigError(
            f"{days:g} days of jobs every {format_duration(every_s)} would be {count:,} jobs; a simulation "
            f"has at most {MAX_SIMULATED_JOBS:,} (days <= {most:g})"
        )
    return [
        Job(
            job_id=f"job-{i:05d}",
            arrival_s=start_s + i * every_s,
            slack_s=slack_s,
            predicted_duration_s=duration_s,
            predicted_energy_j=energy_j,
            interruptible=interruptible,
            prediction_source="synthetic",
        )
        for i in range(count)
    ]
