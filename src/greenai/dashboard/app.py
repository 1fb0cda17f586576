"""The dashboard's web app (FastAPI): pages and a small JSON API over a ledger opened read-only.

Pages: `/` the run list (search, filters, sorting, paging), `/runs/{id}` a run (live while it
runs), `/compare?run=A&run=B` runs side by side, `/studies` and `/studies/{id}` optimization
studies, `/batches` and `/batches/{id}` schedule batches, `/jobs` and `/jobs/{id}` distributed
jobs (per node, per rank, which rank read each device). JSON: `/api/runs` (the same
filters), `/api/runs/{id}`, `/api/runs/{id}/live?cursor=N` (samples written since the page
was read) and `/api/runs/{id}/charts`. Static: `/static/plotly-VERSION.min.js` (from the
installed plotly package), `/static/dashboard.js`, `/static/dashboard.css`.

Every page is rendered with Jinja2 autoescaping; an unknown run, study or batch is a 404
page; a missing, corrupt or unreadable ledger is a page that says so (503), never a
traceback. See docs/dashboard.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from greenai._version import __version__
from greenai.dashboard import pages as p
from greenai.dashboard import security
from greenai.dashboard.query import PER_PAGE_CHOICES, SORTS, RunFilter, count_runs, hosts, list_runs, utc_text
from greenai.dashboard.series import LIVE_BUCKETS, live_payload
from greenai.errors import AmbiguousIdError, GreenAIError, LedgerError, RunNotFoundError
from greenai.ledger.export import record_to_dict
from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger
from greenai.tracking.budget import COUNTER_PREFIX
from greenai.units import format_duration_precise

log = logging.getLogger("greenai.dashboard")

LIVE_POLL_MS = 1000


class LedgerPool:
    """Read-only connections to the ledger, opened on demand, a few kept for reuse (each
    request has its own, so a slow read does not hold up the others). A connection whose read
    failed is closed, not reused: the next request opens the file anew, so a ledger that
    appears, or is repaired, while the dashboard runs is read as it now is."""

    def __init__(self, path: Path, keep: int = 4) -> None:
        self.path = path
        self._idle: queue.LifoQueue[Ledger] = queue.LifoQueue()
        self._keep = keep

    @contextlib.contextmanager
    def ledger(self) -> Iterator[Ledger]:
        try:
            store = self._idle.get_nowait()
        except queue.Empty:
            if not self.path.exists():
                raise LedgerError(
                    f"no ledger at {self.path} yet: track a run first (e.g. `greenai demo`), "
                    "or start the dashboard with --ledger PATH"
                ) from None
            store = Ledger(self.path, read_only=True)
        try:
            yield store
        except (LedgerError, OSError):
            store.close()
            raise
        except BaseException:
            self._release(store)
            raise
        else:
            self._release(store)

    def _release(self, store: Ledger) -> None:
        if self._idle.qsize() < self._keep:
            self._idle.put(store)
        else:
            store.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def create_app(
    ledger_path: Path | str,
    token: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> Any:
    """The ASGI app serving `ledger_path` (read-only). With `token`, every request must carry
    it; without, only requests whose Host is a loopback name (or one of `allowed_hosts`) are
    answered."""
    path = Path(ledger_path).expanduser()
    pool = LedgerPool(path)
    builder = p.Pages()
    templates = _templates()
    assets = _Assets()
    app = FastAPI(title="greenai dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.pool = pool
    app.state.pages = builder

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(template).render(
            request_path=request.url.path,
            ledger=str(path),
            version=__version__,
            plotly_url=assets.plotly_url(),
            live_poll_ms=LIVE_POLL_MS,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def error_page(request: Request, status: int, title: str, message: str, hint: str = "", **extra: Any) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        return page(
            request,
            "error.html.j2",
            status=status,
            status_code=status,
            title=title,
            message=message,
            hint=hint,
            **extra,
        )

    # -- access and headers ----------------------------------------------------------------

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        try:
            response = await _guard(request, call_next)
        except Exception as exc:  # a bug of ours: a page that says so, the traceback on the terminal
            log.error("dashboard: %s %s failed", request.method, request.url.path, exc_info=exc)
            response = error_page(
                request,
                500,
                "Internal error",
                f"{type(exc).__name__}: {exc}",
                "This is a bug in greenai's dashboard; the terminal that started it has the traceback.",
            )
        for name, value in security.HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if token is None:
            if not security.host_allowed(request.headers.get("host"), allowed_hosts):
                return error_page(
                    request,
                    400,
                    "Unexpected host name",
                    "This dashboard serves this machine only and answers requests addressed to 127.0.0.1 or "
                    "localhost (a page on another site cannot reach it through its own host name).",
                    "Open it at http://127.0.0.1:PORT/, or start it with --token to serve other addresses.",
                )
            return await call_next(request)
        given = security.bearer(request.headers.get("authorization"))
        if given is not None:
            if security.token_matches(given, token):
                return await call_next(request)
            return _denied(request)
        query_token = request.query_params.get("token")
        if query_token is not None:
            if not security.token_matches(query_token, token):
                return _denied(request)
            rest = security.without_token(request.url.query)
            response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(security.COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        if security.token_matches(request.cookies.get(security.COOKIE), token):
            return await call_next(request)
        return _denied(request)

    def _denied(request: Request) -> Response:
        response = error_page(
            request,
            401,
            "Token required",
            "This dashboard needs its token.",
            "Open the address it printed when it started (it ends with ?token=...), or send the header "
            "'Authorization: Bearer TOKEN'.",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="greenai dashboard"'
        return response

    # -- errors ----------------------------------------------------------------------------

    @app.exception_handler(RunNotFoundError)
    async def run_not_found(request: Request, exc: RunNotFoundError) -> Response:
        return error_page(request, 404, "Not found", str(exc), "The run list shows what this ledger holds.")

    @app.exception_handler(AmbiguousIdError)
    async def ambiguous(request: Request, exc: AmbiguousIdError) -> Response:
        return error_page(request, 400, "Which one?", str(exc) + ": give more of the id.", matches=exc.matches)

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> Response:
        return error_page(
            request,
            503,
            "The ledger cannot be read",
            str(exc),
            "The dashboard only reads the ledger: nothing was changed. Reload once the file is there or repaired.",
        )

    @app.exception_handler(GreenAIError)
    async def greenai_error(request: Request, exc: GreenAIError) -> Response:
        return error_page(request, 500, "greenai could not show this", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", f"there is no page {request.url.path}")
        return error_page(request, exc.status_code, "Request refused", str(exc.detail))

    # -- static ----------------------------------------------------------------------------

    @app.get("/static/plotly-{version}.min.js", include_in_schema=False)
    def plotly_js(version: str) -> Response:
        return Response(
            assets.plotly_js(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=604800, immutable"},
        )

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        content, media = assets.own(name)
        return Response(content, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    # -- pages -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def run_list(request: Request) -> Response:
        f, problems = RunFilter.parse(request.query_params, request.query_params.getlist("tag"))
        with pool.ledger() as store:
            result = list_runs(store, f)
            host_names = hosts(store)
            total = count_runs(store) if f.active else result.total

        def link(**changes: Any) -> str:
            query = urlencode(f.params(**changes))
            return "/" + (f"?{query}" if query else "")

        def sort_link(key: str) -> str:
            order = ("asc" if f.order == "desc" else "desc") if f.sort == key else p_default_order(key)
            return link(sort=key, order=order, page=1)

        return page(
            request,
            "runs.html.j2",
            title="Runs",
            result=result,
            f=f,
            problems=problems,
            hosts=host_names,
            statuses=RunStatus.ALL,
            per_page_choices=PER_PAGE_CHOICES,
            sorts=SORTS,
            link=link,
            sort_link=sort_link,
            all_runs=total,
        )

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_detail(request: Request, run_id: str) -> Response:
        with pool.ledger() as store:
            full = p.resolve_run(store, run_id)
            built = builder.run(store, full)
        v = built.view
        return page(
            request,
            "run.html.j2",
            title=f"Run {v.name}",
            v=v,
            charts=built.charts,
            live=built.live,
            cursor=built.cursor,
            devices=json.dumps(built.devices),
            last_energy=json.dumps(built.last_energy),
            forecast_rows=_forecast_rows,
            utc=utc_text,
        )

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request) -> Response:
        ids = [i for i in request.query_params.getlist("run") if i.strip()]
        if not ids:
            return page(request, "compare.html.j2", title="Compare runs", views=[], comparison=None, charts={})
        with pool.ledger() as store:
            views, comparison, charts = builder.compare(store, ids)
        return page(
            request,
            "compare.html.j2",
            title=f"{len(views)} runs compared",
            views=views,
            comparison=comparison,
            charts=charts,
            too_many=len(ids) > p.MAX_COMPARED,
            max_compared=p.MAX_COMPARED,
        )

    @app.get("/studies", response_class=HTMLResponse)
    def study_list(request: Request) -> Response:
        with pool.ledger() as store:
            rows = p.studies(store)
        return page(request, "studies.html.j2", title="Optimization studies", studies=rows, utc=utc_text)

    @app.get("/studies/{study_id}", response_class=HTMLResponse)
    def study(request: Request, study_id: str, max_quality_drop: float = 0.01) -> Response:
        if not math.isfinite(max_quality_drop) or max_quality_drop < 0:
            max_quality_drop = 0.01
        with pool.ledger() as store:
            sv, charts = builder.study(store, study_id, max_quality_drop)
        return page(
            request,
            "study.html.j2",
            title=f"Study {sv.study_id}",
            study=sv,
            charts=charts,
            max_quality_drop=max_quality_drop,
        )

    @app.get("/batches", response_class=HTMLResponse)
    def batch_list(request: Request) -> Response:
        with pool.ledger() as store:
            rows = p.batches(store)
        return page(request, "batches.html.j2", title="Schedule batches", batches=rows, utc=utc_text)

    @app.get("/batches/{batch_id}", response_class=HTMLResponse)
    def batch(request: Request, batch_id: str) -> Response:
        with pool.ledger() as store:
            bv, charts = builder.batch(store, batch_id)
        return page(request, "batch.html.j2", title=f"Batch {bv.batch_id}", batch=bv, charts=charts, utc=utc_text)

    @app.get("/jobs", response_class=HTMLResponse)
    def job_list(request: Request) -> Response:
        from greenai.ledger.distributed import list_jobs

        with pool.ledger() as store:
            jobs = store.transaction(lambda conn: list_jobs(conn, 500), write=False)
        return page(request, "jobs.html.j2", title="Distributed jobs", jobs=jobs, utc=utc_text)

    @app.get("/jobs/{job_id:path}", response_class=HTMLResponse)
    def job(request: Request, job_id: str) -> Response:
        from greenai.reports.job import job_chart

        with pool.ledger() as store:
            jv = _job_view(store, job_id)
        charts = {"job-ranks": p.figure_json(job_chart(jv))} if jv.ranks else {}
        return page(request, "job.html.j2", title=f"Job {jv.job.name}", job=jv, charts=charts, utc=utc_text)

    # -- JSON ------------------------------------------------------------------------------

    @app.get("/api/jobs/{job_id:path}")
    def api_job(job_id: str) -> Response:
        from greenai.distributed.breakdown import job_to_dict

        with pool.ledger() as store:
            return _json(job_to_dict(_job_view(store, job_id).job))

    @app.get("/api/runs")
    def api_runs(request: Request) -> Response:
        f, problems = RunFilter.parse(request.query_params, request.query_params.getlist("tag"))
        if problems:
            return JSONResponse({"error": "; ".join(problems), "status": 400}, status_code=400)
        with pool.ledger() as store:
            result = list_runs(store, f)
        return _json(
            {
                "total": result.total,
                "page": f.page,
                "pages": result.pages,
                "per_page": f.per_page,
                "runs": [
                    {
                        "run_id": r.run_id,
                        "name": r.name,
                        "status": r.status,
                        "started_at": r.started_at,
                        "ended_at": r.ended_at,
                        "host": r.host,
                        "duration_s": r.duration_s,
                        "energy_j": r.energy_j,
                        "rel_uncertainty": r.rel_uncertainty,
                        "provenance": r.provenance,
                        "carbon_g": r.carbon_g,
                        "tags": r.tags,
                    }
                    for r in result.rows
                ],
            }
        )

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> Response:
        with pool.ledger() as store:
            record = store.get_run(p.resolve_run(store, run_id))
        return _json(record_to_dict(record))

    @app.get("/api/runs/{run_id}/live")
    def api_live(run_id: str, cursor: int = 0) -> Response:
        from greenai.reports.charts import text
        from greenai.reports.html import fmt_carbon, fmt_energy, fmt_pct

        with pool.ledger() as store:
            full = p.resolve_run(store, run_id)
            record = store.get_run(full)
            new = store.power_series(full, LIVE_BUCKETS, after=live_cursor(cursor), phases=False)
        snap = record.snapshot
        devices = live_payload(new, record.start.started_at)
        for d in devices:
            d["name"] = text(f"{d['device']} ({d['provenance']})")
        return _json(
            {
                "run_id": full,
                "status": record.status,
                "cursor": new.cursor,
                "rows": new.rows,
                "devices": devices,
                "headline": {
                    "energy": fmt_energy(snap.energy_j),
                    "band": fmt_pct(snap.rel_uncertainty),
                    "duration": format_duration_precise(snap.duration_s),
                    "carbon": fmt_carbon(snap.carbon_g),
                    "facility": fmt_energy(snap.facility_energy_j),
                    "status": record.status,
                },
            }
        )

    @app.get("/api/runs/{run_id}/charts")
    def api_charts(run_id: str) -> Response:
        with pool.ledger() as store:
            built = builder.run(store, p.resolve_run(store, run_id))
        body = ",".join(f"{json.dumps(k)}:{v}" for k, v in built.charts.items())
        return Response(
            f'{{"cursor":{built.cursor},"devices":{json.dumps(built.devices)},"charts":{{{body}}}}}',
            media_type="application/json",
        )

    return app


MAX_CURSOR = 2**63 - 1  # the largest rowid SQLite holds


def live_cursor(cursor: int) -> int:
    """A live poll's cursor as SQLite can bind it: 0 to 2^63 - 1 (a larger one was an
    OverflowError, a 500; the ledger's read clamps it to the samples it holds)."""
    return min(max(cursor, 0), MAX_CURSOR)


