"""`greenai jobs list | show`: distributed jobs (one training on several ranks, added up with
each physical device counted once; docs/distributed.md) as the ledger holds them. The group is
`jobs_app`, which main.py adds to the command tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from greenai.cli.options import JsonOpt, LedgerOpt, open_ledger, print_json
from greenai.cli.render import band, line, make_console, one_line, text
from greenai.distributed.aggregate import NodeTotal, node_totals
from greenai.distributed.breakdown import (
    device_readings,
    incomplete_reason,
    job_summary,
    job_to_dict,
    once_summary,
    rank_shares,
    short_node,
    short_physical,
    unreported_ranks,
)
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import NODE, JobRecord
from greenai.ledger.export import iso_utc
from greenai.ledger.records import RunStatus
from greenai.meters.io import NETWORK_J_PER_BYTE
from greenai.units import format_energy

if TYPE_CHECKING:
    pass

MAX_LISTED = 100_000
STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.RUNNING: "yellow",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.INCOMPLETE: "red",
    RunStatus.FAILED: "red",
}


def list_jobs(
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LISTED, metavar="N", help="At most this many jobs, newest first.")
    ] = 20,
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List distributed jobs, newest first: status, ranks, nodes, energy."""
    with open_ledger(ledger) as store:
        jobs = store.transaction(lambda conn: rows.list_jobs(conn, limit + 1), write=False)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    shown = f"{len(jobs)} job(s) (newest first)" + ("; --limit N for more" if more else "")
    if json_out:
        print_json([job_summary(j) for j in jobs])
        if more:  # the list stays a list; the truncation is said beside it, on stderr
            make_console(stderr=True).print(shown)
        return
    console = make_console()
    if not jobs:
        console.print(text(f"No distributed jobs in {one_line(store.path)}.", "dim"))
        return
    table = Table(title=shown, title_justify="left")
    for col in ("id", "name", "status", "started (UTC)", "ranks", "nodes", "duration", "energy", "provenance", "gCO2e"):
        right = col in ("ranks", "nodes", "duration", "energy", "gCO2e")
        table.add_column(col, justify="right" if right else "left", no_wrap=col in ("id", "status"))
    for j in jobs:
        table.add_row(
            one_line(j.job_id),
            one_line(j.name),
            text(one_line(j.status), STATUS_STYLE.get(j.status, "")),
            iso_utc(j.started_at)[:19].replace("T", " "),
            f"{len(j.ranks)}/{j.world_size}",
            str(len(j.nodes)),
            f"{j.duration_s:.1f} s",
            band(j.energy_j, j.rel_uncertainty),
            j.provenance.value,
            f"{j.carbon_g:.3g}",
        )
    console.print(table)


