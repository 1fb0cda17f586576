"""The report's charts, drawn with plotly (its JavaScript is inlined once per file by html.py).

Each function returns a plotly Figure; `to_div` turns one into an HTML fragment that draws it
when plotly.js has loaded. Text from the ledger that plotly would show (run names, phase and
device names) goes through `text()`: plotly reads a subset of HTML in labels, so it is
escaped first (plotly shows the escaped entities as the characters they stand for).
Series are numpy arrays (float32 where precision allows), which plotly embeds as base64
typed arrays: a third of the size of the same numbers written out in JSON. The charts' look
(plotly's `plotly_white` template) is put into each figure's JSON when it is written
(`figure_dict`): set on a Figure, plotly validates the whole template again for each chart
(~8 ms of CPU a chart), and the JSON is the same.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from greenai.reports.model import PhaseRow, RunView
from greenai.reports.multi import BatchView, ComparisonView, StudyView, job_label

KIND_COLORS = {
    "cpu": "#1f77b4",
    "dram": "#9467bd",
    "gpu": "#2ca02c",
    "disk": "#7f7f7f",
    "network": "#ff7f0e",
}
PHASE_COLORS = (
    "#fdd49e",
    "#c6dbef",
    "#c7e9c0",
    "#dadaeb",
    "#fcbba1",
    "#d9d9d9",
    "#fee391",
    "#a1d99b",
    "#9ecae1",
    "#bcbddc",
)
MIXED_COLOR = "#eeeeee"
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
CONFIG = {"displaylogo": False, "responsive": True}
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", size=13)


def text(value: object) -> str:
    """A string from the ledger, safe to hand to plotly as a label."""
    return html.escape(str(value), quote=True)


def f32(values: Any) -> Any:
    return np.asarray(values, dtype=np.float32)


def _layout(fig: go.Figure, title: str, height: int = 380, **kw: Any) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)),
        height=height,
        margin=dict(l=60, r=20, t=50, b=60),
        font=FONT,
        template="none",  # plotly_white, put in by figure_dict
        legend=dict(orientation="h", yanchor="top", y=-0.24, x=0),
        **kw,
    )
    return fig


TEMPLATE = "plotly_white"


@functools.cache
def _template() -> dict[str, Any]:
    template: dict[str, Any] = pio.templates[TEMPLATE].to_plotly_json()
    return template


def figure_dict(fig: go.Figure) -> dict[str, Any]:
    """The figure as plotly's JSON-able dict, with the charts' template."""
    figure: dict[str, Any] = fig.to_dict()
    figure.setdefault("layout", {})["template"] = _template()
    return figure


def to_div(fig: go.Figure, div_id: str) -> str:
    """An HTML fragment (a div and the script that draws it); plotly.js must be on the page."""
    # ids of chart divs never equal a section's id (plotly draws into the first element with its id)
    fragment: str = pio.to_html(
        figure_dict(fig),
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{div_id}",
        config=CONFIG,
        validate=False,
    )
    return fragment


def kind_color(kind: str, index: int = 0) -> str:
    return KIND_COLORS.get(kind, RUN_COLORS[index % len(RUN_COLORS)])


# -- one run ----------------------------------------------------------------------------------


def power_chart(view: RunView) -> go.Figure:
    """Power over time per device, stacked, phases shaded under it, budgets marked."""
    fig = go.Figure()
    for i, s in enumerate(view.power):
        fig.add_trace(
            go.Scatter(
                x=f32(s.t_s),
                y=f32(s.power_w),
                name=text(f"{s.device} ({s.provenance})"),
                mode="lines",
                stackgroup="power",
                stackgaps="interpolate",  # devices sampled at other instants (DRAM at 1 Hz) are interpolated, not zero
                line=dict(width=0.8, color=kind_color(s.kind, i)),
                hovertemplate="%{x:.1f} s: %{y:.3g} W<extra>" + text(s.device) + "</extra>",
            )
        )
    colors: dict[str, str] = {}
    shapes = []
    for span in view.spans:
        mixed = len(span.phases) > 1
        if not mixed and span.label not in colors:
            colors[span.label] = PHASE_COLORS[len(colors) % len(PHASE_COLORS)]
        color = MIXED_COLOR if mixed else colors[span.label]
        shapes.append(
            dict(
                type="rect",
                xref="x",
                yref="paper",
                x0=span.start_s,
                x1=span.end_s,
                y0=0,
                y1=1,
                fillcolor=color,
                opacity=0.55,
                layer="below",
                line=dict(width=0),
            )
        )
    for label, color in list(colors.items())[:12]:
        fig.add_trace(_legend_swatch(f"phase: {label}", color))
    if any(len(s.phases) > 1 for s in view.spans):
        fig.add_trace(_legend_swatch("phases alternating faster than shown", MIXED_COLOR))
    for mark in view.budgets:
        if mark.fired and mark.at_s is not None:
            shapes.append(
                dict(
                    type="line",
                    xref="x",
                    yref="paper",
                    x0=mark.at_s,
                    x1=mark.at_s,
                    y0=0,
                    y1=1,
                    line=dict(color="#d62728", width=1.5, dash="dash"),
                )
            )
    annotations = [
        dict(
            x=m.at_s,
            y=1,
            xref="x",
            yref="paper",
            text=text(f"budget {m.fired}: {m.quantity} {m.limit:g}"),
            showarrow=False,
            yanchor="bottom",
            font=dict(color="#d62728", size=11),
        )
        for m in view.budgets
        if m.fired and m.at_s is not None
    ]
    fig.update_layout(shapes=shapes, annotations=annotations)
    fig.update_xaxes(title_text="time since start (s)")
    fig.update_yaxes(title_text="power (W), stacked", rangemode="tozero")
    if view.coload_t_s:  # what other processes did meanwhile, on its own axis
        _add_coload(fig, view)
    return _layout(fig, "Power over time, by device (stacked); phases shaded", height=420)


def _add_coload(fig: go.Figure, view: RunView) -> None:
    """The CPUs other processes (and the hypervisor) kept busy, per window of about a second,
    on a right-hand axis, with the threshold past which the run is disturbed."""
    busy = view.coload is not None and view.coload.disturbed
    fig.add_trace(
        go.Scatter(
            x=f32(view.coload_t_s),
            y=f32(view.coload_cores),
            name=text("co-load: CPUs busy in other processes" + (" (disturbed)" if busy else "")),
            mode="lines+markers",
            yaxis="y2",
            line=dict(width=1.2, color="#d62728" if busy else "#7f7f7f", dash="dot", shape="hv"),
            marker=dict(size=3),
            hovertemplate="%{x:.1f} s: %{y:.2f} CPUs busy in other processes<extra>co-load</extra>",
        )
    )
    top = max([*view.coload_cores, view.coload.threshold_cores if view.coload else 0.0, 1.0]) * 1.1
    fig.update_layout(
        yaxis2=dict(title=dict(text="co-load (CPUs)"), overlaying="y", side="right", range=[0, top], showgrid=False)
    )
    if view.coload is not None:
        fig.add_shape(
            type="line",
            xref="paper",
            yref="y2",
            x0=0,
            x1=1,
            y0=view.coload.threshold_cores,
            y1=view.coload.threshold_cores,
            line=dict(color="#d62728", width=0.8, dash="dash"),
        )


def _legend_swatch(name: str, color: str) -> go.Scatter:
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        marker=dict(symbol="square", size=12, color=color, line=dict(color="#999", width=0.5)),
        name=text(name),
        hoverinfo="skip",
    )


def energy_chart(view: RunView) -> go.Figure:
    """Energy so far, the forecasts made along the way (with their ~95 % band), the final
    total and the energy budgets."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=f32(view.cumulative_t_s),
            y=f32(view.cumulative_j),
            name="energy so far",
            mode="lines",
            line=dict(color="#333", width=2),
            hovertemplate="%{x:.1f} s: %{y:.4g} J<extra></extra>",
        )
    )
    points = list(view.forecasts)
    if len(points) > 300:
        keep = np.unique(np.linspace(0, len(points) - 1, 300).astype(int))
        points = [points[i] for i in keep]
    if points:
        t = f32([p.made_at_s for p in points])
        fig.add_trace(
            go.Scatter(x=t, y=f32([p.high_j for p in points]), mode="lines", line=dict(width=0), showlegend=False)
        )
        fig.add_trace(
            go.Scatter(
                x=t,
                y=f32([p.low_j for p in points]),
                mode="lines",
                line=dict(width=0),
                fill="tonexty",
                fillcolor="rgba(255,127,14,0.2)",
                name="forecast ~95 % band",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=t,
                y=f32([p.energy_j for p in points]),
                mode="lines+markers",
                marker=dict(size=4),
                line=dict(color="#ff7f0e"),
                name="forecast of the total, when made",
                customdata=np.array([p.progress for p in points], dtype=np.float32),
                hovertemplate="made at %{x:.1f} s (%{customdata:.0%} of the plan): %{y:.4g} J<extra></extra>",
            )
        )
    end = float(view.cumulative_t_s[-1]) if len(view.cumulative_t_s) else view.duration_s
    fig.add_trace(
        go.Scatter(
            x=[0, end],
            y=[view.energy_j, view.energy_j],
            mode="lines",
            line=dict(color="#1f77b4", dash="dot"),
            name=text(f"actual total ({view.status})"),
        )
    )
    for mark in view.budgets:
        if mark.limit_j is not None:
            fig.add_trace(
                go.Scatter(
                    x=[0, end],
                    y=[mark.limit_j, mark.limit_j],
                    mode="lines",
                    line=dict(color="#d62728", dash="dash", width=1),
                    name=text(f"budget: {mark.description}"),
                )
            )
    fig.update_xaxes(title_text="time since start (s)")
    fig.update_yaxes(title_text="energy (J)", rangemode="tozero")
    return _layout(fig, "Energy so far, forecasts and budgets")


