"""`greenai calibrate`: fit this machine's time and energy coefficients from micro-benchmarks."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from greenai.cli.options import JsonOpt, print_json
from greenai.cli.render import calibration_note, line, make_console, progress


def calibrate(
    budget: Annotated[float, typer.Option(min=5, max=600, help="Seconds the micro-benchmarks may take.")] = 60.0,
    json_out: JsonOpt = False,
) -> None:
    """Run micro-benchmarks (matmul, convolution, elementwise, ... in fp32/bf16/int8) under the
    tracker and store this machine's calibration profile for `greenai estimate`."""
    from greenai.estimation.calibrate import calibrate as run_calibration
    from greenai.estimation.profile import profile_path

    console = make_console(stderr=json_out)
    with progress(make_console(stderr=True), "calibrating") as report:
        profile = run_calibration(
            budget_s=budget, on_advance=lambda done, total, what: report.update(done, total, what)
        )
    path = profile_path(profile.fingerprint)
    if json_out:
        print_json({"path": str(path), "profile": json.loads(profile.to_json())})
        return
    table = Table(title=f"Time model per operation class ({profile.fingerprint.describe()})", title_justify="left")
    for col in ("class/dtype", "overhead (us)", "GFLOP/s", "GB/s", "note"):
        table.add_column(col, justify="left" if col in ("class/dtype", "note") else "right")
    for key, tm in sorted(profile.time_models.items()):
        table.add_row(key, f"{tm.overhead_s * 1e6:.1f}", _g(tm.rate_flops), _g(tm.bandwidth_bps), tm.note)
    console.print(table)
    for key, reason in sorted(profile.missing.items()):
        console.print(line(("not calibrated", "yellow"), f" {key}: {reason}"))
    console.print(
        f"Energy basis: {profile.energy_basis} (fitted on {profile.energy_provenance} energy); "
        f"fit error on the micro-benchmarks: time {_pct(profile.fit_mape_time)}, energy {_pct(profile.fit_mape_energy)}"
    )
    console.print(f"Calibration took {profile.calibration_s:.1f} s; stored in {path}")
    for note in profile.notes:  # what the calibration says of itself (a busy machine, ...)
        console.print(calibration_note(note))


def _g(value: float | None) -> str:
    return "" if not value else f"{value / 1e9:,.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
