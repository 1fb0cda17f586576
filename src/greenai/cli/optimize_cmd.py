"""`greenai optimize MODULE:FACTORY`: try transforms, measure joules per sample at a quality
bound, show the Pareto front, save the recommended model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from greenai.cli.options import (
    JsonOpt,
    LedgerOpt,
    SimulateOpt,
    build_config,
    print_json,
)
from greenai.cli.render import make_console
from greenai.errors import GreenAIError

if TYPE_CHECKING:  # the command imports torch lazily
    from greenai.optimize.search import Outcome, Study


def optimize(
    factory: Annotated[
        str,
        typer.Argument(
            help="MODULE:FACTORY or FILE.py:FACTORY, a function returning a greenai.optimize.OptimizeTask (or (task, [pipeline, ...]))."
        ),
    ],
    try_: Annotated[
        list[str] | None,
        typer.Option(
            "--try",
            help="A pipeline to try, e.g. 'prune-structured=0.5+int8-static' (repeatable; default: every family). See greenai.optimize.plans.",
        ),
    ] = None,
    max_quality_drop: Annotated[
        float, typer.Option(min=0, help="Accept candidates whose quality is at most this much below the baseline's.")
    ] = 0.01,
    min_quality: Annotated[
        float | None,
        typer.Option(help="Accept candidates whose quality is at least this (overrides --max-quality-drop)."),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, max=100, help="Interleaved measurement rounds per candidate.")] = 5,
    save: Annotated[Path, typer.Option(help="Where to save the recommended model.")] = Path("greenai-optimized.pt"),
    plot: Annotated[Path, typer.Option(help="Where to write the energy-quality plot (PNG).")] = Path(
        "greenai-pareto.png"
    ),
    ledger: LedgerOpt = None,
    simulate: SimulateOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Find the cheapest way to run a model within a quality bound, by measured joules."""
    from greenai.factories import call_factory
    from greenai.optimize.candidate import OptimizeTask, as_args
    from greenai.optimize.plans import default_plan, parse_pipeline
    from greenai.optimize.plot import plot_study
    from greenai.optimize.search import optimize as run_search

    tried = [parse_pipeline(text) for text in try_] if try_ else None  # bad names fail before any training
    made = call_factory(factory)
    task, plan = made if isinstance(made, tuple) and len(made) == 2 else (made, None)
    if not isinstance(task, OptimizeTask):
        raise GreenAIError(f"{factory}() must return an OptimizeTask (or (task, pipelines)), got {type(task).__name__}")
    if tried is not None:
        plan = tried
    elif plan is None:
        plan = default_plan()
    config = build_config(ledger=ledger, simulate=simulate)
    console = make_console(stderr=json_out)
    with console.status("optimizing") as status:
        study = run_search(
            task,
            plan,
            max_quality_drop=max_quality_drop,
            min_quality=min_quality,
            repeats=repeats,
            config=config,
            name=f"optimize {factory}",
            on_progress=lambda message: status.update(message),
        )
    saved, save_error = try_save_recommended(study, save, as_args(task.inputs[0]))
    plot_path = plot_study(study, plot)
    if json_out:
        print_json(
            {
                **study_to_dict(study),
                "saved_model": str(saved) if saved else None,
                "save_error": save_error,
                "plot": str(plot_path),
            }
        )
        return
    render_study(console, study)
    if saved:
        console.print(f"Saved the recommended model to [bold]{saved}[/] (load it with greenai.optimize.load_model).")
    elif save_error:
        console.print(f"[yellow]The recommended model was not saved:[/] {save_error}", highlight=False)
    console.print(f"Energy-quality plot: [bold]{plot_path}[/]")


def save_recommended(study: Study, path: Path, example: tuple | None = None) -> Path | None:
    """Save the recommended candidate's model with the facts it was judged on (None when
    nothing was recommended); GreenAIError when the model cannot be saved."""
    from greenai.optimize.saved import save_model

    rec = study.recommended
    if rec is None or rec.candidate is None:
        return None
    m = rec.measurement
    return save_model(
        path,
        rec.candidate.model,
        {
            "name": rec.name,
            "transforms": list(rec.transforms),
            "quality": rec.quality,
            "quality_name": study.quality_name,
            "energy_per_sample_j": m.energy_per_sample_j if m else None,
            "provenance": m.provenance.value if m else None,
            "study_id": study.study_id,
            "threads": rec.candidate.threads,
            "batch_size": rec.candidate.extra.get("batch_size"),
        },
        example,
    )