def device_chart(view: RunView) -> go.Figure:
    rows = list(view.devices)
    fig = go.Figure(
        go.Bar(
            y=[text(f"{d.device} ({d.provenance})") for d in rows],
            x=[d.energy_j for d in rows],
            orientation="h",
            marker_color=[kind_color(d.kind, i) for i, d in enumerate(rows)],
            error_x=dict(type="data", array=[d.energy_j * d.rel_uncertainty for d in rows], visible=True),
            hovertemplate="%{y}: %{x:.4g} J<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="energy (J), ~95 % band")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Energy by device", height=max(200, 70 + 45 * len(rows)), showlegend=False)


def phase_chart(view: RunView) -> go.Figure:
    rows: Sequence[PhaseRow] = view.phases
    if any(r.depth > 0 for r in rows):
        parents = [r.path.rpartition("/")[0] if r.depth > 0 else "" for r in rows]
        fig = go.Figure(
            go.Sunburst(
                ids=[text(r.path) for r in rows],
                labels=[text(r.name) for r in rows],
                parents=[text(p) for p in parents],
                values=[max(r.energy_j, 0.0) for r in rows],
                branchvalues="total",
                hovertemplate="%{id}: %{value:.4g} J<extra></extra>",
            )
        )
        return _layout(fig, "Energy by phase (nested phases inside their parents)", height=420)
    fig = go.Figure(
        go.Bar(
            y=[text(r.path) for r in rows],
            x=[r.energy_j for r in rows],
            orientation="h",
            error_x=dict(type="data", array=[r.energy_j * r.rel_uncertainty for r in rows], visible=True),
            marker_color=PHASE_COLORS[1],
            marker_line=dict(color="#6a8caf", width=1),
            hovertemplate="%{y}: %{x:.4g} J<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="energy (J), ~95 % band")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Energy by phase", height=max(200, 70 + 40 * len(rows)), showlegend=False)


def intensity_chart(view: RunView) -> go.Figure | None:
    iv = view.intensity
    if iv.t_s is None or iv.g_per_kwh is None or not iv.varies:
        return None  # a constant is said in a sentence; a flat line adds nothing
    fig = go.Figure(
        go.Scatter(
            x=f32(iv.t_s),
            y=f32(iv.g_per_kwh),
            mode="lines",
            line=dict(color="#8c564b", shape="hv"),
            name="grid intensity",
            hovertemplate="%{x:.1f} s: %{y:.4g} gCO2e/kWh<extra></extra>",
        )
    )
    if iv.mean_g_per_kwh is not None:
        end = float(iv.t_s[-1])
        fig.add_trace(
            go.Scatter(
                x=[float(iv.t_s[0]), end],
                y=[iv.mean_g_per_kwh, iv.mean_g_per_kwh],
                mode="lines",
                line=dict(color="#555", dash="dot"),
                name="energy-weighted mean over the run",
            )
        )
    fig.update_xaxes(title_text="time since start (s)")
    fig.update_yaxes(title_text="gCO2e/kWh", rangemode="tozero")
    return _layout(fig, "Carbon intensity over the run", height=320)


# -- several runs -----------------------------------------------------------------------------


def run_labels(cv: ComparisonView) -> list[str]:
    return [text(f"{i + 1}. {v.name} ({v.short_id})") for i, v in enumerate(cv.runs)]


def compare_device_chart(cv: ComparisonView) -> go.Figure:
    labels = run_labels(cv)
    fig = go.Figure()
    for i, device in enumerate(cv.devices):
        kind = device.split(":")[0]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[d.get(device, 0.0) for d in cv.energy_by_device],
                name=text(device),
                marker_color=kind_color(kind, i),
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="energy (J)")
    return _layout(fig, "Energy by device, per run")


def compare_phase_chart(cv: ComparisonView) -> go.Figure:
    labels = run_labels(cv)
    fig = go.Figure()
    for i, phase in enumerate(cv.phases):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[p.get(phase, 0.0) for p in cv.energy_by_phase],
                name=text(phase),
                marker_color=PHASE_COLORS[i % len(PHASE_COLORS)],
                marker_line=dict(color="#888", width=0.5),
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="energy (J)")
    return _layout(fig, "Energy by top-level phase (nested phases rolled up), per run")


