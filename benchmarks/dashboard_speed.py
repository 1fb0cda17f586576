"""The dashboard on a big ledger: run list and run page served (server side), run page interactive in a browser.

A ledger of 10,000 runs and one run of 1,000,000 samples (3 devices at 10 Hz, 333,334 rows
each, ~9.3 hours), written once (kept in --ledger, reused when it is there). The dashboard
serves it in this process (uvicorn on a free loopback port, in a thread); requests go
through real HTTP with httpx. Server-side time is the time from request to the last byte,
on loopback. Measured:

- the run list: first page, a deep page (page 150 of 200), a search, a tag filter, a sort
  by energy: median of --repeat requests each;
- the big run's page: the first request (cold: its million rows are read once, then kept)
  and the median of --repeat requests after it (warm);
- the big run's page in Debian's chromium (Playwright, as in the tests): from navigation to
  every chart drawn, cold cache of the browser, warm server (median of --browser-repeat).

    python benchmarks/dashboard_speed.py [--ledger /tmp/greenai-dash-bench.db] [--write]
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import _harness

DEVICES = (("gpu:0", "gpu", 250.0), ("cpu:0", "cpu", 65.0), ("dram:0", "dram", 8.0))


def build(path: Path, runs: int, samples: int) -> str:
    """The benchmark ledger; returns the big run's id."""
    from greenai.ledger.records import DeviceTotal, RunSnapshot, RunStart, RunStatus, SampleRow
    from greenai.ledger.store import Ledger
    from greenai.meters.base import DeviceKind, Provenance

    def snapshot(energy: dict[str, float], duration: float) -> RunSnapshot:
        total = sum(energy.values())
        return RunSnapshot(
            duration_s=duration,
            energy_j=total,
            rel_uncertainty=0.05,
            provenance=Provenance.SIMULATED,
            facility_energy_j=total * 1.2,
            carbon_g=total * 1.2 / 3.6e6 * 56.0,
            cost=0.0,
            currency="EUR",
            devices=tuple(DeviceTotal(d, DeviceKind(k), energy[d], Provenance.SIMULATED, 0.05) for d, k, _ in DEVICES),
        )

    t0 = 1_735_689_600.0  # 2025-01-01 UTC
    with Ledger(path) as store:
        for i in range(runs):
            run_id = uuid.uuid4().hex
            start = t0 + i * 600.0
            energy = {d: w * (60 + i % 500) for d, _, w in DEVICES}
            tags = {"model": ("cnn", "mlp", "bert", "resnet")[i % 4], "seq": str(i)}
            store.begin_run(RunStart(run_id, f"job-{i % 97}-{i}", start, f"node-{i % 8}", 1, tags, {}))
            store.end_run(run_id, RunStatus.COMPLETED, start + 60, snapshot(energy, 60.0 + i % 500))
        big = uuid.uuid4().hex
        start = t0 + runs * 600.0
        store.begin_run(RunStart(big, "big-training", start, "node-0", 1, {"model": "llm"}, {"config": {}}))
        per_device = math.ceil(samples / len(DEVICES))
        energy = {d: 0.0 for d, _, _ in DEVICES}
        batch: list[Any] = []
        for j in range(per_device):
            t = start + (j + 1) * 0.1
            phase = "train" if (j // 3000) % 10 else "eval"
            for d, k, w in DEVICES:
                p = w * (1 + 0.3 * math.sin(j / 900.0)) + (300.0 if d == "gpu:0" and j % 50_000 == 7 else 0.0)
                energy[d] += p * 0.1
                batch.append(SampleRow(t, d, DeviceKind(k), p, energy[d], Provenance.SIMULATED, phase))
            if len(batch) >= 90_000:
                store.flush(big, snapshot(energy, (j + 1) * 0.1), batch)
                batch = []
        store.flush(big, snapshot(energy, per_device * 0.1), batch)
        store.end_run(big, RunStatus.COMPLETED, start + per_device * 0.1, snapshot(energy, per_device * 0.1))
    return big


def big_run(path: Path) -> str:
    from greenai.ledger.store import Ledger

    with Ledger(path, read_only=True) as store:
        return store.list_runs(1, name="big-training")[0].start.run_id


def timed_get(client: Any, url: str) -> float:
    start = time.perf_counter()
    r = client.get(url)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {r.status_code}")
    return elapsed


def browser_interactive(url: str, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation to every chart drawn: a first visit (a fresh browser context:
    plotly.js fetched and compiled) and a second visit in the same context (from its cache)."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's (apt-get install chromium)
    first: list[float] = []
    again: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True)
        try:
            for _ in range(repeat):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                for out in (first, again):
                    start = time.perf_counter()
                    page.goto(url)
                    expected = page.evaluate("document.querySelectorAll('div[data-figure]').length")
                    page.wait_for_function(
                        "n => document.body.dataset.drawn !== undefined && "
                        "document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
                        arg=expected,
                        timeout=60_000,
                    )
                    out.append(time.perf_counter() - start)
                context.close()
        finally:
            browser.close()
    return first, again


def render(result: dict[str, Any], command: str) -> str:
    ms = lambda s: f"{1000 * s:,.0f} ms"  # noqa: E731
    lines = [
        "## Dashboard speed (issue 18)",
        "",
        f"`{command}` on {result['machine']} ({result['date']}; machine load at start: "
        f"{result['load']:.2f} busy cores of {result['cores']}). Ledger: {result['runs']:,} runs and one run of "
        f"{result['samples']:,} samples ({result['ledger_mb']:.0f} MB). Server-side time: request to last byte over "
        "loopback HTTP, the server in the same process. Targets: run list and run page ≤ 300 ms (median), the run "
        "page interactive in a browser ≤ 2 s.",
        "",
        "| what | median | spread (min–max) |",
        "|---|---:|---:|",
    ]
    for name, values in result["server"].items():
        lines.append(f"| {name} | {ms(statistics.median(values))} | {ms(min(values))}–{ms(max(values))} |")
    cold = result["cold_s"]
    lines.append(
        f"| run page of the 1,000,000-sample run, first request (cold: rows read) | {ms(cold)} | one request |"
    )
    for label, b in (
        ("first visit: plotly.js fetched and compiled", result["browser"][0]),
        ("second visit: from the browser's cache", result["browser"][1]),
    ):
        if b:
            lines.append(
                f"| run page in chromium, navigation to every chart drawn, {label} | {ms(statistics.median(b))} | "
                f"{ms(min(b))}–{ms(max(b))} |"
            )
    lines += [
        "",
        "The run list is one filtered count and one LIMIT/OFFSET select by rowid (the default order walks the "
        "`runs_started_at` index), so a deep page costs about what the first does. A run page draws the report's "
        "figures from the run's samples reduced on the server with `reports.downsample.minmax` (~1,000 buckets per "
        "device: a few thousand points); the reduced rows and a finished run's page are kept, so only the first "
        "request for a run reads its rows. That first read is the cost of handing SQLite's rows to Python (numbers "
        f"only: {result['samples']:,} rows in {ms(cold)} here); a running run's later requests read only the rows "
        "flushed since. A finished run's page never changes and is served from memory after its first request.",
        "",
        "In the browser, most of a first visit is plotly.js itself (4.6 MB, served by the app from the installed "
        "plotly package: fetched over loopback, then compiled); a second visit takes it from the browser's cache. "
        "The machine was shared with other jobs during the run (load above): figures on a quiet machine are lower.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--ledger", type=Path, default=Path("/tmp/greenai-dash-bench.db"))
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--browser-repeat", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    _harness.add_write(ap, "dashboard-speed")
    args = ap.parse_args(argv)
    import httpx

    from greenai.dashboard.server import serve_in_thread

    if not args.ledger.exists():
        _harness.log(f"building {args.ledger}: {args.runs:,} runs and a {args.samples:,}-sample run")
        build(args.ledger, args.runs, args.samples)
    big = big_run(args.ledger)
    _harness.wait_for_quiet(120.0)
    before = _harness.cpu_sample()
    time.sleep(1.0)
    load = _harness.cpu_sample().others_cores(before)
    running = serve_in_thread(args.ledger)
    try:
        base = running.url
        with httpx.Client(timeout=120) as client:
            cold = timed_get(client, f"{base}runs/{big}")
            _harness.log(f"cold run page: {cold:.3f} s")
            urls = {
                "run list, first page (50 runs)": base,
                "run list, page 150 of 201": f"{base}?page=150",
                "run list, search `job-42`": f"{base}?q=job-42",
                "run list, tag model=bert, host node-3": f"{base}?tag=model%3Dbert&host=node-3",
                "run list, sorted by energy": f"{base}?sort=energy&order=desc",
                "run page of the 1,000,000-sample run (warm)": f"{base}runs/{big}",
            }
            server: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(args.repeat):
                for name, url in urls.items():
                    server[name].append(timed_get(client, url))
        browser = ([], []) if args.no_browser else browser_interactive(f"{base}runs/{big}", args.browser_repeat)
    finally:
        running.stop()
    import os
    import platform

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "load": load,
        "runs": args.runs,
        "samples": args.samples,
        "ledger_mb": args.ledger.stat().st_size / 1e6,
        "server": server,
        "cold_s": cold,
        "browser": browser,
    }
    section = render(result, _harness.command(__file__, argv))
    print(section)
    if args.write:
        _harness.write_section(args.write, "dashboard-speed", section)


if __name__ == "__main__":
    main()
