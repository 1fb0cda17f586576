"""`greenai schedule run JOBFILE`: run a job file for real, locally or on Ray.

Every job runs under its own tracker; the batch and each job's outcome land in the ledger
(`schedule_jobs`, linked to the jobs' runs). A table of outcomes goes to stdout (or JSON
with --json), one progress line per finished job to stderr. Exit code 1 if any job failed.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from greenai.cli.options import (
    IntensityOpt,
    JsonOpt,
    LedgerOpt,
    PriceOpt,
    PueOpt,
    SampleHzOpt,
    SimulateOpt,
    build_config,
    print_json,
)
from greenai.cli.render import line, make_console, one_line, text
from greenai.errors import ConfigError
from greenai.ledger.store import default_ledger_path
from greenai.units import format_energy

if TYPE_CHECKING:  # the scheduler loads lazily
    from rich.console import Console

    from greenai.schedule.jobs import Job
    from greenai.schedule.plan import PlacingExecutor
    from greenai.schedule.policies import Node


def run_jobs(
    job_file: Annotated[Path, typer.Argument(help="Job file (.toml or .json) listing the jobs.")],
    executor: Annotated[str, typer.Option("--executor", "-e", help="Where jobs run: local or ray.")] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join: HOST:PORT, ray://HOST:PORT or auto (default: start a local cluster).",
        ),
    ] = None,
    ray_cpus: Annotated[
        int | None,
        typer.Option("--ray-cpus", help="Logical CPUs of the local Ray cluster this starts (default: all)."),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel", "-p", help="Jobs in flight at once (default: the usable CPUs / the cluster's CPUs)."
        ),
    ] = None,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Id of this batch in the ledger (default: random).")
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option("--log-dir", help="Local executor: write each job's output to DIR/JOB.log (JOB: the job's id)."),
    ] = None,
    ledger: LedgerOpt = None,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
    price: PriceOpt = None,
    simulate: SimulateOpt = False,
    sample_hz: SampleHzOpt = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="fifo (default); budget: defer jobs while the cluster would pass "
            "--max-power-w (never drop one); carbon: start each job, within its slack, when the "
            "--forecast says the grid is cleanest; or a stack such as carbon+budget.",
        ),
    ] = None,
    forecast: Annotated[
        str | None,
        typer.Option(
            "--forecast",
            metavar="SPEC",
            help="Intensity forecast for --policy carbon: trace:FILE.csv (a published "
            "forecast covering the batch), MODULE:FUNCTION returning [(unix_s, g/kWh), ...] "
            "for (now_s, horizon_s), or a shipped trace replayed by time of year (trace:gb_2020).",
        ),
    ] = None,
    forecast_tz: Annotated[
        str, typer.Option("--forecast-tz", help="Time zone of a forecast file's timestamps without an offset.")
    ] = "UTC",
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node",
            help="For --policy placement: NAME[:ENERGY_FACTOR[:SLOTS]] (repeatable). NAME is a "
            "Ray node id, host name or IP (local executor: 'local'); each job goes to the free node "
            "with the lowest predicted energy (its prediction x the factor). SLOTS defaults to the "
            "node's CPUs (local: --parallel).",
        ),
    ] = None,
    max_power_w: Annotated[
        float | None,
        typer.Option("--max-power-w", min=0.001, help="Power cap for the budget policy (W; jobs' predicted power)."),
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """Run every job of a job file, each tracked; record the batch in the ledger. Jobs
    without predictions get them from past runs of the same name in the ledger, or from the
    estimator (`estimate = "module:factory"`, `estimate_steps`)."""
    from greenai.schedule.batch import run_batch
    from greenai.schedule.executor import this_host
    from greenai.schedule.jobfile import load_job_file
    from greenai.schedule.plan import EXECUTORS, live_policy, make_executor, with_predictions
    from greenai.schedule.policies import parse_node

    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; use one of: {', '.join(EXECUTORS)}")
    if executor == "local" and (ray_address or ray_cpus):
        raise ConfigError("--ray-address and --ray-cpus need --executor ray")
    if executor == "ray" and log_dir is not None:
        raise ConfigError("--log-dir needs --executor local (Ray keeps each task's output in its own logs)")
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel must be >= 1 (got {parallel})")
    jobs = load_job_file(job_file)  # validate before starting anything
    config = build_config(ledger, intensity, pue, price, simulate, sample_hz)
    ledger_path = config.ledger or default_ledger_path()
    progress = make_console(stderr=True)
    nodes = [parse_node(n) for n in node or []]
    stages = _policy_stages(policy, max_power_w, forecast, nodes)
    jobs = with_predictions(jobs, ledger_path, node=this_host() if executor == "local" else None)
    runner = make_executor(
        executor, config, ray_address=ray_address, ray_cpus=ray_cpus, parallel=parallel, log_dir=log_dir
    )
    try:  # an unknown node or a forecast that cannot be read is refused before any job runs
        nodes = _placement_nodes(nodes, runner, jobs, ledger_path, progress)
        chosen = live_policy(
            stages,
            max_power_w=max_power_w,
            forecast=forecast,
            forecast_tz=forecast_tz,
            nodes=nodes,
            on_problem=lambda problem: progress.print(problem, style="yellow", markup=False, highlight=False),
        )
    except BaseException:
        runner.shutdown()
        raise
    for job in jobs:
        if job.predicted_duration_s is not None or job.predicted_energy_j is not None:
            progress.print(
                f"{one_line(job.job_id)}: predicted {_or_dash(job.predicted_duration_s, 's')}, "
                f"{_or_dash(job.predicted_energy_j, 'J')} ({job.prediction_source})",
                style="dim",
                markup=False,
                highlight=False,
            )
    # SIGTERM/SIGHUP (kill, a closed terminal) end the batch like Ctrl-C: the executor's
    # shutdown then ends the jobs, which run in sessions of their own and would live on
    previous = {sig: signal.signal(sig, _raise_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        summary = run_batch(
            jobs,
            runner,
            ledger_path,
            batch_id=batch_id,
            policy=chosen,
            on_outcome=lambda o: progress.print(
                f"{one_line(o.job_id)}: {o.status}"
                + (f", {format_energy(o.energy_j)} ({o.provenance})" if o.energy_j is not None else "")
                + (f" — {o.error}" if o.error else ""),
                style="dim",
                markup=False,
                highlight=False,
            ),
            on_event=lambda message: progress.print(message, style="yellow", markup=False, highlight=False),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runner.shutdown()
    if json_out:
        print_json(summary_to_dict(summary, executor, str(ledger_path)))
    else:
        render_summary(summary, executor, str(ledger_path))
    return 1 if summary.failed else 0


def _raise_on_signal(signum: int, frame: object) -> None:
    from greenai.tracking.tracker import TerminatedBySignal

    raise TerminatedBySignal(128 + signum)


def summary_to_dict(summary: Any, executor: str, ledger_path: str) -> dict[str, Any]:
    return {
        "batch_id": summary.batch_id,
        "executor": executor,
        "ledger": ledger_path,
        "jobs": summary.jobs,
        "completed": summary.completed,
        "failed": summary.failed,
        "energy_j": summary.energy_j,
        "provenance": summary.provenance,
        "carbon_g": summary.carbon_g,
        "wall_s": summary.wall_s,
        "overhead_median_s": summary.overhead_median_s,
        "overhead_p95_s": summary.overhead_p95_s,
        "outcomes": [
            {
                "job_id": o.job_id,
                "status": o.status,
                "run_id": o.run_id,
                "node": o.node,
                "energy_j": o.energy_j,
                "rel_uncertainty": o.rel_uncertainty,
                "provenance": o.provenance,
                "carbon_g": o.carbon_g,
                "duration_s": o.duration_s,
                "scheduling_overhead_s": None if math.isnan(oh) else oh,
                "pauses": pauses,
                "error": o.error,
            }
            for o, oh, pauses in zip(summary.outcomes, summary.overheads_s, summary.pauses)
        ],
    }


def render_summary(summary: Any, executor: str, ledger_path: str) -> None:
    console = make_console()
    table = Table(title=f"Batch {summary.batch_id} ({executor})", title_justify="left")
    paused = any(summary.pauses)  # the column only when a policy paused a job
    columns = (
        "job",
        "status",
        "node",
        "energy",
        "provenance",
        "duration",
        "overhead",
        *(("pauses",) if paused else ()),
        "run",
        "error",
    )
    for col in columns:
        table.add_column(
            col, justify="right" if col in ("energy", "duration", "overhead", "pauses") else "left", overflow="fold"
        )
    for o, overhead, pauses in zip(summary.outcomes, summary.overheads_s, summary.pauses):
        energy = (
            f"{format_energy(o.energy_j)} ± {(o.rel_uncertainty or 0) * 100:.0f}%" if o.energy_j is not None else "—"
        )
        table.add_row(
            one_line(o.job_id),
            text(one_line(o.status), "green" if o.ok else "red"),
            one_line(o.node[:12]),
            energy,
            o.provenance or "—",
            f"{o.duration_s:.2f} s" if o.duration_s is not None else "—",
            "—" if math.isnan(overhead) else f"{overhead * 1000:.0f} ms",
            *((str(pauses),) if paused else ()),
            one_line((o.run_id or "—")[:8]),
            text(o.error),
        )
    console.print(table)
    overhead = (
        "—"
        if summary.overhead_median_s is None
        else f"median {summary.overhead_median_s * 1000:.0f} ms, p95 {summary.overhead_p95_s * 1000:.0f} ms"
    )
    console.print(
        line(
            (f"{summary.completed}/{summary.jobs} completed", "bold"),
            f", {summary.failed} failed; energy {format_energy(summary.energy_j)} "
            f"({summary.provenance or 'none measured'}; weakest source), carbon {summary.carbon_g:.4g} gCO2e; "
            f"wall {summary.wall_s:.1f} s; scheduling overhead per job {overhead}",
        )
    )
    console.print(text(f"Stored in {one_line(ledger_path)} as batch {one_line(summary.batch_id)}", "dim"))


def _policy_stages(name: str | None, max_power_w: float | None, forecast: str | None, nodes: list[Node]) -> list[str]:
    """The stages of a real batch's policy (none: FIFO), checked against the options that go
    with them: a power budget, carbon-aware timing on a live forecast, energy-aware
    placement, or a stack of them."""
    parts = [p.strip().lower() for p in (name or "fifo").split("+")]
    if not set(parts) <= {"fifo", "budget", "carbon", "placement"}:
        raise ConfigError(
            f"schedule run takes --policy fifo, budget, carbon, placement or a stack "
            f"such as carbon+budget (got {name!r}); `greenai schedule simulate` "
            "replays the others"
        )
    if bool(nodes) != ("placement" in parts):
        raise ConfigError(
            "--policy placement needs --node NAME[:FACTOR[:SLOTS]] (repeatable), "
            "and --node is used only by --policy placement"
        )
    if max_power_w is not None and "budget" not in parts:
        raise ConfigError("--max-power-w needs --policy budget")
    if "budget" in parts and max_power_w is None:
        raise ConfigError("--policy budget needs --max-power-w")
    if (forecast is not None) != ("carbon" in parts):
        raise ConfigError(
            "--policy carbon needs --forecast (trace:FILE.csv or MODULE:FUNCTION, or a shipped trace: trace:gb_2020), "
            "and --forecast is used only by --policy carbon"
        )
    return [p for p in parts if p != "fifo"]


def _placement_nodes(
    nodes: list[Node], executor: PlacingExecutor, jobs: list[Job], ledger_path: Path, progress: Console
) -> list[Node]:
    """Placement nodes checked against the executor, with their slots and the energy each
    job measured on them before (said on stderr)."""
    from greenai.schedule.plan import with_history, with_slots

    placed = [with_slots(n, executor) for n in nodes]
    learned = with_history(placed, executor, jobs, ledger_path)
    for before, after in zip(placed, learned):
        known = len(after.energy_j) - len(before.energy_j)
        if known:
            progress.print(
                f"node {after.name}: measured energy from the ledger for {known} job(s)",
                style="dim",
                markup=False,
                highlight=False,
            )
    return learned


def _or_dash(value: float | None, unit: str) -> str:
    return "?" if value is None else f"{value:.3g} {unit}"
