"""`greenai schedule simulate`: replay a job trace against a carbon trace under several policies.

The other `schedule` commands are `schedule_run` (run a job file for real) and
`schedule_show` (batches read back from the ledger); main.py assembles the `schedule` group.
Durations are read by ``greenai.units.parse_duration_s``, nodes by
``greenai.schedule.policies.parse_node``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from greenai.cli.options import JsonOpt, print_json
from greenai.cli.render import make_console, progress, text
from greenai.errors import ConfigError
from greenai.units import S_PER_DAY, S_PER_HOUR, joules_to_kwh, kwh_to_joules, parse_duration_s


def _parse_time(text: str) -> float:
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"start {text!r} is not an ISO 8601 time (e.g. 2020-01-01)") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def simulate(
    carbon: Annotated[
        str, typer.Option("--carbon", help="Carbon trace: gb_2020, fr_2020 or a CSV file (Time, Carbon Intensity).")
    ] = "gb_2020",
    jobs: Annotated[
        Path | None,
        typer.Option(
            "--jobs", help="Job trace, CSV or JSON: job_id, arrival, duration_s[, slack_s, energy_j, interruptible]."
        ),
    ] = None,
    hourly_jobs: Annotated[
        bool, typer.Option("--hourly-jobs", help="Generate one job per hour instead of reading --jobs.")
    ] = False,
    duration: Annotated[str, typer.Option(help="Duration of each generated job.")] = "1h",
    slack: Annotated[str, typer.Option(help="Slack of each generated job.")] = "12h",
    days: Annotated[float, typer.Option(min=0.01, help="Days of generated jobs.")] = 7.0,
    start: Annotated[
        str | None,
        typer.Option(help="First generated arrival, ISO 8601 UTC (default: first midnight a week into the trace)."),
    ] = None,
    interruptible: Annotated[
        bool, typer.Option("--interruptible", help="Generated jobs may pause and resume.")
    ] = False,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Policy (repeatable): fifo, carbon, carbon-persistence, oracle, placement, budget, or a stack like carbon+budget.",
        ),
    ] = None,
    power_w: Annotated[float, typer.Option(min=0.001, help="Power of jobs without energy_j (W).")] = 1000.0,
    node: Annotated[
        list[str] | None, typer.Option("--node", help="Node NAME[:ENERGY_FACTOR[:SLOTS]] for placement (repeatable).")
    ] = None,
    max_power_w: Annotated[float | None, typer.Option(help="Power cap of the cluster for 'budget' (W).")] = None,
    max_energy_kwh: Annotated[float | None, typer.Option(help="Energy cap per window for 'budget' (kWh).")] = None,
    window: Annotated[str, typer.Option(help="Window of the energy cap.")] = "1h",
    delay: Annotated[
        str, typer.Option(help="Publication delay of intensity data for the forecasts (e.g. 30min).")
    ] = "0",
    json_out: JsonOpt = False,
) -> None:
    """Replay jobs against a carbon trace and compare policies (FIFO always included)."""
    from greenai.carbon.grid_forecast import load_intensity_series
    from greenai.schedule.policies import parse_node, policy_from_name
    from greenai.schedule.simulate import compare
    from greenai.schedule.simulate import simulate as run_simulation
    from greenai.schedule.trace_jobs import hourly_jobs as make_hourly
    from greenai.schedule.trace_jobs import load_jobs

    if (jobs is None) == (not hourly_jobs):
        raise ConfigError("give either --jobs FILE or --hourly-jobs")
    trace = load_intensity_series(carbon)
    if jobs is not None:
        job_list = load_jobs(jobs)
    else:
        first = _parse_time(start) if start else math.ceil(trace.start_s / S_PER_DAY + 7) * S_PER_DAY
        job_list = make_hourly(
            first,
            days,
            duration_s=parse_duration_s(duration, "--duration"),
            slack_s=parse_duration_s(slack, "--slack"),
            interruptible=interruptible,
        )
    names = list(dict.fromkeys(p.strip().lower() for p in (policy or ["fifo", "carbon", "oracle"])))
    if "fifo" not in names:
        names.insert(0, "fifo")
    options = {
        "trace": trace,
        "nodes": [parse_node(n) for n in node or []],
        "max_power_w": max_power_w,
        "max_energy_j": None if max_energy_kwh is None else kwh_to_joules(max_energy_kwh),
        "window_s": parse_duration_s(window, "--window"),
        "delay_s": parse_duration_s(delay, "--delay"),
    }
    policies = [policy_from_name(n, **options) for n in names]  # all validated before any run
    results = []
    with progress(make_console(stderr=True), f"simulating {len(job_list)} jobs") as report:
        for k, p in enumerate(policies):

            def advance(done: float, total: float, what: str, k: int = k) -> None:
                report.update(k * total + done, len(policies) * total, f"policy {what}")

            results.append(run_simulation(job_list, trace, p, power_w=power_w, on_advance=advance))
    rows = compare(results)
    if json_out:
        print_json(
            {
                "carbon_trace": trace.label,
                "jobs": len(job_list),
                "policies": [
                    {
                        **asdict(r.summary),
                        "saving_vs_fifo_g": r.saving_vs_fifo_g,
                        "saving_vs_fifo_pct": r.saving_vs_fifo_pct,
                        "share_of_oracle_saving": r.share_of_oracle_saving,
                    }
                    for r in rows
                ],
            }
        )
        return
    console = make_console()
    console.print(_simulate_table(rows, trace.label, len(job_list)))
    console.print(
        text(
            "Energy is estimated (each job's predicted energy, or duration x --power-w); "
            f"carbon integrates it over trace {trace.label}.",
            "dim",
        )
    )


def _simulate_table(rows: list[Any], trace_label: str, n_jobs: int) -> Table:
    table = Table(title=f"{n_jobs} jobs against carbon trace {trace_label}", title_justify="left")
    for col in (
        "policy",
        "carbon (kg)",
        "energy (kWh)",
        "mean wait",
        "deadline misses",
        "saved vs FIFO",
        "% of oracle saving",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in rows:
        s = r.summary
        saved = "" if r.saving_vs_fifo_g is None else f"{r.saving_vs_fifo_g / 1000:.4g} kg"
        if r.saving_vs_fifo_pct is not None:
            saved += f" ({r.saving_vs_fifo_pct:.1f}%)"
        share = "" if r.share_of_oracle_saving is None else f"{r.share_of_oracle_saving * 100:.1f}%"
        table.add_row(
            s.policy,
            f"{s.carbon_g / 1000:.4g}",
            f"{joules_to_kwh(s.energy_j):.4g}",
            f"{s.mean_wait_s / S_PER_HOUR:.2f} h",
            str(s.deadline_misses),
            saved,
            share,
        )
    return table
