"""The dashboard's pages and JSON through FastAPI's TestClient: the run list's search, filters,
sorting and paging; run, compare, study and batch pages; 404s; escaping; the token rules;
missing and corrupt ledgers; live reads past a cursor; server-side downsampling."""

from __future__ import annotations

import html
import re
import socket
import sqlite3
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from tests.dashboard.conftest import DAY, T0, Many, add_run
from tests.helpers import assert_one_line_error, greenai
from tests.report.world import HOSTILE, World

from greenai.dashboard import security
from greenai.dashboard.app import create_app
from greenai.dashboard.series import LIVE_BUCKETS
from greenai.errors import GreenAIError
from greenai.ledger.records import RunStatus, SampleRow
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.reports.model import POWER_BUCKETS

LOCAL = "http://127.0.0.1"
TOKEN = "s3cret-token-0123456789"


def client(ledger: Path, **kw) -> TestClient:
    return TestClient(create_app(ledger, **kw), base_url=LOCAL)


def names_on(html: str) -> list[str]:
    return re.findall(r'<td class="name"><a href="/runs/[0-9a-f]+">([^<]*)</a>', html)


def scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>", html, flags=re.IGNORECASE)


# -- the run list ------------------------------------------------------------------------------


def test_the_list_pages_through_all_runs_newest_first(many: Many):
    c = client(many.ledger)
    first = c.get("/?per_page=25")
    assert first.status_code == 200
    assert "Runs <b>1–25</b> of <b>120</b>" in first.text
    assert names_on(first.text)[:2] == ["eval-59", "train-59"]  # newest first
    third = c.get("/?per_page=25&page=3")
    assert "Runs <b>51–75</b> of <b>120</b>" in third.text
    assert names_on(third.text)[0] == "eval-34"  # run 69 of 0..119, the 51st newest
    last = c.get("/?per_page=25&page=5")
    assert len(names_on(last.text)) == 20 and names_on(last.text)[-1] == "train-0"
    past = c.get("/?per_page=25&page=9")
    assert past.status_code == 200 and names_on(past.text) == [] and "past the last one" in past.text
    api = c.get("/api/runs?per_page=25&page=2").json()
    assert api["total"] == 120 and api["pages"] == 5 and len(api["runs"]) == 25
    assert [r["run_id"] for r in api["runs"]] == many.ids[::-1][25:50]


def test_a_page_or_cursor_beyond_any_integer_sqlite_holds_is_never_a_500(many: Many, tmp_path: Path):
    c = client(many.ledger)
    for page in (2**63 - 1, 2**63, 10**30):
        r = c.get(f"/?page={page}")
        assert r.status_code == 200 and names_on(r.text) == [] and "past the last one" in r.text
        api = c.get(f"/api/runs?page={page}&per_page=500")
        assert api.status_code == 200 and api.json()["runs"] == [] and api.json()["total"] == 120
    ledger = tmp_path / "live.db"
    with Ledger(ledger) as store:
        run_id = add_run(store, "live", time.time(), 30.0, status=RunStatus.RUNNING, samples=3)
    for cursor in (2**63 - 1, 2**63, 10**30, -(2**63) - 1):
        r = client(ledger).get(f"/api/runs/{run_id}/live?cursor={cursor}")
        assert r.status_code == 200 and r.json()["status"] == "running"


def test_search_filters_and_sorting(many: Many):
    c = client(many.ledger)

    def names(query: str) -> list[str]:
        data = c.get(f"/api/runs?per_page=500&{query}").json()
        return [r["name"] for r in data["runs"]]

    assert set(names("q=train-1")) == {"train-1", *(f"train-{i}" for i in range(10, 20))}
    assert names("q=TRAIN-59") == ["train-59"]  # case-insensitive substring
    assert names("name=eval-3") == ["eval-3"]  # exact
    assert len(names("q=node-b")) == 60  # host
    assert names(f"q={many.ids[7][:10]}") == ["eval-3"]  # an id prefix
    assert len(names("tag=model=cnn")) == 40
    assert len(names("tag=model=cnn&tag=seq=3")) == 1
    assert len(names("tag=seq")) == 120 and names("tag=nope") == []
    assert len(names("status=failed")) == 24
    assert len(names("host=node-a")) == 60
    assert len(names("host=node-a&status=failed")) == 12
    # dates are UTC days, both ends included: runs start one an hour from 2025-01-01 00:00
    assert len(names("since=2025-01-02")) == 120 - 24
    assert len(names("until=2025-01-01")) == 24
    assert len(names("since=2025-01-02&until=2025-01-03")) == 48
    assert names("q=%25") == [] and names("q=_") == []  # LIKE wildcards are literal
    energies = [r["energy_j"] for r in c.get("/api/runs?sort=energy&order=asc&per_page=5").json()["runs"]]
    assert energies == [10.0, 20.0, 30.0, 40.0, 50.0]
    by_name = names("sort=name&order=asc&per_page=3")
    assert by_name == ["eval-0", "eval-1", "eval-10"]
    html = c.get("/?q=train&status=failed&sort=energy").text
    assert "matching (of 120 in the ledger)" in html
    assert 'href="/?q=train&amp;status=failed&amp;sort=energy&amp;order=asc' in html  # sort links keep the filters


