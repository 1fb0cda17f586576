"""A distributed job in a report (`greenai report --job JOB`) and on the dashboard's job page:
the job's total, per node, per rank, which rank read each physical device, and the
communication phase (distributed.breakdown), with one chart: each rank's counted energy by
device kind. The ranks' own runs that the ledger holds follow as run sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from greenai.distributed.aggregate import NodeTotal, node_totals
from greenai.distributed.breakdown import (
    DeviceReading,
    RankShare,
    device_readings,
    incomplete_reason,
    once_summary,
    rank_shares,
    short_node,
    short_physical,
    unreported_ranks,
)
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import JobRecord
from greenai.ledger.lookup import matching_ids
from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger
from greenai.meters.io import NETWORK_J_PER_BYTE


@dataclass(frozen=True)
class RankRow:
    share: RankShare
    in_ledger: bool  # its run is in this ledger (a rank on another host keeps it in its own)
    anchor: str  # the id of its run's section in the report ("" when not in this ledger)

    @property
    def report(self) -> Any:
        return self.share.report


@dataclass(frozen=True)
class JobView:
    job: JobRecord
    nodes: list[NodeTotal]
    ranks: list[RankRow]
    unreported: tuple[int, ...]
    devices: list[DeviceReading]
    once: str  # whether each physical device was read once, in words
    all_once: bool
    status_note: str  # why a job is incomplete ("" otherwise)
    network_nj_per_byte: float = NETWORK_J_PER_BYTE * 1e9

    @property
    def band_j(self) -> float:
        return self.job.energy_j * self.job.rel_uncertainty

    @property
    def run_ids(self) -> list[str]:
        """The ranks' runs this ledger holds, in rank order (their sections follow the job's)."""
        return [r.report.run_id for r in self.ranks if r.in_ledger]

    def short_node(self, node: str) -> str:
        return short_node(node)

    def short_physical(self, d: DeviceReading) -> str:
        return short_physical(d.physical, d.node)

    @staticmethod
    def bytes(n: float) -> str:
        for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if n >= size:
                return f"{n / size:.3g} {unit}"
        return f"{n:.0f} B"


def matching_jobs(store: Ledger, prefix: str, shown: int = 10) -> list[str]:
    """Job ids an id or a prefix names (ledger.lookup's rule: that one alone when it is an id,
    else those it starts, at most `shown` + 1)."""
    return store.transaction(lambda conn: matching_ids(conn, "distributed_jobs", "job_id", prefix, shown), write=False)


def read_job(store: Ledger, job_id: str) -> JobRecord:
    """The job with this id or unique prefix (RunNotFoundError when none)."""
    return store.transaction(lambda conn: rows.read_job(conn, job_id), write=False)


def job_view(store: Ledger, job: JobRecord, section_prefix: str = "run") -> JobView:
    """The job's view; each rank's run this ledger holds gets the anchor of its section
    (`section_prefix` 1, 2, ... in rank order)."""
    here = store.transaction(lambda conn: rows.runs_held(conn, job), write=False)
    ranks, n = [], 0
    for share in rank_shares(job):
        inside = share.report.run_id in here
        n += inside
        ranks.append(RankRow(share, inside, f"{section_prefix}{n}" if inside else ""))
    once = once_summary(job)
    return JobView(
        job=job,
        nodes=node_totals(job),
        ranks=ranks,
        unreported=unreported_ranks(job),
        devices=device_readings(job),
        once=once,
        all_once=once.startswith("Nothing counted twice"),
        status_note=incomplete_reason(job) if job.status == RunStatus.INCOMPLETE else "",
    )


def job_chart(view: JobView) -> Any:
    """Each rank's counted energy, stacked by device kind (a node device under the rank that read it)."""
    import plotly.graph_objects as go

    from greenai.reports import charts as c

    labels = [c.text(f"rank {r.report.rank} ({r.report.host})") for r in view.ranks]
    kinds = sorted({d.kind.value for d in view.devices})
    fig = go.Figure()
    for i, kind in enumerate(kinds):
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[sum(d.energy_j for d in r.share.devices if d.kind.value == kind) for r in view.ranks],
                name=kind,
                orientation="h",
                marker_color=c.kind_color(kind, i),
                hovertemplate="%{y}: " + kind + " %{x:.4g} J<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="energy counted in the job (J)")
    fig.update_yaxes(autorange="reversed")
    c._layout(fig, "Energy per rank, by device kind (each device once)", height=max(260, 130 + 40 * len(labels)))
    fig.update_layout(legend_y=-0.45, margin_b=110)  # the legend below the axis title
    return fig
