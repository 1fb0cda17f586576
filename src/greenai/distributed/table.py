"""A job as text: totals, then per node and per rank, then communication (for examples and
scripts; the CLI renders through cli/render.py). Plain text, no markup."""

from __future__ import annotations

from greenai.distributed.aggregate import counted_devices, node_totals
from greenai.ledger.distributed import NODE, JobRecord
from greenai.text import one_line as _one_line
from greenai.units import format_energy as _energy


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def format_job(job: JobRecord) -> str:
    """The job's table: one line of totals, then nodes, ranks (with the devices each read)
    and the communication phase."""
    lines = [
        f"job {job.job_id} '{_one_line(job.name)}': {job.status}, {job.world_size} ranks on {len(job.nodes)} node(s), "
        f"{job.duration_s:.1f} s",
        f"  energy {_energy(job.energy_j)} ± {job.rel_uncertainty:.0%} ({job.provenance.value}), "
        f"{job.carbon_g:.3g} gCO2e" + (f", {job.cost:.3g} {job.currency}" if job.cost else ""),
        "",
        f"  {'node':<24} {'ranks':<10} {'energy':>10} {'±':>5}  by kind",
    ]
    for total in node_totals(job):
        kinds = ", ".join(
            f"{k.value} {_energy(v)}" for k, v in sorted(total.by_kind.items(), key=lambda kv: kv[0].value)
        )
        host = ",".join(sorted(total.hosts))
        ranks = ",".join(str(r) for r in sorted(total.ranks))
        lines.append(
            f"  {_one_line(host)[:24]:<24} {ranks:<10} {_energy(total.energy_j):>10} {total.rel_uncertainty:>5.0%}  {kinds}"
        )
    lines += ["", f"  {'rank':>4} {'status':<11} {'energy':>10} {'comm':>8} {'comm bytes':>11}  devices read"]
    kept = {(r.rank, d.device) for r, d in counted_devices(job.ranks)[0]}
    for report in job.ranks:
        devices = ", ".join(
            f"{d.device}{' (node)' if d.scope == NODE else ''}" + ("" if (report.rank, d.device) in kept else " [dup]")
            for d in report.devices
        )
        status = report.status if report.final else f"{report.status}?"
        lines.append(
            f"  {report.rank:>4} {status:<11} {_energy(report.energy_j):>10} {report.comm.seconds:>7.2f}s "
            f"{_bytes(report.comm.bytes):>11}  {devices}"
        )
    for missing in job.missing_ranks:
        if all(r.rank != missing for r in job.ranks):
            lines.append(f"  {missing:>4} {'missing':<11}")
    comm = job.comm
    if comm.calls:
        lines += [
            "",
            f"  communication: {comm.calls} collectives, {_bytes(comm.bytes)} moved, {comm.seconds:.2f} s in flight "
            f"(longest rank), {_energy(comm.energy_j)} apportioned; network {_energy(job.comm_network_j)} at "
            "bytes x J/byte (inside the total where the bytes cross a NIC)",
        ]
    for note in job.notes:
        lines.append(f"  note: {_one_line(note)}")
    return "\n".join(lines)