def test_a_search_reads_the_tags_once_not_run_by_run(many: Many):
    """A search matches tag keys and values from one pass over the tags, not a lookup per run
    (a correlated subquery), which on 100,000 runs made the search three times slower
    (benchmarks/run_list_queries.py; docs/benchmarks.md, after "Dashboard speed")."""
    c = client(many.ledger)
    assert len(c.get("/api/runs?per_page=500&q=CNN").json()["runs"]) == 40  # a tag value
    assert len(c.get("/api/runs?per_page=500&q=mode").json()["runs"]) == 120  # a tag key
    from greenai.dashboard.query import RunFilter, _where

    where, args = _where(RunFilter.parse({"q": "cnn"})[0], [])
    conn = sqlite3.connect(many.ledger)
    try:
        plan = " | ".join(
            row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT count(*) FROM runs r WHERE {where}", args)
        )
    finally:
        conn.close()
    assert "CORRELATED" not in plan, plan


def test_unusable_filters_are_said_not_failed(many: Many):
    c = client(many.ledger)
    r = c.get("/?since=yesterday&sort=bogus&status=exploded&page=x")
    assert r.status_code == 200
    for said in ("'yesterday' is not a date", "unknown sort 'bogus'", "unknown status 'exploded'", "page='x'"):
        assert said in html.unescape(r.text)
    assert c.get("/api/runs?since=yesterday").status_code == 400


def test_a_running_run_whose_process_is_gone_lists_as_incomplete(tmp_path: Path):
    ledger = tmp_path / "l.db"
    with Ledger(ledger) as store:
        # on this host, by a process that is not there (pids stop below 2**22)
        gone = add_run(store, "ghost", T0, 5.0, host=socket.gethostname(), status=RunStatus.RUNNING, pid=2**22 + 7)
    data = client(ledger).get("/api/runs").json()
    assert [(r["run_id"], r["status"]) for r in data["runs"]] == [(gone, "incomplete")]
    assert client(ledger).get("/api/runs?status=incomplete").json()["total"] == 1
    assert client(ledger).get("/api/runs?status=running").json()["total"] == 0


# -- pages -------------------------------------------------------------------------------------


def test_a_run_page_shows_the_report_figures_and_charts(world: World):
    c = client(world.ledger)
    r = c.get(f"/runs/{world.run_id[:8]}")  # a prefix resolves
    assert r.status_code == 200
    text = r.text
    assert "Run train-cnn" in text and "Energy (IT)" in text and "Energy per sample" in text
    for chart in ("run1-power", "run1-energy", "run1-devices", "run1-phases"):
        assert f'data-figure="{chart}"' in text and f'id="fig-{chart}"' in text
    assert "Seed metrics" in text and "RUR gpu:0" in text
    assert 'id="live"' not in text  # a finished run does not poll
    charts = c.get(f"/api/runs/{world.run_id}/charts").json()["charts"]
    power = charts["run1-power"]["data"]
    assert sorted(t["name"] for t in power if t.get("stackgroup") == "power") == [
        "cpu:0 (simulated)",
        "dram:0 (simulated)",
        "gpu:0 (simulated)",
    ]


