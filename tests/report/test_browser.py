"""The report in a real headless browser (Debian's chromium, driven by Playwright), the network
blocked: every chart is drawn, nothing is fetched, no script a user wrote runs."""

from __future__ import annotations

import pytest
from tests.browser import browser_page, plotly_charts, unavailable_reason, wait_for_charts
from tests.report.world import World

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def open_report(path, shot):
    with browser_page() as (page, blocked):
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        expected = page.evaluate("document.querySelectorAll('.chart > div').length")
        wait_for_charts(page, expected)
        charts = plotly_charts(page)
        ids = page.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
        headline = page.inner_text("header.top")
        page.screenshot(path=str(shot), full_page=True)
    return charts, blocked, dialogs, errors, headline, expected, ids


@pytest.mark.parametrize("kind", ["run", "compare", "study", "batch", "hostile"])
def test_every_chart_is_drawn_offline(world: World, tmp_path, kind):
    from greenai.reports import report

    args = {
        "run": dict(runs=[world.run_id]),
        "compare": dict(runs=[world.run_id, world.other_id, world.killed_id]),
        "study": dict(study=world.study_id),
        "batch": dict(batch=world.batch_id),
        "hostile": dict(runs=[world.hostile_id]),
    }[kind]
    runs = args.pop("runs", [])
    path = report(*runs, ledger=world.ledger, output=tmp_path / f"{kind}.html", **args)
    charts, blocked, dialogs, errors, headline, expected, ids = open_report(path, tmp_path / f"{kind}.png")
    assert blocked == []  # nothing but the file itself was requested
    assert errors == [] and dialogs == []
    assert len(charts) == expected >= 1
    assert len(ids) == len(set(ids)), "element ids must be unique (plotly draws into the first match)"
    for chart in charts:  # each chart is drawn inside its own container
        assert chart["inside"], chart
    for chart in charts:
        assert chart["svg"] >= 1, chart
        assert chart["data"] >= 1 and chart["traces"] >= 1, chart
    if kind == "run":
        power = next(c for c in charts if c["id"] == "chart-run1-power")
        assert power["data"] >= 3  # one series per device (and the phase legend)
    if kind == "hostile":
        assert "<script>alert(1)</script>" in headline  # shown as text
    assert (tmp_path / f"{kind}.png").stat().st_size > 10_000


def test_the_headline_and_tables_read_with_javascript_off(world: World, tmp_path):
    """With JavaScript off no chart is drawn, and the headline figures and the tables are
    there all the same (plain HTML), with a note that the charts need JavaScript."""
    from greenai.reports import report

    path = report(world.run_id, ledger=world.ledger, output=tmp_path / "run.html")
    with browser_page(javascript=False) as (page, blocked):
        page.goto(path.resolve().as_uri())
        cards = dict(
            zip(
                page.locator(".card .label").all_inner_texts(),
                page.locator(".card .value").all_inner_texts(),
                strict=True,
            )
        )
        tables = page.locator("table").count()
        drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        text = page.inner_text("body")
    assert blocked == [] and drawn == 0
    for label in ("ENERGY (IT)", "DURATION", "CARBON", "COST", "ENERGY PER SAMPLE", "STATUS"):
        assert cards.get(label, "").strip() not in ("", "—"), (label, cards)
    assert cards["ENERGY (IT)"].endswith(" J") and cards["STATUS"] == "completed"
    assert tables >= 5  # devices, phases, seed metrics, forecasts, environment
    assert "JavaScript is off" in text
