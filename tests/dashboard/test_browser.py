"""The dashboard in a real headless browser (Debian's chromium driven by Playwright, nothing
downloaded; see tests/browser.py) against the real server (uvicorn on a free loopback port,
in a thread): the run list, a search, a run whose power chart has one series per device, a
live run gaining samples without a reload, a comparison, a study and a batch; a run named
<script>alert(1)</script> shown as text with no dialog; a missing run's 404; a non-loopback
bind without a token refused. Screenshots go to the test's temporary directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.browser import browser_page, unavailable_reason
from tests.dashboard.tour import Watch, open_page, start_live_run, tour, watch_live
from tests.report.world import HOSTILE, World

pytest.importorskip("fastapi")
REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[str]:
    from greenai.dashboard.server import serve_in_thread

    running = serve_in_thread(world.ledger)
    try:
        yield running.url
    finally:
        running.stop()


def test_list_search_run_compare_study_and_batch(world: World, server: str, tmp_path):
    watch = Watch()
    with browser_page(allow_origin=server) as (page, blocked):
        watch.attach(page)
        seen = tour(page, server, world.run_id, world.other_id, world.study_id, world.batch_id, tmp_path)
    assert blocked == []  # nothing but the dashboard itself was asked for: no CDN
    assert watch.dialogs == [] and watch.errors == []  # no script error, no CSP violation
    assert seen["list_status"] == 200 and seen["list_rows"] >= 6
    assert seen["search_names"] == ["train-cnn-small"] and seen["search_rows"] == 1
    assert seen["run_url"].endswith(f"/runs/{world.other_id}")
    assert seen["run_series"] == 3  # gpu:0, cpu:0 and dram:0
    charts = {c["id"]: c for c in seen["run_charts"]}
    assert {"run1-power", "run1-energy", "run1-devices", "run1-phases"} <= set(charts)
    assert all(c["svg"] >= 1 and c["traces"] >= 1 for c in charts.values()), charts
    assert charts["run1-power"]["traces"] >= 3  # drawn, not only in the data
    for kind in ("compare", "study", "batch"):
        status, drawn = seen[kind]
        assert status == 200 and drawn and all(c["svg"] >= 1 and c["traces"] >= 1 for c in drawn), (kind, drawn)
    assert {c["id"] for c in seen["compare"][1]} == {"cmp-power", "cmp-devices", "cmp-phases"}
    for name in ("runs", "run", "compare", "study", "batch"):
        assert (tmp_path / f"dashboard-{name}.png").stat().st_size > 10_000, name


def test_a_live_run_gains_samples_without_a_reload(world: World, server: str, tmp_path):
    proc, run_id = start_live_run(world.ledger, seconds=14.0)
    watch = Watch()
    try:
        with browser_page(allow_origin=server) as (page, blocked):
            watch.attach(page)
            page.wait_for_timeout(1500)  # a first flush or two
            seen = watch_live(page, server, world.ledger, run_id, tmp_path, rounds=3)
            proc.wait(timeout=60)
            page.wait_for_function(
                "() => document.getElementById('live-state').textContent.includes('completed')", timeout=15_000
            )
    finally:
        if proc.poll() is None:
            proc.kill()
    assert blocked == [] and watch.errors == [] and watch.dialogs == []
    assert seen["points_after"] > seen["points_before"]
    assert seen["series"] == 2  # gpu:0 and cpu:0
    assert seen["url_after"] == seen["url_before"] and seen["navigations"] == 1  # never reloaded
    # samples flushed to the ledger are on the page within about two seconds (poll 1 s, flush 0.5 s):
    # brought by the first poll that starts after the flush (one may be under way when it comes),
    # however slowly a loaded machine serves them (wall times only said: seen["latencies_s"])
    assert max(seen["polls"]) <= 2, seen
    assert (tmp_path / "dashboard-live.png").stat().st_size > 10_000


def test_a_hostile_name_is_text_and_a_missing_run_is_404(world: World, server: str, tmp_path):
    watch = Watch()
    with browser_page(allow_origin=server) as (page, blocked):
        watch.attach(page)
        status, charts = open_page(page, f"{server}runs/{world.hostile_id}")
        heading = page.inner_text("h1")
        tags = page.inner_text(".tags")
        page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
        open_page(page, f"{server}?q=script")
        listed = page.locator("#runs td.name a").all_inner_texts()
        errors = list(watch.errors)  # the 404 below is logged by the browser as a failed load
        response = page.goto(f"{server}runs/0000000000000000dead")
        missing = page.inner_text("#error-message")
    assert watch.dialogs == []  # alert(1) never ran
    assert errors == [] and blocked == []
    assert status == 200 and charts and HOSTILE in heading and "model=<b>x</b>" in tags
    assert listed == [HOSTILE]
    assert response is not None and response.status == 404 and "no run matches" in missing


def test_a_non_loopback_bind_needs_a_token_and_then_asks_every_request_for_it(world: World):
    import httpx

    from greenai.dashboard.server import serve_in_thread
    from greenai.errors import GreenAIError

    with pytest.raises(GreenAIError, match="without a token"):
        serve_in_thread(world.ledger, host="0.0.0.0")
    token = "a-long-enough-token-4242"
    running = serve_in_thread(world.ledger, host="0.0.0.0", token=token)
    try:
        assert httpx.get(running.url).status_code == 401
        ok = httpx.get(running.url, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "train-cnn" in ok.text
    finally:
        running.stop()
