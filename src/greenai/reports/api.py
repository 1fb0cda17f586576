"""`greenai.report(...)`: write a report (or an export) of runs, a study or a batch.

    import greenai
    path = greenai.report(run.result)                      # after `with greenai.track(...) as run`
    greenai.report("3fa2c1", "9b01de", output="cmp.html")  # id prefixes, as `greenai runs show` takes
    greenai.report(study="5e1f", output="study.html")
    greenai.report(batch="a1b2c3", output="batch.html")
    greenai.report(job="4f3c", output="job.html")            # a distributed job and its ranks' runs
    greenai.report("3fa2c1", format="model-card", output="co2.yaml")

`render_report` returns the text instead of writing it (the CLI prints exports to stdout).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenai.config import load_config
from greenai.errors import GreenAIError, RunNotFoundError
from greenai.ledger.compare import repeat_groups
from greenai.ledger.records import RunRecord
from greenai.ledger.run_forecasts import run_forecasts
from greenai.ledger.series import SampleSeries
from greenai.ledger.store import Ledger, default_ledger_path
from greenai.reports.exports import FORMATS, codecarbon_csv, model_card

DEFAULT_OUTPUT = {
    "html": "greenai-report.html",
    "model-card": "co2_eq_emissions.yaml",
    "codecarbon-csv": "emissions.csv",
}
FORECAST_ROWS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9)


def report(
    *runs: Any,
    study: str | None = None,
    batch: str | None = None,
    output: str | Path | None = None,
    ledger: str | Path | None = None,
    format: str = "html",
    training_type: str | None = None,
    max_quality_drop: float = 0.01,
    job: str | None = None,
) -> Path:
    """Write a report of `runs` (ids, unique id prefixes or `RunResult`s; one run: its report,
    several: a comparison and each run's report), or of a `study`, a `batch` or a distributed
    `job` (its total per node, per rank and per device, then its ranks' runs), and return
    the file's path. `format` is "html" (default), "model-card" (one run) or "codecarbon-csv"."""
    text = render_report(
        *runs,
        study=study,
        batch=batch,
        ledger=ledger,
        format=format,
        training_type=training_type,
        max_quality_drop=max_quality_drop,
        job=job,
    )
    path = Path(output if output is not None else DEFAULT_OUTPUT[format]).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise GreenAIError(f"cannot write the report to {path}: {e.strerror or e}") from None
    return path


def render_report(
    *runs: Any,
    study: str | None = None,
    batch: str | None = None,
    ledger: str | Path | None = None,
    format: str = "html",
    training_type: str | None = None,
    max_quality_drop: float = 0.01,
    job: str | None = None,
) -> str:
    """The report's (or export's) text; see `report`."""
    ids, ledger_path = _run_ids(runs, ledger)
    if format not in FORMATS:
        raise GreenAIError(f"unknown report format {format!r}; use one of {', '.join(FORMATS)}")
    chosen = sum(bool(x) for x in (ids, study, batch, job))
    if chosen != 1:
        raise GreenAIError("name runs, or one --study, one --batch or one --job (exactly one of them)")
    if format != "html" and not ids:
        raise GreenAIError(f"the {format} export is of runs: name the runs to export")
    if format == "model-card" and len(ids) != 1:
        raise GreenAIError("a model card's co2_eq_emissions describes one run: name exactly one")
    if format == "html":
        from greenai.reports.html import require

        require()  # before the ledger is read: a missing extra is said, not met half-way
    with open_ledger(ledger_path) as store:
        if format == "model-card":
            return model_card(store.get_run(ids[0]), training_type)
        if format == "codecarbon-csv":
            return codecarbon_csv([store.get_run(i) for i in ids])
        if study:
            return _study_report(store, study, max_quality_drop)
        if batch:
            return _batch_report(store, batch)
        if job:
            return _job_report(store, job)
        return _runs_report(store, ids)


def open_ledger(path: Path) -> Ledger:
    if not path.exists():
        raise GreenAIError(f"no ledger at {path}: track a run first (e.g. `greenai demo`), or pass --ledger")
    return Ledger(path)


def _run_ids(runs: Sequence[Any], ledger: str | Path | None) -> tuple[list[str], Path]:
    """Run ids from strings, lists of them and RunResults (whose ledger is used when none
    is given)."""
    ids: list[str] = []
    path = Path(ledger).expanduser() if ledger is not None else None
    for item in runs:
        if isinstance(item, (list, tuple)):
            inner, _ = _run_ids(item, ledger)
            ids.extend(inner)
        elif isinstance(item, str):
            ids.append(item)
        elif hasattr(item, "run_id"):
            ids.append(str(item.run_id))
            if path is None and getattr(item, "ledger_path", None) is not None:
                path = Path(item.ledger_path)
        else:
            raise GreenAIError(f"cannot report {item!r}: give run ids (or prefixes) or RunResult objects")
    if path is None:
        path = load_config().ledger or default_ledger_path()
    return ids, path


def _load(store: Ledger, run_id: str) -> tuple[RunRecord, SampleSeries]:
    """A run and its samples as its charts draw them (downsampled by the ledger)."""
    from greenai.reports.model import POWER_BUCKETS

    record = store.get_run(run_id)
    return record, store.power_series(record.start.run_id, POWER_BUCKETS)


def _run_views(store: Ledger, ids: Sequence[str]) -> list[Any]:
    from greenai.reports.model import run_view

    views = []
    seen: set[str] = set()
    for run_id in ids:
        record, series = _load(store, run_id)
        if record.start.run_id in seen:
            continue
        seen.add(record.start.run_id)
        views.append(
            run_view(record, series, run_forecasts(store, record.start.run_id), store.coload(record.start.run_id))
        )
    return views


def _run_charts(views: Sequence[Any]) -> dict[str, str]:
    from greenai.reports import charts as c

    out: dict[str, str] = {}
    for i, v in enumerate(views, start=1):
        prefix = f"run{i}"
        if v.power:
            out[f"{prefix}-power"] = c.to_div(c.power_chart(v), f"{prefix}-power")
            out[f"{prefix}-energy"] = c.to_div(c.energy_chart(v), f"{prefix}-energy")
        if v.devices:
            out[f"{prefix}-devices"] = c.to_div(c.device_chart(v), f"{prefix}-devices")
        if v.phases:
            out[f"{prefix}-phases"] = c.to_div(c.phase_chart(v), f"{prefix}-phases")
        intensity = c.intensity_chart(v)
        if intensity is not None:
            out[f"{prefix}-intensity"] = c.to_div(intensity, f"{prefix}-intensity")
    return out


def forecast_rows(view: Any) -> list[Any]:
    """A few forecasts to tabulate: the first made past each of 5, 10, 25, 50, 75 and 90 %
    of the plan, and the last."""
    points = list(view.forecasts)
    chosen = []
    for mark in FORECAST_ROWS:
        hit = next((p for p in points if p.progress >= mark), None)
        if hit is not None and hit not in chosen:
            chosen.append(hit)
    if points and points[-1] not in chosen:
        chosen.append(points[-1])
    return chosen


def _runs_report(store: Ledger, ids: Sequence[str]) -> str:
    from greenai.reports import charts as c
    from greenai.reports.html import render
    from greenai.reports.multi import comparison_view, utc

    views = _run_views(store, ids)
    charts = _run_charts(views)
    comparison = None
    if len(views) > 1:
        comparison = comparison_view(views, repeat_groups(store, [v.record for v in views]))
        charts["cmp-devices"] = c.to_div(c.compare_device_chart(comparison), "cmp-devices")
        charts["cmp-phases"] = c.to_div(c.compare_phase_chart(comparison), "cmp-phases")
        charts["cmp-power"] = c.to_div(c.compare_power_chart(comparison), "cmp-power")
        title = f"greenai: {len(views)} runs compared"
        subtitle = " · ".join(f"{v.name} ({v.short_id})" for v in views)
    else:
        v = views[0]
        title = f"greenai run report: {v.name}"
        subtitle = f"run {v.short_id} · {v.status} · {v.started_utc}"
    return render(
        "report.html.j2",
        kind="runs",
        title=title,
        subtitle=subtitle,
        runs=views,
        comparison=comparison,
        charts=charts,
        ledger=str(store.path),
        forecast_rows=forecast_rows,
        utc=utc,
    )


def _study_report(store: Ledger, study: str, max_quality_drop: float) -> str:
    from greenai.ledger.candidates import study_candidates
    from greenai.reports import charts as c
    from greenai.reports.html import render
    from greenai.reports.multi import study_view, utc

    rows = study_candidates(store, study)
    ids = {r.study_id for r in rows}
    if not ids:
        raise RunNotFoundError(f"no optimization study matches {study!r} (see `greenai studies`)")
    if len(ids) > 1:
        raise GreenAIError(f"{study!r} matches {len(ids)} studies; give more of the id")
    sv = study_view(rows, max_quality_drop)
    run_ids = list(dict.fromkeys(r.run_id for r in rows if r.run_id))
    views = _run_views(store, run_ids)
    charts = _run_charts(views)
    charts["study"] = c.to_div(c.study_chart(sv), "study")
    return render(
        "report.html.j2",
        kind="study",
        title=f"greenai optimization study {sv.study_id[:12]}",
        subtitle=f"{len(rows)} candidates · energy per sample and {sv.quality_name or 'quality'}",
        study=sv,
        runs=views,
        comparison=None,
        charts=charts,
        ledger=str(store.path),
        forecast_rows=forecast_rows,
        utc=utc,
    )


def _batch_report(store: Ledger, batch: str) -> str:
    from greenai.ledger.jobs import batch_jobs
    from greenai.reports import charts as c
    from greenai.reports.html import render
    from greenai.reports.multi import batch_view, utc

    jobs = batch_jobs(store, batch)
    if not jobs:
        raise RunNotFoundError(f"no schedule batch matches {batch!r} (see `greenai schedule batches`)")
    bv = batch_view(jobs, lambda run_id: _load(store, run_id))
    return render(
        "report.html.j2",
        kind="batch",
        title=f"greenai schedule batch {bv.batch_id}",
        subtitle=f"{len(jobs)} jobs · carbon intensity, waits and runs",
        batch=bv,
        runs=[],
        comparison=None,
        charts={"batch": c.to_div(c.batch_chart(bv), "batch")},
        ledger=str(store.path),
        forecast_rows=forecast_rows,
        utc=utc,
    )


def _job_report(store: Ledger, job_id: str) -> str:
    """A distributed job (reports/job.py), then a section for each of its ranks' runs this ledger holds."""
    from greenai.reports import charts as c
    from greenai.reports.html import render
    from greenai.reports.job import job_chart, job_view, read_job
    from greenai.reports.multi import utc

    jv = job_view(store, read_job(store, job_id))
    views = _run_views(store, jv.run_ids)
    charts = _run_charts(views)
    if jv.ranks:
        charts["job-ranks"] = c.to_div(job_chart(jv), "job-ranks")
    j = jv.job
    return render(
        "report.html.j2",
        kind="job",
        title=f"greenai distributed job: {j.name}",
        subtitle=f"job {j.job_id} · {j.status} · {j.world_size} ranks on {len(jv.nodes)} node(s) · {utc(j.started_at)}",
        job=jv,
        runs=views,
        comparison=None,
        charts=charts,
        ledger=str(store.path),
        forecast_rows=forecast_rows,
        utc=utc,
    )
