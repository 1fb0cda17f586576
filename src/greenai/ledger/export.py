"""Export runs as JSON or CSV, and the JSON-safe dict form the CLI's `--json` prints.

Times are unix seconds inside; exports add ISO-8601 UTC strings. Energy is also given in
kWh at this edge. Non-finite numbers (unknown values) become null / empty cells.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from greenai.hardware.coload import CoLoadSummary
from greenai.ledger.records import RunRecord, SampleRow
from greenai.units import joules_to_kwh

RUN_COLUMNS = (
    "run_id",
    "name",
    "status",
    "started_at",
    "duration_s",
    "energy_j",
    "energy_kwh",
    "provenance",
    "rel_uncertainty",
    "carbon_g",
    "cost",
    "currency",
    "pue",
    "carbon_source",
    "tags",  # a JSON object, e.g. {"model": "cnn"}
    "command",  # what `greenai run` ran, as a shell would read it
    "exit_code",
    "coload_median_cores",  # CPUs other processes kept busy while it ran (median; hardware/coload.py)
    "coload_max_cores",
    "disturbed",  # true when that co-load passed the threshold for a tenth of the run or more
)
SAMPLE_COLUMNS = ("run_id", "time_utc", "t", "device", "kind", "power_w", "energy_j", "provenance")

SampleLoader = Callable[[str], Sequence[SampleRow]]


def export_runs(
    records: Sequence[RunRecord],
    fmt: Literal["csv", "json"],
    out: TextIO,
    samples: bool = False,
    *,
    load_samples: SampleLoader | None = None,
) -> None:
    """Write `records` to `out`. JSON: a list of runs with every field (and their samples
    if `samples`). CSV: one row per run, or with `samples` one row per sample.

    Records carry no samples, so `samples=True` needs `load_samples` (e.g. `Ledger.samples`).
    """
    if samples and load_samples is None:
        raise ValueError("exporting samples needs load_samples (e.g. Ledger.samples)")
    loader = load_samples if samples else None
    if fmt == "json":
        _write_json(records, out, loader)
    elif fmt == "csv" and loader is not None:
        _write_sample_csv(records, out, loader)
    elif fmt == "csv":
        _write_run_csv(records, out)
    else:
        raise ValueError(f"unknown export format {fmt!r}; use 'csv' or 'json'")


def _write_json(records: Sequence[RunRecord], out: TextIO, loader: SampleLoader | None) -> None:
    runs = [record_to_dict(r) for r in records]
    if loader is not None:
        for run, record in zip(runs, records, strict=True):
            run["samples"] = [sample_to_dict(s) for s in loader(record.start.run_id)]
    json.dump(runs, out, indent=2, allow_nan=False)
    out.write("\n")


def _write_run_csv(records: Sequence[RunRecord], out: TextIO) -> None:
    writer = csv_writer(out)
    writer.writerow(RUN_COLUMNS)
    for record in records:
        row = record_to_dict(record) | {
            "started_at": iso_utc(record.start.started_at),
            "tags": json.dumps(dict(record.start.tags), sort_keys=True, ensure_ascii=False),
            "command": None if record.command is None else shlex.join(record.command),
            **_coload_cells(record),
        }
        writer.writerow(csv_cells(row, RUN_COLUMNS))


def _write_sample_csv(records: Sequence[RunRecord], out: TextIO, loader: SampleLoader) -> None:
    writer = csv_writer(out)
    writer.writerow(SAMPLE_COLUMNS)
    for record in records:
        run_id = record.start.run_id
        for sample in loader(run_id):
            row = sample_to_dict(sample) | {"run_id": run_id, "time_utc": iso_utc(sample.t)}
            writer.writerow(csv_cells(row, SAMPLE_COLUMNS))


def record_to_dict(record: RunRecord) -> dict[str, Any]:
    """A run as a flat, JSON-safe dict: enums as their values, NaN and inf as None."""
    start, snap = record.start, record.snapshot
    return {
        "run_id": start.run_id,
        "name": start.name,
        "status": record.status,
        "started_at": start.started_at,
        "started_at_utc": iso_utc(start.started_at),
        "ended_at": record.ended_at,
        "ended_at_utc": None if record.ended_at is None else iso_utc(record.ended_at),
        "updated_at": record.updated_at,
        "host": start.host,
        "pid": start.pid,
        "duration_s": _finite(snap.duration_s),
        "energy_j": _finite(snap.energy_j),
        "energy_kwh": _finite(joules_to_kwh(snap.energy_j)),
        "rel_uncertainty": _finite(snap.rel_uncertainty),
        "provenance": snap.provenance.value,
        "facility_energy_j": _finite(snap.facility_energy_j),
        "carbon_g": _finite(snap.carbon_g),
        "cost": run_cost(record),
        "currency": snap.currency,
        "carbon_source": snap.carbon_source,
        "pue": _finite(snap.pue),
        "tags": dict(start.tags),
        "command": None if record.command is None else list(record.command),
        "exit_code": record.exit_code,
        "environment": _json_safe(start.environment),
        "devices": [
            {
                "device": d.device,
                "kind": d.kind.value,
                "energy_j": _finite(d.energy_j),
                "provenance": d.provenance.value,
                "rel_uncertainty": _finite(d.rel_uncertainty),
            }
            for d in snap.devices
        ],
        "phases": [
            {
                "phase": p.phase,
                "device": p.device,
                "energy_j": _finite(p.energy_j),
                "duration_s": _finite(p.duration_s),
                "calls": p.calls,
            }
            for p in snap.phases
        ],
        "counters": {name: _finite(value) for name, value in snap.counters.items()},
        # the co-load the run ran under (None: not measured, or recorded before schema v7)
        "coload": coload_to_dict(snap.coload),
        # what could not be read back of this run (see queries.py); absent when nothing
        **({"problems": list(record.problems)} if record.problems else {}),
    }


def coload_to_dict(coload: CoLoadSummary | None) -> dict[str, Any] | None:
    """A run's co-load as JSON: CPUs other processes (steal included) kept busy, median and
    max over windows of about a second, steal alone, the share of the time at or above the
    threshold, and the verdict with its words."""
    if coload is None:
        return None
    return {
        "median_cores": _finite(coload.median_cores),
        "max_cores": _finite(coload.max_cores),
        "steal_median_cores": _finite(coload.steal_median_cores),
        "steal_max_cores": _finite(coload.steal_max_cores),
        "busy_share": _finite(coload.busy_share),
        "threshold_cores": _finite(coload.threshold_cores),
        "seconds": _finite(coload.seconds),
        "disturbed": coload.disturbed,
        "summary": coload.describe(),
    }


def _coload_cells(record: RunRecord) -> dict[str, Any]:
    c = record.snapshot.coload
    return {
        "coload_median_cores": None if c is None else _finite(c.median_cores),
        "coload_max_cores": None if c is None else _finite(c.max_cores),
        "disturbed": None if c is None else str(c.disturbed).lower(),
    }


def price_configured(record: RunRecord) -> bool:
    """Whether the run was tracked with an electricity price (`price_per_kwh`), as its recorded
    config says (settings are stored as text: null, "" and "None" are no price); a run recorded
    without its config is judged by its cost (0 is no price). The one rule: `run_cost` is what
    every command, report and page shows."""
    config = record.start.environment.get("config")
    if isinstance(config, dict) and "price_per_kwh" in config:
        return config["price_per_kwh"] not in (None, "", "None")
    return record.snapshot.cost != 0


def run_cost(record: RunRecord) -> float | None:
    """The run's cost, or None when no price was set (a cost of 0.0 would read as free)."""
    return _finite(record.snapshot.cost) if price_configured(record) else None


def sample_to_dict(sample: SampleRow) -> dict[str, Any]:
    return {
        "t": sample.t,
        "device": sample.device,
        "kind": sample.kind.value,
        "power_w": _finite(sample.power_w),
        "energy_j": _finite(sample.energy_j),
        "provenance": sample.provenance.value,
    }


def iso_utc(t: float) -> str:
    """Unix seconds as ISO-8601 UTC, e.g. 2024-05-01T12:00:00.250000+00:00."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def csv_writer(out: TextIO) -> Any:
    """Text cells always quoted: with "\\n" ending rows, the csv module would leave a name
    holding a carriage return unquoted, and a reader would split the row there."""
    return csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)


# a cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...), +cmd|...)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cells(row: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    """CSV cells in column order; None (unknown) as an empty cell; a text cell that a
    spreadsheet would run as a formula (a run named `=HYPERLINK(...)`) gets a leading single
    quote, as OWASP's advice on CSV injection says (numbers are written as they are)."""
    return [_cell(row[c]) for c in columns]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
