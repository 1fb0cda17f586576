"""`greenai runs list | show | export | compare | delete | check`: read and manage the ledger
(main.py assembles the `runs` group)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from greenai.cli.options import JsonOpt, LedgerOpt, build_config, open_ledger, print_json
from greenai.cli.render import band, line, make_console, one_line, render_run, text, visible
from greenai.errors import GreenAIError
from greenai.hardware.coload import CoLoadSummary
from greenai.ledger import compare_runs, default_ledger_path, export_runs, record_to_dict
from greenai.ledger import distributed as job_rows
from greenai.ledger.check import check_ledger
from greenai.ledger.compare import (
    Comparison,
    RunComparison,
    band_legend,
    coload_legend,
    repeat_groups,
    thresholds_of,
    verdict,
)
from greenai.ledger.export import coload_to_dict, iso_utc, run_cost, sample_to_dict
from greenai.ledger.records import RunRecord, RunStatus
from greenai.ledger.run_forecasts import run_forecasts
from greenai.ledger.store import Ledger
from greenai.units import format_energy

MAX_LISTED = 1_000_000


def list_runs(
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LISTED, metavar="N", help="At most this many runs, newest first.")
    ] = 20,
    all_runs: Annotated[bool, typer.Option("--all", help="Every run (overrides --limit).")] = False,
    name: Annotated[str | None, typer.Option(help="Only runs with this name.")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"Only runs with this status ({', '.join(RunStatus.ALL)}).")
    ] = None,
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List recorded runs, newest first."""
    if status is not None and status not in RunStatus.ALL:
        raise GreenAIError(f"unknown status {status!r}; use one of {', '.join(RunStatus.ALL)}")
    with open_ledger(ledger) as store:
        records = store.list_runs(limit=MAX_LISTED if all_runs else limit, name=name, status=status)
        total = store.count_runs(name=name, status=status)
    shown = f"{len(records)} of {total} runs" if len(records) < total else f"{total} run(s)"
    more = "; --limit N or --all for more" if len(records) < total and not all_runs else ""
    if json_out:
        print_json([record_to_dict(r) for r in records])
        if more:  # the list stays a list; the truncation is said beside it, on stderr
            make_console(stderr=True).print(f"{shown} (newest first){more}")
        return
    table = Table(title=f"{shown} (newest first){more}", title_justify="left")
    for col in (
        "id",
        "name",
        "status",
        "started (UTC)",
        "duration",
        "energy",
        "provenance",
        "gCO2e",
        "cost",
        "J/sample",
        "co-load",
    ):
        table.add_column(
            col,
            justify="right" if col in ("duration", "energy", "gCO2e", "cost", "J/sample", "co-load") else "left",
            no_wrap=col in ("id", "status"),
            min_width=8 if col == "id" else None,
            overflow="fold" if col == "name" else "ellipsis",  # a name is shown whole, folded if it must
        )
    for r in records:
        s = r.snapshot
        samples = s.counters.get("samples", 0)
        cost = run_cost(r)
        table.add_row(
            one_line(r.start.run_id[:8]),
            one_line(r.start.name),
            one_line(r.status),
            iso_utc(r.start.started_at)[:19].replace("T", " "),
            f"{s.duration_s:.1f} s",
            band(s.energy_j, s.rel_uncertainty),
            s.provenance.value,
            f"{s.carbon_g:.3g}",
            "—" if cost is None else f"{cost:.3g} {one_line(s.currency)}".strip(),
            f"{s.energy_j / samples:.3g}" if samples else "",
            _coload_cell(s.coload),
        )
    console = make_console()
    console.print(table)
    if records:
        thresholds = [r.snapshot.coload.threshold_cores for r in records if r.snapshot.coload is not None]
        console.print(text(coload_legend(thresholds), "dim"))


