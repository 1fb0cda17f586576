"""`greenai schedule batches` and `greenai schedule show BATCH`: read batches back from the ledger.

What `schedule run` recorded in `schedule_jobs`: each job's status (a batch still running
shows pending, deferred, running or paused jobs), node, energy with its provenance, carbon,
scheduling overhead, pauses, its run id (for `greenai runs show`) and error.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from greenai.cli.options import JsonOpt, LedgerOpt, open_ledger, print_json
from greenai.cli.render import make_console, one_line, text
from greenai.errors import GreenAIError
from greenai.ledger.export import iso_utc
from greenai.ledger.jobs import JobStatus, batch_jobs, list_batches
from greenai.units import format_energy

STATUS_STYLE = {JobStatus.COMPLETED: "green", JobStatus.FAILED: "red", JobStatus.PAUSED: "yellow"}


def batches(
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many batches, newest first.")] = 20,
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the batches `schedule run` recorded, newest first."""
    with open_ledger(ledger) as store:
        rows = list_batches(store, limit=limit)
    if json_out:
        print_json([asdict(r) for r in rows])
        return
    table = Table(title=f"{len(rows)} batch(es)", title_justify="left")
    for col in ("batch", "first submitted (UTC)", "jobs", "completed", "failed", "energy"):
        table.add_column(col, justify="left" if col in ("batch", "first submitted (UTC)") else "right")
    for r in rows:
        started = iso_utc(r.first_submitted_at)[:19].replace("T", " ") if r.first_submitted_at else "—"
        table.add_row(
            one_line(r.batch_id), started, str(r.jobs), str(r.completed), str(r.failed), format_energy(r.energy_j)
        )
    make_console().print(table)


def show(
    batch_id: Annotated[str, typer.Argument(help="Batch id or a unique prefix of it.")],
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show every job of one batch as recorded in the ledger."""
    with open_ledger(ledger) as store:
        jobs = batch_jobs(store, batch_id)
        path: Path = store.path
    if not jobs:
        raise GreenAIError(f"no batch {batch_id!r} in {path}; `greenai schedule batches` lists them")
    if json_out:
        print_json([asdict(j) for j in jobs])
        return
    table = Table(title=f"Batch {jobs[0].batch_id}", title_justify="left")
    for col in (
        "job",
        "status",
        "node",
        "energy",
        "provenance",
        "gCO2e",
        "duration",
        "overhead",
        "pauses",
        "predicted",
        "run",
        "error",
    ):
        table.add_column(
            col,
            overflow="fold",
            justify="right" if col in ("energy", "gCO2e", "duration", "overhead", "pauses", "predicted") else "left",
        )
    for j in jobs:
        energy = (
            f"{format_energy(j.energy_j)} ± {(j.rel_uncertainty or 0) * 100:.0f}%" if j.energy_j is not None else "—"
        )
        predicted = format_energy(j.predicted_energy_j) if j.predicted_energy_j is not None else "—"
        table.add_row(
            one_line(j.job_id),
            text(one_line(j.status), STATUS_STYLE.get(j.status, "")),
            one_line(j.node[:12]),
            energy,
            j.provenance or "—",
            f"{j.carbon_g:.3g}" if j.carbon_g is not None else "—",
            f"{j.duration_s:.2f} s" if j.duration_s is not None else "—",
            f"{j.scheduling_overhead_s * 1000:.0f} ms" if j.scheduling_overhead_s is not None else "—",
            str(j.pauses),
            predicted,
            one_line((j.run_id or "—")[:8]),
            text(j.error),
        )
    console = make_console()
    console.print(table)
    done = [j for j in jobs if j.energy_j is not None]
    console.print(
        f"{sum(j.status == JobStatus.COMPLETED for j in jobs)}/{len(jobs)} completed, "
        f"{sum(j.status == JobStatus.FAILED for j in jobs)} failed; energy "
        f"{format_energy(sum(j.energy_j or 0.0 for j in done))} over {len(done)} job(s) with a run"
    )
