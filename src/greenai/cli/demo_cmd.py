"""`greenai demo`: train a real CNN on scikit-learn's digits under the tracker and report."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from greenai.cli.options import (IntensityOpt, JsonOpt, LedgerOpt, PriceOpt, PueOpt,
                                 SimulateOpt, build_config, print_json)
from greenai.cli.render import make_console, render_run


def demo(
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Training epochs.")] = 12,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Batch size.")] = 32,
    ledger: LedgerOpt = None,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
    price: PriceOpt = None,
    simulate: SimulateOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a CNN on scikit-learn's bundled digits under the tracker and print the energy."""
    try:
        import torch  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        from greenai.errors import GreenAIError

        raise GreenAIError(f"the demo needs torch and scikit-learn: pip install 'greenai[demo]' ({e})") from None
    from greenai.demo.digits import train_digits
    from greenai.tracking.tracker import Tracker

    config = build_config(ledger, intensity, pue, price, simulate)
    console = make_console(stderr=json_out)
    tracker = Tracker("digits-demo", tags={"dataset": "sklearn-digits", "model": "cnn"}, config=config)
    with Progress(TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                  console=console, transient=True, disable=json_out) as progress:
        task = progress.add_task("epochs", total=epochs, status="")

        def on_epoch(epoch: int, acc: float) -> None:
            s = tracker.snapshot()
            progress.update(task, advance=1,
                            status=f"test acc {acc:.3f}  energy {s.energy_j:.1f} J ({s.provenance.value})")

        with tracker as run:
            outcome = train_digits(run, epochs=epochs, batch_size=batch_size, on_epoch=on_epoch)
    result = tracker.result
    assert result is not None
    if json_out:
        from greenai.cli.runs_cmd import result_to_dict

        print_json({**result_to_dict(result), "test_accuracy": outcome.test_accuracy})
        return
    console.print(f"Trained a CNN on scikit-learn digits: {outcome.epochs} epochs, "
                  f"{outcome.train_samples} training samples, "
                  f"[bold]test accuracy {outcome.test_accuracy:.3f}[/]\n")
    render_run(console, run_id=result.run_id, name=result.name, status=result.status,
               snapshot=result.snapshot, cost_configured=result.cost_configured,
               ledger_path=str(result.ledger_path) if result.ledger_path else None)
    console.print("[dim]See it again with `greenai runs show "
                  f"{result.run_id[:8]}`; list runs with `greenai runs list`.[/]")
