"""`greenai estimate MODULE:FACTORY`: predict time, energy, carbon and cost before running."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from greenai.cli.options import IntensityOpt, JsonOpt, PriceOpt, PueOpt, build_config, print_json
from greenai.cli.render import calibration_note, line, make_console, one_line, text
from greenai.units import format_energy, format_energy_per_unit


def estimate(
    factory: Annotated[
        str, typer.Argument(help="MODULE:FACTORY or FILE.py:FACTORY, a function returning (model, example_input).")
    ],
    steps: Annotated[int | None, typer.Option(min=0, help="Training steps of the whole run.")] = None,
    epochs: Annotated[float | None, typer.Option(min=0, help="Epochs of the whole run (with --dataset-size).")] = None,
    dataset_size: Annotated[int | None, typer.Option(min=0, help="Training samples per epoch.")] = None,
    inference_only: Annotated[bool, typer.Option("--inference-only", help="Skip the training step.")] = False,
    optimizer: Annotated[
        str,
        typer.Option(
            help="Optimizer of the training step: adam, adamw, sgd (PyTorch's default for-loop form on CPU), adam-fused, adamw-fused, sgd-fused (fused=True) or none."
        ),
    ] = "adam",
    profile: Annotated[Path | None, typer.Option(help="Calibration profile (default: this machine's).")] = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Use the rough default coefficients, not a calibration.")
    ] = False,
    depth: Annotated[int, typer.Option(min=1, help="Module depth of the per-layer table.")] = 2,
    top: Annotated[int, typer.Option(min=1, help="Rows of the per-layer table.")] = 15,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
    price: PriceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Predict time and energy of inference and a training step from the model itself."""
    from greenai.estimation.api import estimate as run_estimate
    from greenai.estimation.api import load_factory

    config = build_config(intensity=intensity, pue=pue, price=price)
    model, example = load_factory(factory)
    result = run_estimate(
        model,
        example,
        training=not inference_only,
        optimizer=None if optimizer == "none" else optimizer,
        steps=steps,
        epochs=epochs,
        dataset_size=dataset_size,
        profile=profile,
        use_defaults=defaults,
        config=config,
    )
    if json_out:
        print_json(_to_json(result))
        return
    console = make_console()
    console.print(
        line(
            (one_line(factory), "bold"),
            f": {result.inference_counts.parameters:,} parameters, "
            f"batch {result.inference.batch_size}; {result.profile_note}",
        )
    )
    console.print(_layer_table(result.training_step or result.inference, depth, top))
    console.print(_totals_table(result))
    if result.run is not None:
        r, p = result.run, result.run_priced
        assert p is not None
        console.print(
            line(
                ("Whole run", "bold"),
                f" {r.steps:,} steps ({r.samples:,} samples): "
                f"time {_seconds(r.time_s)} [{_seconds(r.time_low_s)} .. {_seconds(r.time_high_s)}], "
                f"energy {_joules(r.energy_j)} [{_joules(r.energy_low_j)} .. "
                f"{_joules(r.energy_high_j)}] ({r.provenance})",
            )
        )
        cost = "cost: set --price" if p.cost is None else f"cost {p.cost:.4g} {p.currency}"
        console.print(
            line(
                f"  carbon {p.carbon_g:.4g} gCO2e [{p.carbon_low_g:.4g} .. {p.carbon_high_g:.4g}], {cost}  ",
                (f"({p.source})", "dim"),
            )
        )
    for note in (*result.inference.notes, *(result.training_step.notes if result.training_step else ())):
        console.print(text(f"note: {note}", "dim"))
    for note in profile_notes(profile, defaults):  # what the calibration said of itself
        console.print(calibration_note(note))


def profile_notes(path: Path | None, defaults: bool) -> tuple[str, ...]:
    """The notes stored in the calibration profile the estimate used (none with the default
    coefficients): e.g. that other processes kept the machine busy while it was calibrated."""
    if defaults:
        return ()
    from greenai.estimation.profile import load_profile

    try:
        loaded = load_profile(path, missing_ok=path is None)
    except Exception:  # the estimate itself has already loaded it, or said why not
        return ()
    return tuple(loaded.notes) if loaded is not None else ()


def _joules(energy_j: float) -> str:
    """Energy with three significant figures at any scale (a small run's lower bound is not
    "0.0 J"); Wh and kWh for large figures."""
    return format_energy(energy_j) if abs(energy_j) >= 10_000 else format_energy_per_unit(energy_j)


def _seconds(time_s: float) -> str:
    """Time with three significant figures at any scale; s, then min and h beyond an hour."""
    if abs(time_s) >= 3600:
        return f"{time_s / 3600:,.3g} h"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(time_s) >= scale:
            return f"{time_s / scale:.3g} {unit}"
    return f"{time_s * 1e9:.3g} ns" if time_s else "0 s"


def _layer_table(pred: Any, depth: int, top: int) -> Table:
    energy: dict[str, float] = defaultdict(float)
    time_s: dict[str, float] = defaultdict(float)
    flops: dict[str, float] = defaultdict(float)
    for row in pred.per_layer:
        key = ".".join(row.module.split(".")[:depth]) if row.module else "(top level)"
        energy[key] += row.energy_j
        time_s[key] += row.time_s
        flops[key] += row.flops
    table = Table(
        title=f"Per layer (depth {depth}), {'training step' if 'backward' in pred.per_pass else 'inference batch'}",
        title_justify="left",
    )
    for col in ("module", "GFLOP", "time (ms)", "energy (mJ)", "share"):
        table.add_column(col, justify="left" if col == "module" else "right")
    total = sum(energy.values()) or 1.0
    for key in sorted(energy, key=energy.get, reverse=True)[:top]:  # type: ignore[arg-type]
        table.add_row(
            key,
            f"{flops[key] / 1e9:.4f}",
            f"{time_s[key] * 1e3:.3f}",
            f"{energy[key] * 1e3:.3f}",
            f"{energy[key] / total:.1%}",
        )
    return table


def _totals_table(result: Any) -> Table:
    table = Table(title="Totals (estimated; ~95% band)", title_justify="left")
    for col in ("what", "time", "energy", "per sample", "provenance"):
        table.add_column(col, justify="left" if col in ("what", "provenance") else "right")
    rows = [("inference batch", result.inference)]
    if result.training_step is not None:
        rows.append(("training step", result.training_step))
    for label, p in rows:
        table.add_row(
            label,
            f"{_seconds(p.time_s)} [{_seconds(p.time_low_s)} .. {_seconds(p.time_high_s)}]",
            f"{_joules(p.energy_j)} [{_joules(p.energy_low_j)} .. {_joules(p.energy_high_j)}]",
            f"{p.energy_j / max(p.batch_size, 1):.3g} J",
            p.provenance,
        )
    return table


def _to_json(result: Any) -> dict[str, Any]:
    def pred(p: Any) -> dict[str, Any] | None:
        if p is None:
            return None
        d = asdict(p)
        d["energy_per_sample_j"] = p.energy_j / max(p.batch_size, 1)
        return d

    counts = result.inference_counts
    return {
        "parameters": counts.parameters,
        "parameter_bytes": counts.parameter_bytes,
        "batch_size": counts.batch_size,
        "inference_flops": counts.flops,
        "training_flops": result.training_counts.flops if result.training_counts else None,
        "profile": result.profile_note,
        "inference": pred(result.inference),
        "training_step": pred(result.training_step),
        "run": asdict(result.run) if result.run else None,
        "run_priced": asdict(result.run_priced) if result.run_priced else None,
    }