def test_compare_study_and_batch_pages(world: World):
    c = client(world.ledger)
    r = c.get(f"/compare?run={world.run_id}&run={world.other_id}")
    assert r.status_code == 200
    assert "2 runs, ratios to run 1" in r.text and 'data-figure="cmp-power"' in r.text
    assert 'data-figure="cmp-devices"' in r.text and 'data-figure="cmp-phases"' in r.text
    # each ratio with its band and its verdict in words, the co-load column and the legend: the
    # same as `runs compare` and the comparison report say (ledger.compare)
    assert r.text.count('class="verdict ') >= 3 and "co-load (CPUs)" in r.text
    assert "is the ratio&#39;s ~95% band" in r.text or "is the ratio's ~95% band" in r.text
    assert "Tick two or more runs" in c.get(f"/compare?run={world.run_id}").text
    s = c.get("/studies")
    assert s.status_code == 200 and "study-1" in s.text
    study = c.get(f"/studies/{world.study_id}")
    assert study.status_code == 200 and 'data-figure="study"' in study.text and "int8-dynamic" in study.text
    assert "Recommendation" in study.text
    looser = c.get(f"/studies/{world.study_id}?max_quality_drop=0.2").text
    assert "prune=0.9 ★" in looser  # a looser bound recommends the cheapest candidate
    b = c.get("/batches")
    assert b.status_code == 200 and "batch-1" in b.text
    batch = c.get(f"/batches/{world.batch_id}")
    assert batch.status_code == 200 and 'data-figure="batch"' in batch.text and "job &lt;a&gt;" in batch.text


