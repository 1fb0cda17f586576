"""`greenai demo`: train a real CNN on scikit-learn's digits under the tracker and report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from greenai.cli.options import (
    IntensityOpt,
    JsonOpt,
    LedgerOpt,
    PriceOpt,
    PueOpt,
    SimulateOpt,
    build_config,
    print_json,
)
from greenai.cli.render import (
    line,
    make_console,
    one_line,
    render_result,
    render_study,
    result_to_dict,
    study_to_dict,
    text,
)
from greenai.errors import GreenAIError
from greenai.units import format_energy_per_unit

if TYPE_CHECKING:  # torch and the demo load lazily
    from rich.console import Console

    from greenai.config import Config
    from greenai.demo.digits import TrainOutcome
    from greenai.optimize.search import Study
    from greenai.tracking.result import RunResult


def demo(
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Training epochs.")] = 12,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Batch size.")] = 32,
    ledger: LedgerOpt = None,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
    price: PriceOpt = None,
    simulate: SimulateOpt = False,
    json_out: JsonOpt = False,
    optimize: Annotated[
        bool, typer.Option("--optimize/--no-optimize", help="Go on to cut the trained model's inference energy.")
    ] = True,
    repeats: Annotated[int, typer.Option(min=1, max=50, help="Interleaved measurement rounds per candidate.")] = 3,
    out_dir: Annotated[Path, typer.Option(help="Where the optimized model, the plot and the report go.")] = Path(
        "greenai-demo"
    ),
) -> None:
    """Train a CNN on scikit-learn's digits under the tracker, print its energy, then cut its inference energy by measured joules."""
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise GreenAIError(f"the demo needs torch and scikit-learn: pip install 'greenai[demo]' ({e})") from None
    from greenai.demo.digits import train_digits
    from greenai.tracking.tracker import Tracker

    config = build_config(ledger, intensity, pue, price, simulate)
    console = make_console(stderr=json_out)
    tracker = Tracker("digits-demo", tags={"dataset": "sklearn-digits", "model": "cnn"}, config=config)
    with Progress(
        TextColumn("[bold]training[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=json_out,
    ) as progress:
        task = progress.add_task("epochs", total=epochs, status="")

        def on_epoch(epoch: int, acc: float) -> None:
            s = tracker.snapshot()
            progress.update(
                task, advance=1, status=f"test acc {acc:.3f}  energy {s.energy_j:.1f} J ({s.provenance.value})"
            )

        with tracker as run:
            outcome = train_digits(run, epochs=epochs, batch_size=batch_size, on_epoch=on_epoch)
    result = tracker.result
    assert result is not None
    study = _optimize(outcome, config, repeats, out_dir, console, json_out) if optimize else None
    report_path, report_error = _write_report(result, out_dir / "digits-report.html")
    if json_out:
        print_json(
            {
                **result_to_dict(result),
                "test_accuracy": outcome.test_accuracy,
                "optimize": study_to_dict(study[0]) if study else None,
                "optimized_model": str(study[1]) if study else None,
                "plot": str(study[2]) if study else None,
                "report": str(report_path) if report_path else None,
            }
        )
        return
    console.print(
        line(
            f"Trained a CNN on scikit-learn digits: {outcome.epochs} epochs, {outcome.train_samples} training samples, ",
            (f"test accuracy {outcome.test_accuracy:.3f}", "bold"),
            "\n",
        )
    )
    render_result(console, result)
    if result.stored:  # only a run the ledger holds can be shown again
        console.print(
            text(
                f"See it again with `greenai runs show {result.run_id[:8]}`; list runs with `greenai runs list`.", "dim"
            )
        )
    if study is not None:
        console.print(
            line(
                "\n",
                ("Cutting the inference energy", "bold"),
                " of the trained CNN (test digits served in batches of 32):",
            )
        )
        render_study(console, study[0])
        console.print(before_after_table(study[0]))
        if study[0].caveat:  # the demo's comparison, too, says when a busy machine made it
            console.print(line(("note:", "yellow"), f" before and after: {study[0].caveat}"))
        if study[1] is not None:
            console.print(line("Optimized model: ", (one_line(study[1]), "bold")))
        console.print(line("Energy-accuracy plot: ", (one_line(study[2]), "bold")))
    if report_path is not None:
        console.print(line("Report of the training run (open it in a browser): ", (one_line(report_path), "bold")))
    else:
        console.print(text(f"No report written: {report_error}", "dim"))


def _write_report(result: RunResult, path: Path) -> tuple[Path | None, str | None]:
    """The training run's HTML report; a missing `report` extra or an unwritable folder is a
    note, not a failed demo."""
    from greenai.reports import report

    try:
        return report(result, output=path), None
    except GreenAIError as e:
        return None, str(e)


def _optimize(
    outcome: TrainOutcome, config: Config, repeats: int, out_dir: Path, console: Console, quiet: bool
) -> tuple[Study, Path | None, Path]:
    """Search the trained CNN's cheaper variants; (study, saved model or None, plot)."""
    from greenai.demo.digits import load_digits_data
    from greenai.demo.digits_optimize import digits_plan, digits_task
    from greenai.optimize.plot import plot_study
    from greenai.optimize.saved import try_save_recommended
    from greenai.optimize.search import optimize as run_search

    task = digits_task(outcome.model, load_digits_data())
    with console.status("optimizing") as status:
        study = run_search(
            task,
            digits_plan(),
            max_quality_drop=0.01,
            repeats=repeats,
            config=config,
            name="digits-demo-optimize",
            on_progress=lambda message: None if quiet else status.update(text(message)),
        )
    saved, error = try_save_recommended(study, out_dir / "digits-optimized.pt", task.inputs[0])
    if error and not quiet:
        console.print(line(("The optimized model was not saved:", "yellow"), f" {error}"))
    return study, saved, plot_study(study, out_dir / "digits-pareto.png")


def before_after_table(study: Study) -> Table:
    """Baseline and recommendation side by side."""
    table = Table(title="Before and after", title_justify="left")
    for col in ("", "model", "energy/sample", "provenance", study.quality_name, "size", "nonzero params", "machine"):
        table.add_column(col, justify="left" if col in ("", "model", "provenance", "machine") else "right")
    rows = [("before", study.baseline)]
    if study.recommended is not None:
        rows.append(("after", study.recommended))
    for label, o in rows:
        m = o.measurement
        assert m is not None  # the baseline and a recommendation are measured
        table.add_row(
            label,
            o.name,
            f"{format_energy_per_unit(m.energy_per_sample_j)} ± {100 * m.rel_uncertainty:.0f}%",
            m.provenance.value,
            f"{o.quality:.4f}",
            f"{o.size_bytes / 1024:.0f} KiB" if o.size_bytes else "?",
            f"{o.nonzero_parameters:,}" if o.nonzero_parameters is not None else "?",
            _machine(m.disturbed, m.coload_cores),
        )
    return table


def _machine(disturbed: bool, cores: float | None) -> Text:
    """How busy the machine was while a model was measured, in words."""
    if cores is None:
        return text("co-load unknown", "dim")
    if disturbed:
        return text(f"busy: {cores:.2f} CPUs used by others", "yellow")
    return text(f"quiet ({cores:.2f} CPUs used by others)")