def p_default_order(key: str) -> str:
    from greenai.dashboard.query import DEFAULT_ORDER

    return DEFAULT_ORDER.get(key, "asc")


def _job_view(store: Ledger, prefix: str) -> Any:
    """The view of the job with this id or unique prefix (RunNotFoundError, AmbiguousIdError)."""
    from urllib.parse import quote

    from greenai.reports.job import job_view, matching_jobs, read_job

    matches = matching_jobs(store, prefix)
    if not matches:
        raise RunNotFoundError(f"no distributed job matches {prefix!r}")
    if len(matches) > 1:
        raise AmbiguousIdError(
            f"job id {prefix!r} matches several jobs", [(m, f"/jobs/{quote(m, safe='')}") for m in matches]
        )
    return job_view(store, read_job(store, matches[0]))


def _forecast_rows(view: Any) -> list[Any]:
    from greenai.reports.api import forecast_rows

    return forecast_rows(view)


def _json(data: Any) -> Response:
    return Response(json.dumps(_finite(data), allow_nan=False), media_type="application/json")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class _Assets:
    """plotly.js from the installed plotly package (read once), and the dashboard's own files."""

    OWN = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plotly: bytes | None = None
        self._own: dict[str, bytes] = {}

    def plotly_url(self) -> str:
        import plotly

        return f"/static/plotly-{plotly.__version__}.min.js"

    def plotly_js(self) -> bytes:
        with self._lock:
            if self._plotly is None:
                from greenai.reports.html import plotly_js

                self._plotly = plotly_js().encode("utf-8")
            return self._plotly

    def own(self, name: str) -> tuple[bytes, str]:
        media = self.OWN.get(name)
        if media is None:
            raise RunNotFoundError(f"there is no file /static/{name}")
        with self._lock:
            if name not in self._own:
                self._own[name] = resources.files("greenai.dashboard").joinpath("static", name).read_bytes()
            return self._own[name], media


def _templates() -> Any:
    import jinja2

    from greenai.reports import html as h

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("greenai.dashboard", "templates"),
        autoescape=True,  # every name, tag and note from the ledger is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["budget_counter"] = lambda name: str(name).startswith(COUNTER_PREFIX + ".")
    env.filters.update(
        energy=h.fmt_energy,
        num=h.fmt_num,
        pct=h.fmt_pct,
        dur=format_duration_precise,
        carbon=h.fmt_carbon,
        watts=h.fmt_watts,
        ratio=h.fmt_ratio,
        singular=h.singular,
    )
    return env