def test_unknown_ids_are_404_pages_never_500(world: World):
    c = client(world.ledger)
    for path in ("/runs/0123456789abcdef", "/runs/zz", "/studies/nope", "/batches/nope", "/no/such/page"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert "<h1>Not found</h1>" in r.text and "Traceback" not in r.text
    assert c.get("/compare?run=nope&run=nope2").status_code == 404
    assert c.get("/api/runs/nope").json() == {"error": "no run matches 'nope'", "status": 404}
    assert c.get("/api/runs/nope/live?cursor=0").status_code == 404


def test_an_ambiguous_prefix_lists_the_runs_it_matches(tmp_path: Path):
    ledger = tmp_path / "l.db"
    a, b = "abc1" + "0" * 28, "abc2" + "0" * 28
    with Ledger(ledger) as store:
        add_run(store, "a", T0, 1.0, run_id=a)
        add_run(store, "b", T0 + 1, 1.0, run_id=b)
    r = client(ledger).get("/runs/abc")
    assert r.status_code == 400 and "matches several runs" in html.unescape(r.text)
    assert f'href="/runs/{a}"' in r.text and f'href="/runs/{b}"' in r.text
    assert client(ledger).get("/runs/abc2").status_code == 200


# -- escaping and what pages load --------------------------------------------------------------


def test_names_tags_and_notes_from_the_ledger_are_escaped(world: World):
    c = client(world.ledger)
    pages = {
        "list": c.get("/").text,
        "search": c.get("/?q=%3Cscript").text,
        "run": c.get(f"/runs/{world.hostile_id}").text,
        "compare": c.get(f"/compare?run={world.hostile_id}&run={world.run_id}").text,
        "batch": c.get(f"/batches/{world.batch_id}").text,
    }
    for name, text in pages.items():
        assert HOSTILE not in text, name
        assert "<b>x</b>" not in text, name  # the hostile run's tag model=<b>x</b>
        assert all('src="/static/' in tag or 'type="application/json"' in tag for tag in scripts(text)), (
            name
        )  # no inline script of any kind
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["run"]
    assert "model=&lt;b&gt;x&lt;/b&gt;" in pages["run"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["search"]  # the search box echoes it as text
    # chart data can neither end its <script> element nor carry markup plotly would read
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', pages["run"], flags=re.S):
        assert "<" not in block and ">" not in block
    charts = c.get(f"/api/runs/{world.hostile_id}/charts").text
    assert "<script" not in charts and "\\u003cscript\\u003e" not in charts  # labels escaped as HTML entities


def test_pages_load_nothing_from_outside_and_carry_security_headers(world: World):
    c = client(world.ledger)
    r = c.get(f"/runs/{world.run_id}")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert not re.search(r'(src|href)="(https?:)?//', r.text)  # no CDN, no web font
    src = re.search(r'<script src="(/static/plotly-[^"]+\.min\.js)"', r.text).group(1)
    js = c.get(src)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    assert c.get("/static/dashboard.js").status_code == 200
    assert c.get("/static/../app.py").status_code == 404
    assert c.get("/static/nothing.js").status_code == 404


# -- access --------------------------------------------------------------------------------------


def test_a_non_loopback_bind_needs_a_token():
    assert security.bind_token("127.0.0.1", None, {}) is None
    assert security.bind_token("::1", None, {}) is None
    assert security.bind_token("localhost", None, {}) is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        with pytest.raises(GreenAIError, match="refusing to serve the ledger on .* without a token"):
            security.bind_token(host, None, {})
    assert security.bind_token("0.0.0.0", TOKEN, {}) == TOKEN
    assert security.bind_token("0.0.0.0", None, {security.TOKEN_ENV: TOKEN}) == TOKEN
    assert security.bind_token("0.0.0.0", TOKEN, {security.TOKEN_ENV: "other-token-abcdefgh"}) == TOKEN
    with pytest.raises(GreenAIError, match="at least 16"):
        security.bind_token("0.0.0.0", "short", {})
    with pytest.raises(GreenAIError, match="empty"):
        security.bind_token("127.0.0.1", "  ", {})


def test_the_command_refuses_a_non_loopback_bind_without_a_token(tmp_path: Path):
    proc = greenai("dashboard", "--host", "0.0.0.0", "--port", "0", "--no-open", ledger=tmp_path / "l.db", timeout=60)
    assert_one_line_error(proc, 1, "refusing to serve the ledger on 0.0.0.0 without a token", "--token")
    assert proc.stdout == ""  # nothing was served


def test_the_token_as_bearer_or_once_in_the_address(world: World, monkeypatch: pytest.MonkeyPatch):
    compared: list[tuple[bytes, bytes]] = []
    real = security.hmac.compare_digest
    monkeypatch.setattr(security.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    c = client(world.ledger, token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}):
        r = c.get("/", headers=headers)
        assert r.status_code == 401 and "Token required" in r.text, headers
        assert world.run_id not in r.text
    assert c.get("/api/runs").json()["status"] == 401
    assert c.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert compared and all(a == TOKEN.encode() or b == TOKEN.encode() for a, b in compared)
    assert c.get("/?token=wrong-token-0123456789").status_code == 401
    r = c.get(f"/?q=train&token={TOKEN}&page=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?q=train&page=1"  # the token leaves the address
    cookie = r.headers["set-cookie"]
    assert f"{security.COOKIE}={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    follow = c.get(r.headers["location"])  # the client now sends the cookie
    assert follow.status_code == 200 and "train-cnn" in follow.text
    other = TestClient(create_app(world.ledger, token=TOKEN), base_url="http://203.0.113.7")
    assert other.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200  # any Host with a token


def test_without_a_token_only_loopback_host_names_are_answered(world: World):
    app = create_app(world.ledger)
    assert TestClient(app, base_url="http://localhost:8765").get("/").status_code == 200
    assert TestClient(app, base_url="http://[::1]:8765").get("/").status_code == 200
    r = TestClient(app, base_url="http://attacker.example").get("/")
    assert r.status_code == 400 and "Unexpected host name" in r.text and world.run_id not in r.text


# -- ledgers that cannot be read -----------------------------------------------------------------


def test_a_missing_ledger_is_a_page_and_is_read_once_it_exists(tmp_path: Path):
    ledger = tmp_path / "later.db"
    c = client(ledger)
    r = c.get("/")
    assert r.status_code == 503 and "The ledger cannot be read" in r.text and f"no ledger at {ledger}" in r.text
    assert "Traceback" not in r.text
    assert c.get("/api/runs").json()["status"] == 503
    with Ledger(ledger) as store:
        add_run(store, "first", T0, 1.0)
    assert names_on(c.get("/").text) == ["first"]
    assert not ledger.with_name("later.db-journal").exists()


@pytest.mark.parametrize("content", [b"this is not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 8000])
def test_a_corrupt_ledger_is_a_page_not_a_traceback(tmp_path: Path, content: bytes):
    ledger = tmp_path / "corrupt.db"
    ledger.write_bytes(content)
    c = client(ledger)
    for path in ("/", "/runs/abc", "/studies", "/batches", "/compare?run=a&run=b"):
        r = c.get(path)
        assert r.status_code == 503, path
        assert "The ledger cannot be read" in r.text and "corrupt or not SQLite" in r.text
        assert "Traceback" not in r.text
    assert ledger.read_bytes() == content  # read-only: not a byte changed


def test_a_foreign_sqlite_file_is_a_page(tmp_path: Path):
    import sqlite3

    ledger = tmp_path / "other.db"
    conn = sqlite3.connect(ledger)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    r = client(ledger).get("/")
    assert r.status_code == 503 and "not a greenai ledger" in r.text


# -- samples: live reads and downsampling --------------------------------------------------------


def test_live_reads_return_exactly_the_rows_flushed_since_the_cursor(tmp_path: Path):
    ledger = tmp_path / "live.db"
    with Ledger(ledger) as store:
        run_id = add_run(store, "live", time.time(), 30.0, status=RunStatus.RUNNING, samples=3)
        other = add_run(store, "other", time.time(), 5.0, samples=2)
    c = client(ledger)
    page = c.get(f"/runs/{run_id}").text
    cursor = int(re.search(r'data-cursor="(\d+)"', page).group(1))
    assert 'id="live"' in page
    nothing = c.get(f"/api/runs/{run_id}/live?cursor={cursor}").json()
    assert nothing["rows"] == 0 and nothing["devices"] == [] and nothing["cursor"] == cursor
    with Ledger(ledger) as store:
        record = store.get_run(run_id)
        t = record.start.started_at
        new = [SampleRow(t + 10 + i, "gpu:0", DeviceKind.GPU, 50.0, 40.0 + i, Provenance.SIMULATED) for i in range(4)]
        new.append(SampleRow(t + 12, "disk:0", DeviceKind.DISK, 2.0, 1.0, Provenance.SIMULATED))  # a new device
        store.flush(run_id, record.snapshot, new)
        add_run(store, "meanwhile", time.time(), 1.0, samples=5)  # another run's rows are not this run's
    live = c.get(f"/api/runs/{run_id}/live?cursor={cursor}").json()
    assert live["rows"] == 5 and live["status"] == "running" and live["cursor"] > cursor
    got = {d["device"]: d for d in live["devices"]}
    assert got["gpu:0"]["t"] == pytest.approx([10, 11, 12, 13], abs=1e-3)
    assert got["gpu:0"]["energy_j"] == [40.0, 41.0, 42.0, 43.0]
    assert got["disk:0"]["name"] == "disk:0 (simulated)" and got["disk:0"]["kind"] == "disk"
    again = c.get(f"/api/runs/{run_id}/live?cursor={live['cursor']}").json()
    assert again["rows"] == 0
    # the page read again holds everything: 3 + 5 rows
    assert 'data-samples="8"' in c.get(f"/runs/{run_id}").text
    with Ledger(ledger) as store:
        store.end_run(run_id, RunStatus.COMPLETED, time.time(), store.get_run(run_id).snapshot)
    assert c.get(f"/api/runs/{run_id}/live?cursor={again['cursor']}").json()["status"] == "completed"
    assert other


def test_a_long_series_is_downsampled_shape_preserved_and_read_incrementally(tmp_path: Path):
    import numpy as np

    ledger = tmp_path / "long.db"
    n = 40_000
    start = T0 + 30 * DAY
    with Ledger(ledger) as store:
        run_id = add_run(store, "long", start, 1.0, status=RunStatus.RUNNING, samples=1)
        record = store.get_run(run_id)
        power = 100 + 10 * np.sin(np.arange(n) / 500.0)
        power[12_345] = 900.0  # one spike, one dip: a shape-preserving reduction keeps both
        power[33_333] = 1.0
        rows = [
            SampleRow(start + 2 + i * 0.1, "gpu:0", DeviceKind.GPU, float(power[i]), float(i), Provenance.SIMULATED)
            for i in range(n)
        ]
        store.flush(run_id, record.snapshot, rows[: n // 2])
    with Ledger(ledger, read_only=True) as ro:
        first = ro.power_series(run_id, POWER_BUCKETS)
    with Ledger(ledger) as store:
        store.flush(run_id, record.snapshot, rows[n // 2 :])
    with Ledger(ledger, read_only=True) as ro:
        # read past the first read's cursor: only the second half
        grown = ro.power_series(run_id, LIVE_BUCKETS, after=first.cursor)
        whole = ro.power_series(run_id, POWER_BUCKETS)  # everything, from the ledger's overview
        assert ro.power_series(run_id, LIVE_BUCKETS, after=whole.cursor).rows == 0
    assert first.rows == 1 + n // 2 and grown.rows == n // 2 and whole.rows == 1 + n
    assert whole.source.startswith("overview")
    gpu = next(d for d in whole.devices if d.device == "gpu:0")
    assert len(gpu.t) <= 4 * 1000 + 1 and len(gpu.t) < n / 5
    assert max(gpu.power_w) == 900.0 and min(gpu.power_w) == 1.0
    new = next(d for d in grown.devices if d.device == "gpu:0")
    assert len(new.t) <= 4 * LIVE_BUCKETS and new.t[0] == rows[n // 2].t and new.t[-1] == rows[-1].t
    assert min(new.power_w) == 1.0 and new.energy_j[-1] == n - 1
    assert gpu.energy_j[-1] == n - 1  # the last point (cumulative energy) is kept


def test_the_command_serves_and_stops_on_sigterm(many: Many):
    import os
    import signal
    import subprocess
    import sys

    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenai", "dashboard", "--ledger", str(many.ledger), "--port", "0", "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", first).group(1)
        assert "this machine only" in first
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(url + "api/runs?per_page=1")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["total"] == 120
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