def try_save_recommended(study: Study, path: Path, example: tuple | None = None) -> tuple[Path | None, str | None]:
    """(saved path, None), or (None, why not): a model that cannot be saved must not cost
    the user the results of the search that found it."""
    try:
        return save_recommended(study, path, example), None
    except GreenAIError as e:
        return None, str(e)


def render_study(console: Console, study: Study) -> None:
    """The candidates table, then the recommendation in words."""
    base = study.baseline.measurement
    provenance = base.provenance.value if base else "?"
    table = Table(title=f"Candidates: energy per sample ({provenance}), {study.quality_name}", title_justify="left")
    for col in (
        "candidate",
        "energy/sample",
        "± (95%)",
        "spread",
        "vs baseline",
        study.quality_name,
        "size",
        "nonzero params",
    ):
        table.add_column(col, justify="left" if col == "candidate" else "right", overflow="fold")
    for o in study.outcomes:
        m = o.measurement
        if m is None:
            table.add_row(o.name, f"[yellow]{o.status}[/]", "", "", "", "", "", "")
            continue
        ratio = study.energy_ratio(o.name)
        front = " [green]◆[/]" if o.name in study.front else ""
        quality = f"{o.quality:.4f}" + ("" if (o.quality or 0) >= study.bound else " [red]✗[/]")
        table.add_row(
            o.name + front,
            _energy(m.energy_per_sample_j),
            f"{100 * m.rel_uncertainty:.0f}%",
            f"{100 * m.rel_spread:.0f}%",
            "—" if o is study.baseline else _ratio(ratio),
            quality,
            f"{o.size_bytes / 1024:.0f} KiB" if o.size_bytes else "?",
            f"{o.nonzero_parameters:,}" if o.nonzero_parameters is not None else "?",
        )
    console.print(table)
    shown: set[str] = set()  # a composed candidate repeats its steps' notes: print each once
    for o in study.outcomes:
        for text in (f"[yellow]{o.status}[/]: {o.reason}",) if o.measurement is None else o.notes:
            if text not in shown:
                shown.add(text)
                console.print(f"  [dim]{o.name}:[/] {text}", highlight=False)
    console.print(
        f"[dim]◆ Pareto front. Quality bound {study.bound:.4g}. ± combines the meter's band and "
        "the repeats' spread; ratios share one meter, so only the spread (half the interquartile "
        "range over the median) separates candidates.[/]"
    )
    rec = study.recommended
    if rec is None:
        console.print("[yellow]No candidate meets the quality bound.[/]")
    elif rec is study.baseline:
        console.print("Recommendation: keep the baseline; no candidate within the bound used less energy.")
    else:
        ratio = study.energy_ratio(rec.name) or 0
        verdict = (
            "greener, beyond the measurement spread"
            if study.greener
            else "[yellow]not distinguishable from the baseline within the measurement spread[/]"
        )
        console.print(
            f"Recommendation: [bold]{rec.name}[/] — {ratio:.2f}x less energy per sample "
            f"({verdict}), {study.quality_name} {rec.quality:.4f} vs {study.baseline.quality:.4f}."
        )


def study_to_dict(study: Study) -> dict[str, Any]:
    """The study as JSON-ready data (one entry per candidate, skipped and failed included)."""

    def outcome(o: Outcome) -> dict[str, Any]:
        m = o.measurement
        return {
            "name": o.name,
            "transforms": list(o.transforms),
            "status": o.status,
            "reason": o.reason,
            "quality": o.quality,
            "energy_per_sample_j": m.energy_per_sample_j if m else None,
            "time_per_sample_s": m.time_per_sample_s if m else None,
            "rel_uncertainty": m.rel_uncertainty if m else None,
            "provenance": m.provenance.value if m else None,
            "energy_ratio_vs_baseline": study.energy_ratio(o.name) if m else None,
            "size_bytes": o.size_bytes,
            "parameters": o.parameters,
            "nonzero_parameters": o.nonzero_parameters,
            "notes": list(o.notes),
            "on_pareto_front": o.name in study.front,
        }

    return {
        "study_id": study.study_id,
        "run_id": study.run_id,
        "quality_name": study.quality_name,
        "quality_bound": study.bound,
        "recommended": study.recommended.name if study.recommended else None,
        "greener": study.greener,
        "candidates": [outcome(o) for o in study.outcomes],
    }


def _ratio(ratio: float | None) -> str:
    if not ratio:
        return ""
    return f"{ratio:.2f}x less" if ratio >= 1 else f"{1 / ratio:.2f}x more"


def _energy(joules: float) -> str:
    if joules >= 1:
        return f"{joules:.3g} J"
    if joules >= 1e-3:
        return f"{joules * 1e3:.3g} mJ"
    return f"{joules * 1e6:.3g} µJ"
