"""A tour of the dashboard in a real headless browser (Debian's chromium driven by Playwright,
see tests/browser.py), shared by tests/dashboard/test_browser.py and the screenshots in
docs/img (`python -m tests.dashboard.tour docs/img`: builds a ledger as the tests do, serves
it, and saves dashboard-*.png there).

Every step returns what it saw, so the test can assert on it; a page that raises a script
error, opens a dialog, violates its Content-Security-Policy or asks for anything outside the
dashboard is caught by `Watch`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.browser import plotly_charts, wait_for_charts

# A training loop tracked with simulated meters, writing to the ledger as it goes.
LIVE = textwrap.dedent("""
    import json, sys, time
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter, Sinusoid
    from greenai.tracking.tracker import Tracker

    cfg = Config(ledger=sys.argv[1], intensity="FR", sample_hz=10.0, flush_interval_s=0.5).validate()
    meters = [
        SimulatedMeter("gpu:0", DeviceKind.GPU, Sinusoid(220.0, 60.0, 4.0)),
        SimulatedMeter("cpu:0", DeviceKind.CPU, 55.0),
    ]
    with Tracker("live-training", config=cfg, meters=meters, tags={"model": "resnet"}) as run:
        print(json.dumps({"run_id": run.run_id}), flush=True)
        end = time.time() + float(sys.argv[2])
        while time.time() < end:
            with run.phase("train"):
                time.sleep(0.05)
            run.count("samples", 32)
""")


def start_live_run(ledger: Path, seconds: float) -> tuple[subprocess.Popen[str], str]:
    """A tracked run in another process, `seconds` long; returns the process and the run's id."""
    proc = subprocess.Popen([sys.executable, "-c", LIVE, str(ledger), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, str(json.loads(proc.stdout.readline())["run_id"])


@dataclass
class Watch:
    """What a page did that it should not: dialogs, script errors, CSP reports."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None,
        )


def open_page(page: Any, url: str, timeout_ms: int = 30_000) -> tuple[int, list[dict[str, Any]]]:
    """Open `url`, wait until every chart it carries is drawn; (HTTP status, charts)."""
    response = page.goto(url, wait_until="load")
    expected = page.evaluate("document.querySelectorAll('div[data-figure]').length")
    if expected:
        wait_for_charts(page, expected, timeout_ms)
        page.wait_for_function("() => document.body.dataset.drawn !== undefined", timeout=timeout_ms)
    return (response.status if response is not None else 0), plotly_charts(page)


def power_series(page: Any) -> int:
    """How many device series the power chart holds (the legend's phase swatches aside)."""
    count: int = page.evaluate(
        "() => (document.getElementById('run1-power').data || []).filter(t => t.stackgroup === 'power').length"
    )
    return count


def power_points(page: Any) -> int:
    points: int = page.evaluate(
        "() => (document.getElementById('run1-power').data || [])"
        ".filter(t => t.stackgroup === 'power').reduce((n, t) => n + (t.x ? t.x.length : 0), 0)"
    )
    return points


def shot(page: Any, out: Path, name: str, full_page: bool = True) -> Path:
    path = out / f"dashboard-{name}.png"
    page.wait_for_timeout(300)  # plotly's transitions
    page.screenshot(path=str(path), full_page=full_page)
    return path


def tour(page: Any, base: str, run_id: str, other_id: str, study_id: str, batch_id: str, out: Path) -> dict[str, Any]:
    """The run list, a search, a run, a comparison, a study and a batch; screenshots in `out`."""
    seen: dict[str, Any] = {}
    status, _ = open_page(page, base)
    seen["list_status"] = status
    seen["list_rows"] = page.locator("#runs tbody tr").count()
    shot(page, out, "runs", full_page=False)
    page.fill("input[name=q]", "train-cnn-small")
    page.click("#search")
    page.wait_for_load_state("load")
    seen["search_rows"] = page.locator("#runs tbody tr").count()
    seen["search_names"] = page.locator("#runs td.name a").all_inner_texts()
    page.click("#runs td.name a")  # open the run found
    page.wait_for_load_state("load")
    status, charts = open_page(page, page.url)
    seen["run_url"] = page.url
    seen["run_charts"] = charts
    seen["run_series"] = power_series(page)
    shot(page, out, "run")
    status, charts = open_page(page, f"{base}compare?run={run_id}&run={other_id}")
    seen["compare"] = (status, charts)
    shot(page, out, "compare")
    status, charts = open_page(page, f"{base}studies/{study_id}")
    seen["study"] = (status, charts)
    shot(page, out, "study")
    status, charts = open_page(page, f"{base}batches/{batch_id}")
    seen["batch"] = (status, charts)
    shot(page, out, "batch")
    return seen


def watch_live(page: Any, base: str, ledger: Path, run_id: str, out: Path, rounds: int = 3) -> dict[str, Any]:
    """Open a running run's page and time how long each batch of flushed samples takes to
    appear on it (no reload)."""
    from greenai.ledger.store import Ledger

    seen: dict[str, Any] = {"latencies_s": [], "polls": []}
    open_page(page, f"{base}runs/{run_id}")
    page.wait_for_selector("#live")
    seen["points_before"] = power_points(page)
    seen["url_before"] = page.url
    with Ledger(ledger, read_only=True) as store:
        for _ in range(rounds):
            rows = store.transaction(
                lambda conn: conn.execute("SELECT count(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0],
                write=False,
            )
            flushed = time.monotonic()
            polls = int(page.evaluate("Number(document.getElementById('live').dataset.updates || 0)"))
            page.wait_for_function(
                "n => Number(document.getElementById('live').dataset.samplesNow || 0) >= n", arg=rows, timeout=10_000
            )
            seen["latencies_s"].append(time.monotonic() - flushed)
            # polls applied until the rows were on the page: one may have been under way at the flush
            seen["polls"].append(int(page.evaluate("Number(document.getElementById('live').dataset.updates)")) - polls)
            page.wait_for_timeout(500)
    seen["points_after"] = power_points(page)
    seen["series"] = power_series(page)
    seen["url_after"] = page.url
    seen["navigations"] = page.evaluate("performance.getEntriesByType('navigation').length")
    seen["state"] = page.inner_text("#live-state")
    shot(page, out, "live", full_page=False)
    return seen


def main(out: Path) -> None:
    """Screenshots for docs/img: a ledger made as the tests make theirs, served on a free port."""
    import tempfile

    from tests.browser import browser_page
    from tests.report import world as w

    from greenai.dashboard.server import serve_in_thread

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.db"
        run_id = w.train(ledger, "train-cnn", gpu_w=250.0, steps=60)
        other_id = w.train(ledger, "train-cnn-small", gpu_w=120.0, steps=60)
        w.train(ledger, "eval-cnn", gpu_w=90.0, steps=20, tags={"model": "cnn", "split": "test"})
        study_id, batch_id = w.study(ledger, run_id), w.batch(ledger)
        server = serve_in_thread(ledger)
        proc = None
        try:
            with browser_page(allow_origin=server.url, viewport=(1360, 900)) as (page, blocked):
                tour(page, server.url, run_id, other_id, study_id, batch_id, out)
                # the live run starts after the tour, which takes longer than the run on a busy machine
                proc, live_id = start_live_run(ledger, 25.0)
                time.sleep(8)
                watch_live(page, server.url, ledger, live_id, out, rounds=2)
                assert not blocked, blocked
        finally:
            server.stop()
            if proc is not None:
                proc.wait(60)
    print("\n".join(str(p) for p in sorted(out.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