def compare_power_chart(cv: ComparisonView) -> go.Figure:
    """Each run's total power over time since its start, overlaid (not stacked)."""
    fig = go.Figure()
    for i, v in enumerate(cv.runs):
        t, e = np.asarray(v.cumulative_t_s, dtype=float), np.asarray(v.cumulative_j, dtype=float)
        if len(t) < 2:
            continue
        dt = np.diff(t)
        ok = dt > 0
        p = np.diff(e)[ok] / dt[ok]
        fig.add_trace(
            go.Scatter(
                x=f32(t[1:][ok]),
                y=f32(p),
                mode="lines",
                name=run_labels(cv)[i],
                line=dict(color=RUN_COLORS[i % len(RUN_COLORS)], width=1),
            )
        )
    fig.update_xaxes(title_text="time since each run's start (s)")
    fig.update_yaxes(title_text="total power (W)", rangemode="tozero")
    return _layout(fig, "Total power over time, runs overlaid")


# -- study ------------------------------------------------------------------------------------


def study_chart(sv: StudyView) -> go.Figure:
    measured = [
        r
        for r in sv.candidates
        if r.status == "measured" and r.energy_per_sample_j is not None and r.quality is not None
    ]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.energy_per_sample_j for r in measured],
            y=[r.quality for r in measured],
            mode="markers+text",
            text=[text(r.name) for r in measured],
            textposition="top center",
            marker=dict(
                size=10,
                color=["#2ca02c" if r.name in sv.front else "#7f7f7f" for r in measured],
                line=dict(color="#333", width=0.5),
            ),
            error_x=dict(
                type="data",
                array=[(r.energy_per_sample_j or 0.0) * (r.rel_uncertainty or 0.0) for r in measured],
                visible=True,
                color="#bbb",
            ),
            name="candidates (green: on the Pareto front)",
            hovertemplate="%{text}: %{x:.4g} J/sample, quality %{y:.4g}<extra></extra>",
        )
    )
    by_name = {r.name: r for r in measured}
    front = [by_name[n] for n in sv.front if n in by_name]
    if front:
        fig.add_trace(
            go.Scatter(
                x=[r.energy_per_sample_j for r in front],
                y=[r.quality for r in front],
                mode="lines",
                line=dict(color="#2ca02c", shape="hv"),
                name="Pareto front",
            )
        )
    if sv.recommended and sv.recommended in by_name:
        r = by_name[sv.recommended]
        fig.add_trace(
            go.Scatter(
                x=[r.energy_per_sample_j],
                y=[r.quality],
                mode="markers",
                marker=dict(symbol="star", size=20, color="#ffbf00", line=dict(color="#333", width=1)),
                name=text(f"recommended: {r.name}"),
            )
        )
    if sv.bound is not None and measured:
        xs = [r.energy_per_sample_j or 0.0 for r in measured]
        fig.add_trace(
            go.Scatter(
                x=[min(xs) * 0.9, max(xs) * 1.1],
                y=[sv.bound, sv.bound],
                mode="lines",
                line=dict(color="#d62728", dash="dash", width=1),
                name="quality bound",
            )
        )
    fig.update_xaxes(title_text="energy per sample (J), ~95 % band", type="log", tickformat=".2~g", nticks=6)
    fig.update_yaxes(title_text=text(sv.quality_name or "quality"))
    return _layout(fig, "Energy and quality of each candidate", height=460)


