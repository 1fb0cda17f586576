"""Rendering shared by the commands: a run's totals (`demo`, `run`, `runs show`), an
optimization study (`optimize`, `demo`), and both as JSON.

Every energy figure is printed with its provenance and its uncertainty band.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from greenai.errors import GreenAIError
from greenai.ledger.records import RunSnapshot
from greenai.tracking.phases import SEPARATOR, inclusive_totals
from greenai.units import format_energy

if TYPE_CHECKING:  # the optimize commands import torch lazily
    from greenai.optimize.search import Outcome, Study
    from greenai.tracking.result import RunResult


def make_console(stderr: bool = False) -> Console:
    """A console that is wide enough for the tables when output goes to a pipe or a file
    (Rich would otherwise assume 80 columns)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=160)
    return console


def band(energy_j: float, rel_uncertainty: float) -> str:
    return f"{format_energy(energy_j)} ± {rel_uncertainty * 100:.0f}%"


def render_run(
    console: Console,
    *,
    run_id: str,
    name: str,
    status: str,
    snapshot: RunSnapshot,
    cost_configured: bool,
    ledger_path: str | None = None,
) -> None:
    s = snapshot
    console.print(
        f"[bold]Run[/] {name} [dim]({run_id[:8]})[/]  status: [bold]{status}[/]  duration: {s.duration_s:.2f} s"
    )
    console.print(
        f"[bold]Energy[/] {band(s.energy_j, s.rel_uncertainty)} "
        f"([italic]{s.provenance.value}[/]; weakest source among devices)"
    )
    console.print(device_table(s))
    if s.phases:
        console.print(phase_table(s))
    for counter, value in sorted(s.counters.items()):
        if value > 0 and s.energy_j > 0:
            console.print(
                f"  {s.energy_j / value:.4g} J/{counter.rstrip('s')}   "
                f"{value / s.energy_j:.4g} {counter}/J   ({value:g} {counter})"
            )
    console.print(
        f"[bold]Carbon[/] {s.carbon_g:.4g} gCO2e ± {s.rel_uncertainty * 100:.0f}%  "
        f"[dim](facility energy {format_energy(s.facility_energy_j)} at PUE {s.pue:g}; "
        f"{s.carbon_source})[/]"
    )
    if cost_configured:
        console.print(f"[bold]Cost[/] {s.cost:.6f} {s.currency}")
    else:
        console.print("[bold]Cost[/] not computed: set price_per_kwh (GREENAI_PRICE_PER_KWH)")
    if ledger_path:
        console.print(f"[dim]Stored in {ledger_path} as run {run_id}[/]")


def device_table(s: RunSnapshot) -> Table:
    table = Table(title="Energy per device", title_justify="left")
    for col in ("device", "energy", "share", "power (mean)", "provenance"):
        table.add_column(col, justify="left" if col in ("device", "provenance") else "right")
    for d in s.devices:
        share = d.energy_j / s.energy_j if s.energy_j > 0 else 0.0
        mean_w = d.energy_j / s.duration_s if s.duration_s > 0 else 0.0
        table.add_row(
            d.device, band(d.energy_j, d.rel_uncertainty), f"{share:.1%}", f"{mean_w:.2f} W", d.provenance.value
        )
    return table


def phase_table(s: RunSnapshot) -> Table:
    """Phases with energy summed over devices, nested phases indented under their parent; a
    parent's figures include its nested phases (``tracking.phases.inclusive_totals``)."""
    table = Table(
        title="Energy per phase, nested phases included (apportioned by time within each sample)",
        title_justify="left",
    )
    for col in ("phase", "energy", "share", "time", "calls"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for phase, totals in inclusive_totals(s.phases).items():
        depth = phase.count(SEPARATOR)
        label = "  " * depth + phase.rsplit(SEPARATOR, 1)[-1]
        share = totals.energy_j / s.energy_j if s.energy_j > 0 else 0.0
        table.add_row(
            label,
            band(totals.energy_j, s.rel_uncertainty),
            f"{share:.1%}",
            f"{totals.duration_s:.2f} s",
            str(totals.calls) if totals.calls else "",
        )
    return table


def result_to_dict(result: RunResult) -> dict[str, Any]:
    """A finished run as JSON, read back from the ledger it was stored in."""
    from greenai.ledger import Ledger, record_to_dict

    if result.ledger_path is None:
        raise GreenAIError("this run was not stored in a ledger")
    with Ledger(result.ledger_path) as ledger:
        return {**record_to_dict(ledger.get_run(result.run_id)), "ledger": str(result.ledger_path)}


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
