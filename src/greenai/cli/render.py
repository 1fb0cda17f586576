"""Rich rendering of a run's totals, shared by `demo`, `run` and `runs show`.

Every energy figure is printed with its provenance and its uncertainty band.
"""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from greenai.ledger.records import RunSnapshot
from greenai.tracking.phases import SEPARATOR
from greenai.units import format_energy


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
    """Phases with energy summed over devices; nested phases indented under their parent."""
    energy: dict[str, float] = defaultdict(float)
    duration: dict[str, float] = {}
    calls: dict[str, int] = {}
    for p in s.phases:
        energy[p.phase] += p.energy_j
        duration[p.phase] = p.duration_s
        calls[p.phase] = p.calls
    table = Table(title="Energy per phase (apportioned by time within each sample)", title_justify="left")
    for col in ("phase", "energy", "share", "time", "calls"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for phase in sorted(energy):
        depth = phase.count(SEPARATOR)
        label = "  " * depth + phase.rsplit(SEPARATOR, 1)[-1]
        share = energy[phase] / s.energy_j if s.energy_j > 0 else 0.0
        table.add_row(
            label,
            band(energy[phase], s.rel_uncertainty),
            f"{share:.1%}",
            f"{duration[phase]:.2f} s",
            str(calls[phase]) if calls[phase] else "",
        )
    return table