def show(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    ledger: LedgerOpt = None,
    samples: Annotated[
        bool, typer.Option("--samples", help="With --json: include the power and co-load time series.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show one run: totals per device and per phase, carbon, cost, meters used."""
    with open_ledger(ledger) as store:
        record = store.get_run(run_id)
        rows = store.samples(record.start.run_id) if samples else []
        coload_rows = store.coload(record.start.run_id) if samples else []
        forecasts = run_forecasts(store, record.start.run_id)
        job = _job_of(store, record)
    if json_out:
        data = record_to_dict(record)
        data["job"] = job
        data["forecasts"] = [asdict(f) for f in forecasts]
        if samples:
            data["samples"] = [sample_to_dict(s) for s in rows]
            data["coload_samples"] = [asdict(w) for w in coload_rows]  # one per window of ~1 s
        print_json(data)
        return
    console = make_console()
    render_run(
        console,
        run_id=record.start.run_id,
        name=record.start.name,
        status=record.status,
        snapshot=record.snapshot,
        cost_configured=run_cost(record) is not None,
    )
    console.print(f"Started {iso_utc(record.start.started_at)} on {record.start.host} (pid {record.start.pid})")
    if record.command is not None:
        ended = "" if record.exit_code is None else f" (exit code {record.exit_code})"
        console.print(line("  command: ", (one_line(shlex.join(record.command)), "bold"), ended))
    if job is not None:
        console.print(_job_line(job))
    for meter in record.start.environment.get("meters", []):
        console.print(
            line("  meter ", (one_line(meter["name"]), "bold"), f" ({meter['provenance']}): {meter['detail']}")
        )
    if record.start.tags:
        console.print("  tags: " + ", ".join(f"{one_line(k)}={one_line(v)}" for k, v in record.start.tags.items()))
    if forecasts:
        first, last = forecasts[0], forecasts[-1]
        console.print(
            f"  forecasts: {len(forecasts)} made during the run; "
            f"first at {first.progress:.0%}: {format_energy(first.energy_j)} "
            f"[{format_energy(first.energy_low_j)} .. {format_energy(first.energy_high_j)}]; "
            f"last at {last.progress:.0%}: {format_energy(last.energy_j)} ({last.provenance})"
        )


def _job_of(store: Ledger, record: RunRecord) -> dict[str, Any] | None:
    """The distributed job a run was a rank of: its id, the rank, the world size, and whether
    this ledger holds the job (its writer, rank 0, keeps it in the ledger of its own host)."""
    joined = record.start.environment.get("distributed")
    found = store.transaction(lambda conn: job_rows.job_of_run(conn, record.start.run_id), write=False)
    if isinstance(joined, dict) and joined.get("job_id") is not None:
        job_id, rank = str(joined["job_id"]), joined.get("rank")
    elif found is not None:
        job_id, rank = found
    else:
        return None
    in_ledger = store.transaction(lambda conn: job_rows.holds_job(conn, job_id), write=False)
    world = joined.get("world_size") if isinstance(joined, dict) else None
    return {"job_id": job_id, "rank": rank, "world_size": world, "in_this_ledger": in_ledger}


def _job_line(job: dict[str, Any]) -> Text:
    of = f" of {job['world_size']}" if job.get("world_size") is not None else ""
    where = (
        ("  (greenai jobs show " + one_line(job["job_id"]) + ")", "dim")
        if job["in_this_ledger"]
        else ("  (the job is in its writer's ledger: rank 0's host, or Ray's driver)", "dim")
    )
    return line("  job: ", (one_line(job["job_id"]), "bold"), f", rank {job['rank']}{of}", where)


def export(
    run_ids: Annotated[list[str] | None, typer.Argument(help="Runs to export (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    samples: Annotated[
        bool,
        typer.Option(
            "--samples", help="Export the power samples instead of one row per run (csv), or with the runs (json)."
        ),
    ] = False,
    ledger: LedgerOpt = None,
) -> None:
    """Export runs as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise GreenAIError(f"unknown format {fmt!r}; use csv or json")
    with open_ledger(ledger) as store:
        records = [store.get_run(r) for r in run_ids] if run_ids else store.list_runs(limit=MAX_LISTED)
        if output is None:
            export_runs(records, fmt, sys.stdout, samples, load_samples=store.samples)  # type: ignore[arg-type]
            return
        try:
            with output.open("w", newline="") as out:
                export_runs(records, fmt, out, samples, load_samples=store.samples)  # type: ignore[arg-type]
        except OSError as e:
            raise GreenAIError(f"cannot write {output}: {e.strerror}") from None
    make_console(stderr=True).print(f"Exported {len(records)} run(s) to {output}")


def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more runs; the first is the baseline.")],
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare runs against the first: energy, time, carbon, cost, J per counter."""
    if len(run_ids) < 2:
        raise GreenAIError("compare needs at least two run ids; the first is the baseline")
    with open_ledger(ledger) as store:
        records = [store.get_run(r) for r in run_ids]
        comparison = compare_runs(records, repeat_groups(store, records))
    if json_out:
        print_json(_comparison_json(comparison))
        return
    table = Table(
        title=f"Compared with {comparison.baseline.name} ({comparison.baseline.run_id[:8]})", title_justify="left"
    )
    for col in (
        "id",
        "name",
        "provenance",
        "energy",
        "x energy",
        "energy: noise",
        "time",
        "x time",
        "gCO2e",
        *(f"J/{c}" for c in comparison.counters),
        "co-load (CPUs)",
    ):
        table.add_column(
            col,
            justify="left" if col in ("id", "name", "provenance", "energy: noise") else "right",
            overflow="fold" if col == "name" else "ellipsis",  # a name is shown whole, folded if it must
        )
    base = comparison.baseline
    for r in comparison.runs:
        table.add_row(
            one_line(r.run_id[:8]),
            one_line(r.name),
            r.provenance.value,
            f"{r.energy_j:.4g} J",
            _ratio_with_band(r, "energy_j"),
            _verdict(r, base, "energy_j"),
            f"{r.duration_s:.3g} s",
            _ratio_with_band(r, "duration_s"),
            f"{r.carbon_g:.3g}",
            *(f"{r.j_per[c]:.4g}" if r.j_per.get(c) is not None else "" for c in comparison.counters),
            _coload_cell(r.coload),
        )
    console = make_console()
    console.print(table)
    console.print(text(band_legend(thresholds_of(comparison.runs)), "dim"))
    for note in comparison.notes:
        console.print(line(("note:", "yellow"), f" {note}"))


def delete(
    run_ids: Annotated[list[str], typer.Argument(help="Runs to delete (ids or unique prefixes).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete runs and everything recorded with them."""
    with open_ledger(ledger) as store:
        records = [store.get_run(r) for r in run_ids]  # all must exist before any is deleted
        if not yes:
            if not sys.stdin.isatty():
                raise GreenAIError("refusing to delete without confirmation: pass --yes")
            names = ", ".join(f"{r.start.run_id[:8]} ({r.start.name})" for r in records)
            typer.confirm(f"Delete {one_line(names)}?", abort=True)
        deleted = [store.delete_run(r.start.run_id) for r in records]
    if json_out:
        print_json({"deleted": deleted})
    else:
        make_console().print(f"Deleted {len(deleted)} run(s): " + ", ".join(d[:8] for d in deleted))


def check(ledger: LedgerOpt = None, json_out: JsonOpt = False) -> None:
    """Check the whole ledger file, read-only; exit 1 if anything is wrong.

    Every page (SQLite's integrity_check), the schema, and every run as greenai reads it
    back; opening a ledger (e.g. at every tracked run) checks only what is cheap."""
    path = ledger or build_config().ledger or default_ledger_path()
    report = check_ledger(path)
    if json_out:
        print_json({**asdict(report), "path": str(report.path), "ok": report.ok})
    else:
        for problem in report.problems:
            print(visible(problem))
        if report.ok:
            print(visible(f"ledger {path}: ok (schema v{report.schema_version}, {report.runs} run(s))"))
    if not report.ok:
        raise GreenAIError(f"ledger {path}: {len(report.problems)} problem(s) found")


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}x"


def _ratio_with_band(r: RunComparison, key: str) -> str:
    """E.g. "0.502x ±12%"; the baseline's own ratio (1x) has no band."""
    return " ".join(x for x in (_ratio(r.ratio.get(key)), r.band_text(key)) if x)


VERDICT_STYLES = {"baseline": "dim", "disturbed": "yellow", "unknown": "dim", "within": "yellow", "beyond": ""}


def _verdict(r: RunComparison, base: RunComparison, key: str) -> Text:
    """In plain words next to the ratio (ledger.compare.verdict): within or beyond the noise, or a busy machine."""
    said = verdict(r, base, key)
    return text(said.words, VERDICT_STYLES[said.kind])


def _coload_cell(coload: CoLoadSummary | None) -> Text:
    """The run's co-load in a table cell ("disturbed 1.90" in yellow, "0.05"; "?": not measured)."""
    if coload is None:
        return text("?", "dim")
    return text(coload.short(), "yellow" if coload.disturbed else "")


def _comparison_json(comparison: Comparison) -> Any:
    """The comparison as JSON, with the verdicts in words beside the figures."""
    data = _jsonable(asdict(comparison))
    for run, r in zip(data["runs"], comparison.runs, strict=True):
        run["disturbed"] = r.disturbed
        run["coload"] = coload_to_dict(r.coload)
        for key, ratio_band in r.band.items():
            run["band"][key]["verdict"] = ratio_band.describe()
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return getattr(value, "value", value)  # enums as their values
