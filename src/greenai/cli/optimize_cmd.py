"""`greenai optimize MODULE:FACTORY`: try transforms, measure joules per sample at a quality
bound, show the Pareto front, save the recommended model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from greenai.cli.options import (
    JsonOpt,
    LedgerOpt,
    SimulateOpt,
    build_config,
    print_json,
)
from greenai.cli.render import line, make_console, one_line, progress, render_study, study_to_dict
from greenai.errors import GreenAIError


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
    from greenai.optimize.saved import try_save_recommended
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
    with progress(make_console(stderr=True), "optimizing") as report:
        study = run_search(
            task,
            plan,
            max_quality_drop=max_quality_drop,
            min_quality=min_quality,
            repeats=repeats,
            config=config,
            name=f"optimize {factory}",
            on_advance=lambda done, total, what: report.update(done, total, what),
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
        console.print(
            line(
                "Saved the recommended model to ",
                (one_line(saved), "bold"),
                " (load it with greenai.optimize.load_model).",
            )
        )
    elif save_error:
        console.print(line(("The recommended model was not saved:", "yellow"), f" {save_error}"))
    console.print(line("Energy-quality plot: ", (one_line(plot_path), "bold")))