# -- schedule batch -----------------------------------------------------------------------------


def batch_chart(bv: BatchView) -> go.Figure:
    from datetime import UTC, datetime

    def when(t: float) -> str:
        return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.06)
    if bv.intensity_t is not None and bv.intensity_g is not None:
        fig.add_trace(
            go.Scatter(
                x=[when(float(t)) for t in bv.intensity_t],
                y=f32(bv.intensity_g),
                mode="lines",
                line=dict(color="#8c564b", shape="hv"),
                name="grid intensity (gCO2e/kWh)",
            ),
            row=1,
            col=1,
        )
    lanes = [text(job_label(j.job)) for j in bv.jobs]
    for i, jv in enumerate(bv.jobs):
        job = jv.job
        if job.arrived_at and job.started_at and job.started_at > job.arrived_at:
            fig.add_trace(
                go.Scatter(
                    x=[when(job.arrived_at), when(job.started_at)],
                    y=[lanes[i], lanes[i]],
                    mode="lines",
                    line=dict(color="#c7c7c7", width=10),
                    name="waiting",
                    legendgroup="wait",
                    showlegend=i == 0 or not any(t.name == "waiting" for t in fig.data),
                    hovertemplate=f"{lanes[i]} waited %{{x}}<extra></extra>",
                ),
                row=2,
                col=1,
            )
        if job.started_at and job.ended_at:
            fig.add_trace(
                go.Scatter(
                    x=[when(job.started_at), when(job.ended_at)],
                    y=[lanes[i], lanes[i]],
                    mode="lines",
                    line=dict(color="#1f77b4" if job.status == "completed" else "#d62728", width=10),
                    name="running",
                    legendgroup="run",
                    showlegend=not any(t.name == "running" for t in fig.data),
                    hovertemplate=f"{lanes[i]} ran %{{x}}<extra></extra>",
                ),
                row=2,
                col=1,
            )
        if job.arrived_at:
            fig.add_trace(
                go.Scatter(
                    x=[when(job.arrived_at)],
                    y=[lanes[i]],
                    mode="markers",
                    marker=dict(symbol="triangle-right", size=9, color="#555"),
                    name="arrival",
                    legendgroup="arrival",
                    showlegend=not any(t.name == "arrival" for t in fig.data),
                ),
                row=2,
                col=1,
            )
    fig.update_yaxes(title_text="gCO2e/kWh", row=1, col=1)
    fig.update_yaxes(type="category", autorange="reversed", row=2, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    return _layout(fig, "Carbon intensity, and each job's wait and run", height=max(420, 300 + 28 * len(lanes)))
