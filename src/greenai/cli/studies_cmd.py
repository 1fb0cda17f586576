"""`greenai studies [STUDY]`: the optimization studies recorded in the ledger."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from greenai.cli.options import JsonOpt, LedgerOpt, open_ledger, print_json
from greenai.cli.render import energy_ratio_text, make_console, one_line
from greenai.units import format_energy_per_unit


def studies(
    study: Annotated[str | None, typer.Argument(help="A study id (or unique prefix): show its candidates.")] = None,
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List `greenai optimize` studies, or show one study's candidates as recorded."""
    from greenai.ledger.candidates import list_studies, one_study, study_run_names

    with open_ledger(ledger) as store:
        tasks = {s: _task_name(name) for s, name in study_run_names(store).items()}
        if study is None:
            found = list_studies(store)
            rows = []
        else:
            rows = one_study(store, study)
    if json_out:
        print_json(
            [{"study_id": s, "task": tasks.get(s), "created_at": t, "candidates": n} for s, t, n in found]
            if study is None
            else [{**asdict(r), "task": tasks.get(r.study_id)} for r in rows]
        )
        return
    console = make_console()
    if study is None:
        table = Table(title=f"{len(found)} optimization stud{'y' if len(found) == 1 else 'ies'}", title_justify="left")
        for col in ("study", "task", "started", "candidates"):
            table.add_column(col)
        for study_id, created, count in found:
            table.add_row(
                one_line(study_id[:12]),
                one_line(tasks.get(study_id) or "?"),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(created)),
                str(count),
            )
        console.print(table)
        return
    base = next((r for r in rows if r.name == "baseline"), None)
    task = tasks.get(rows[0].study_id)
    of_task = f" of {one_line(task)}" if task else " (its run was deleted: task unknown)"
    table = Table(
        title=f"Study {rows[0].study_id[:12]}{of_task}: energy per sample, {rows[0].quality_name}",
        title_justify="left",
    )
    for col in (
        "candidate",
        "status",
        "energy/sample",
        "provenance",
        "vs baseline",
        rows[0].quality_name or "quality",
        "nonzero params",
        "reason",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        if r is base:
            ratio = "baseline"
        elif base and base.energy_per_sample_j and r.energy_per_sample_j:
            ratio = energy_ratio_text(base.energy_per_sample_j / r.energy_per_sample_j)
        else:
            ratio = ""
        table.add_row(
            one_line(r.name),
            one_line(r.status),
            f"{format_energy_per_unit(r.energy_per_sample_j)} ± {100 * (r.rel_uncertainty or 0):.0f}%"
            if r.energy_per_sample_j
            else "",
            r.provenance,
            ratio,
            f"{r.quality:.4f}" if r.quality is not None else "",
            f"{r.nonzero_parameters:,}" if r.nonzero_parameters is not None else "",
            r.reason,
        )
    console.print(table)


def _task_name(run_name: str) -> str:
    """The task a study searched, from the name of its run: `greenai optimize FILE.py:TASK`
    names it "optimize FILE.py:TASK"; a study run from Python keeps the name it was given."""
    task = run_name.removeprefix("optimize ").strip()
    return task or run_name
