"""What each dashboard page shows, built from the ledger with the reports' own views and charts
(`reports.model.run_view`, `reports.multi.comparison_view/study_view/batch_view`,
`reports.charts`), so a page and a report of the same run draw the same figures.

Charts leave here as JSON (plotly's figure format, its numpy series as base64 typed arrays),
made safe to place inside `<script type="application/json">`: no inline script is ever
sent, and /static/dashboard.js draws each figure.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from greenai.dashboard.series import last_energy
from greenai.errors import AmbiguousIdError, RunNotFoundError
from greenai.ledger.candidates import list_studies, study_candidates
from greenai.ledger.compare import repeat_groups
from greenai.ledger.jobs import batch_jobs, list_batches
from greenai.ledger.lookup import matching_ids
from greenai.ledger.records import RunRecord, RunStatus
from greenai.ledger.run_forecasts import run_forecasts
from greenai.ledger.series import SampleSeries
from greenai.ledger.store import Ledger
from greenai.reports.model import POWER_BUCKETS, RunView, run_view

MAX_COMPARED = 12
VIEW_CACHE_RUNS = 32


def figure_json(fig: Any, plain: bool = False) -> str:
    """A plotly figure as JSON that cannot end a <script> element or open a comment: `<`,
    `>` and `&` only occur inside JSON strings, where their \\u escapes mean the same.
    `plain`: series as JSON arrays, not base64-packed typed arrays (a live page extends them,
    which plotly.js cannot do to packed ones)."""
    import plotly.io as pio

    from greenai.reports.charts import figure_dict

    figure = figure_dict(fig)
    if plain:
        for trace in figure.get("data", ()):
            for key in ("x", "y"):
                trace[key] = _plain(trace.get(key))
    text: str = pio.to_json(figure, validate=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _plain(values: Any) -> Any:
    """A series as a list: numpy arrays, and the {"dtype", "bdata"} form plotly packs them in."""
    if isinstance(values, dict) and "bdata" in values and "dtype" in values and "shape" not in values:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return values.tolist() if hasattr(values, "tolist") else values


@dataclass
class RunPage:
    view: RunView
    charts: dict[str, str]  # chart id -> figure JSON
    cursor: int  # the samples table's rowid the page was read up to (live polls start there)
    devices: list[str]  # the power chart's traces, in order
    live: bool
    last_energy: dict[str, float]  # each device's cumulative energy at its last sample read


class Pages:
    """Builds pages; keeps the pages of finished runs (a finished run's figures never change).
    A run's samples are read downsampled by the ledger (`Ledger.power_series`), whose cost
    follows the chart's buckets, not the run's length: nothing of them is kept between requests."""

    def __init__(self) -> None:
        self._views: OrderedDict[tuple[str, float, str], RunPage] = OrderedDict()
        self._lock = threading.Lock()

    # -- one run ---------------------------------------------------------------------------

    def run(self, store: Ledger, run_id: str) -> RunPage:
        record = store.get_run(run_id)
        key = (record.start.run_id, record.updated_at, record.status)
        live = record.status == RunStatus.RUNNING
        if not live:
            with self._lock:
                cached = self._views.get(key)
                if cached is not None:
                    self._views.move_to_end(key)
                    return cached
        view, series = self.view(store, record)
        devices = [s.device for s in view.power]
        page = RunPage(view, run_charts(view, "run1", live=live), series.cursor, devices, live, last_energy(series))
        if not live:
            with self._lock:
                self._views[key] = page
                while len(self._views) > VIEW_CACHE_RUNS:
                    self._views.popitem(last=False)
        return page

    def view(self, store: Ledger, record: RunRecord) -> tuple[RunView, SampleSeries]:
        """The report's view of a run, drawn from its samples as the ledger reads them for a chart."""
        series = store.power_series(record.start.run_id, POWER_BUCKETS)
        coload = store.coload(record.start.run_id)  # the co-load series, a row per second
        return run_view(record, series, run_forecasts(store, record.start.run_id), coload), series

    # -- several runs ----------------------------------------------------------------------

    def compare(self, store: Ledger, ids: Sequence[str]) -> tuple[list[RunView], Any, dict[str, str]]:
        from greenai.reports import charts as c
        from greenai.reports.multi import comparison_view

        views: list[RunView] = []
        seen: set[str] = set()
        for run_id in ids[:MAX_COMPARED]:
            full = resolve_run(store, run_id)
            if full in seen:
                continue
            seen.add(full)
            views.append(self.view(store, store.get_run(full))[0])
        records = [v.record for v in views]
        comparison = comparison_view(views, repeat_groups(store, records)) if len(views) > 1 else None
        charts: dict[str, str] = {}
        if comparison is not None:
            charts["cmp-power"] = figure_json(c.compare_power_chart(comparison))
            charts["cmp-devices"] = figure_json(c.compare_device_chart(comparison))
            if comparison.phases:
                charts["cmp-phases"] = figure_json(c.compare_phase_chart(comparison))
        return views, comparison, charts

    # -- studies and batches ---------------------------------------------------------------

    def study(self, store: Ledger, study: str, max_quality_drop: float) -> tuple[Any, dict[str, str]]:
        from greenai.reports import charts as c
        from greenai.reports.multi import study_view

        rows = study_candidates(store, study)
        ids = sorted({r.study_id for r in rows})
        if not ids:
            raise RunNotFoundError(f"no optimization study matches {study!r}")
        if len(ids) > 1:
            raise AmbiguousIdError(f"{study!r} matches {len(ids)} studies", [(i, f"/studies/{i}") for i in ids])
        sv = study_view(rows, max_quality_drop)
        return sv, {"study": figure_json(c.study_chart(sv))}

    def batch(self, store: Ledger, batch: str) -> tuple[Any, dict[str, str]]:
        from greenai.reports import charts as c
        from greenai.reports.multi import batch_view

        matches = batch_ids(store, batch)
        if not matches:
            raise RunNotFoundError(f"no schedule batch matches {batch!r}")
        if len(matches) > 1:
            raise AmbiguousIdError(f"{batch!r} matches several batches", [(i, f"/batches/{i}") for i in matches])
        jobs = batch_jobs(store, matches[0])

        def load(run_id: str) -> tuple[RunRecord, SampleSeries]:
            record = store.get_run(run_id)
            return record, store.power_series(record.start.run_id, POWER_BUCKETS)

        bv = batch_view(jobs, load)
        return bv, {"batch": figure_json(c.batch_chart(bv))}


def run_charts(view: RunView, prefix: str, live: bool = False) -> dict[str, str]:
    """The run report's charts (reports.charts), as figure JSON keyed by chart id; a live run
    always has its power and energy charts, even before its first samples."""
    from greenai.reports import charts as c

    out: dict[str, str] = {}
    if view.power or live:
        # a live page extends these two: plain arrays
        out[f"{prefix}-power"] = figure_json(c.power_chart(view), plain=live)
        out[f"{prefix}-energy"] = figure_json(c.energy_chart(view), plain=live)
    if view.devices:
        out[f"{prefix}-devices"] = figure_json(c.device_chart(view))
    if view.phases:
        out[f"{prefix}-phases"] = figure_json(c.phase_chart(view))
    intensity = c.intensity_chart(view)
    if intensity is not None:
        out[f"{prefix}-intensity"] = figure_json(intensity)
    return out


def resolve_run(store: Ledger, id_or_prefix: str) -> str:
    from greenai.dashboard.query import resolve_run as matches_of

    matches = matches_of(store, id_or_prefix)
    if not matches:
        raise RunNotFoundError(f"no run matches {id_or_prefix!r}")
    if len(matches) > 1:
        raise AmbiguousIdError(f"run id {id_or_prefix!r} matches several runs", [(m, f"/runs/{m}") for m in matches])
    return matches[0]


def batch_ids(store: Ledger, prefix: str, shown: int = 10) -> list[str]:
    """Batch ids an id or a prefix names (ledger.lookup's rule; at most `shown` + 1)."""
    return store.transaction(lambda conn: matching_ids(conn, "schedule_jobs", "batch_id", prefix, shown), write=False)


def studies(store: Ledger) -> list[tuple[str, float, int]]:
    return list_studies(store)


def batches(store: Ledger, limit: int = 500) -> list[Any]:
    return list_batches(store, limit)


__all__ = ["Pages", "figure_json", "run_charts"]