def show(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="Job id or a unique prefix of it.")],
    ledger: LedgerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one job: its total, per node and per rank, which rank read each device, communication."""
    with open_ledger(ledger) as store:
        job = store.transaction(lambda conn: rows.read_job(conn, job_id), write=False)
        runs_here = store.transaction(lambda conn: rows.runs_held(conn, job), write=False)
    if json_out:
        data = job_to_dict(job)
        for rank in data["ranks"]:
            rank["run_in_this_ledger"] = rank["run_id"] in runs_here
        print_json(data)
        return
    render_job(make_console(), job, runs_here)


def render_job(console: Console, job: JobRecord, runs_here: set[str]) -> None:
    """The job as tables: headline, per node, per rank, device by device, communication, notes."""
    nodes = node_totals(job)
    console.print(
        line(
            ("Job", "bold"),
            f" {one_line(job.name)} ",
            (f"({one_line(job.job_id)})", "dim"),
            "  status: ",
            (one_line(job.status), "bold " + STATUS_STYLE.get(job.status, "")),
            f"  world size {job.world_size} on {len(nodes)} node(s)  duration: {job.duration_s:.2f} s",
        )
    )
    console.print(
        text(
            f"  id from {one_line(job.id_source or 'unknown')}; added up and written by "
            f"{one_line(job.writer_host)} (pid {job.writer_pid}); started {iso_utc(job.started_at)}",
            "dim",
        )
    )
    if job.status == RunStatus.INCOMPLETE:
        console.print(line(("incomplete: ", "red"), incomplete_reason(job)))
    console.print(
        line(
            ("Energy", "bold"),
            f" {band(job.energy_j, job.rel_uncertainty)} (",
            (job.provenance.value, "italic"),
            "; weakest source among devices), each physical device counted once",
        )
    )
    console.print(
        line(
            ("Carbon", "bold"),
            f" {job.carbon_g:.4g} gCO2e ± {job.rel_uncertainty * 100:.0f}%  ",
            (f"(facility energy {format_energy(job.facility_energy_j)}; the ranks' carbon, each device once)", "dim"),
        )
    )
    if job.cost > 0:
        console.print(line(("Cost", "bold"), f" {job.cost:.6f} {one_line(job.currency)}"))
    console.print(_node_table(job, nodes))
    console.print(_rank_table(job, runs_here))
    console.print(_device_table(job))
    console.print(text(once_summary(job), "green" if "Nothing counted twice" in once_summary(job) else "yellow"))
    comm = job.comm
    if comm.calls or comm.bytes:
        console.print(
            line(
                ("Communication", "bold"),
                f" {comm.calls:,} collectives, {_bytes(comm.bytes)} moved, {comm.seconds:.2f} s in flight "
                f"(longest rank), {format_energy(comm.energy_j)} apportioned to the phase; network "
                f"{format_energy(job.comm_network_j)} at {NETWORK_J_PER_BYTE * 1e9:g} nJ/B ",
                ("(an attribution inside the total where the bytes cross a NIC)", "dim"),
            )
        )
    else:
        console.print(line(("Communication", "bold"), " none recorded (no instrument_ddp or communication())"))
    for note in job.notes:
        console.print(line(("note:", "yellow"), " ", one_line(note)))


def _node_table(job: JobRecord, nodes: list[NodeTotal]) -> Table:
    table = Table(title="Energy per node (each device once)", title_justify="left")
    for col in ("node", "hosts", "ranks", "energy", "share", "by kind"):
        table.add_column(col, justify="right" if col in ("energy", "share") else "left")
    for n in nodes:
        share = n.energy_j / job.energy_j if job.energy_j > 0 else 0.0
        kinds = ", ".join(f"{k.value} {format_energy(v)}" for k, v in sorted(n.by_kind.items(), key=lambda kv: kv[0]))
        table.add_row(
            one_line(short_node(n.node)),
            one_line(", ".join(sorted(n.hosts))),
            ", ".join(str(r) for r in sorted(n.ranks)),
            band(n.energy_j, n.rel_uncertainty),
            f"{share:.1%}",
            kinds,
        )
    return table


def _rank_table(job: JobRecord, runs_here: set[str]) -> Table:
    table = Table(
        title="Energy per rank (counted: its part of the total; reported: its own run's energy)",
        title_justify="left",
        caption="run: the rank's run id; (elsewhere): its run is in the ledger of its own host",
        caption_justify="left",
    )
    for col in ("rank", "node", "host", "pid", "run", "status", "counted", "reported", "comm time", "comm bytes"):
        right = col in ("rank", "pid", "counted", "reported", "comm time", "comm bytes")
        table.add_column(col, justify="right" if right else "left", no_wrap=col in ("run", "status"))
    for share in rank_shares(job):
        r = share.report
        status = text(
            r.status if r.final else f"{r.status}, no end reported",
            "red" if not r.final else STATUS_STYLE.get(r.status, ""),
        )
        run = one_line(r.run_id[:8]) + ("" if r.run_id in runs_here else " (elsewhere)")
        table.add_row(
            str(r.rank),
            one_line(short_node(r.node)),
            one_line(r.host),
            str(r.pid),
            run,
            status,
            band(share.counted_j, share.rel_uncertainty),
            format_energy(r.energy_j),
            f"{r.comm.seconds:.2f} s",
            _bytes(r.comm.bytes),
        )
    for k in unreported_ranks(job):
        table.add_row(str(k), "", "", "", "", text("never reported", "red"), "", "", "", "")
    return table


def _device_table(job: JobRecord) -> Table:
    table = Table(title="Devices: which rank read each (node devices once per job)", title_justify="left")
    for col in ("device", "scope", "kind", "read by", "energy", "provenance", "also reported by"):
        table.add_column(col, justify="right" if col == "energy" else "left")
    for d in device_readings(job):
        table.add_row(
            one_line(short_physical(d.physical, d.node)),
            d.scope,
            d.kind.value,
            f"rank {d.rank} ({one_line(d.device)})",
            band(d.energy_j, d.rel_uncertainty),
            d.provenance.value,
            text(
                ", ".join(f"rank {k}: left out" for k in d.left_out)
                if d.left_out
                else ("—" if d.scope == NODE else ""),
                "yellow" if d.left_out else "dim",
            ),
        )
    return table


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


jobs_app = typer.Typer(
    help="List and show distributed jobs: one training on several ranks, each device counted once.",
    no_args_is_help=True,
)
jobs_app.command("list")(list_jobs)
jobs_app.command("show")(show)
