"""What `greenai monitor` costs: the time of a scrape and the exporter's own CPU at 1 Hz.

Targets (issue 18): a scrape <= 50 ms (median), the exporter's CPU <= 1 % of a core at 1 Hz
sampling. For each mode, `greenai monitor --port 0 --interval 1` runs in its own process on
this machine's meters (`--simulate`: simulated ones); after `--warmup` seconds its CPU time
(utime + stime of /proc/<pid>/stat: every thread of the process, the HTTP server's included)
is read at the start and the end of a `--window` of at least 60 s in which Prometheus's
default cadence is played: one scrape every 15 s. Then `--scrapes` scrapes are timed back to
back, client side (connect, request, whole body read): the median with its 95 % confidence
interval, the 90th and 99th percentiles and the slowest.

Modes: `plain` (the meters only; the ledger is read for runs in progress and holds none);
`ledger` (`--ledger`: the machine recorded as a run, flushed every second, and one other run
in progress, tracked in this process, read back each second).

The machine's co-load during each window is measured (other processes' busy CPUs, steal
included, the exporter's and this process's own CPU left out): on a shared machine it says
how far the window's CPU figure can be trusted.

    python benchmarks/monitor_overhead.py [--window 60] [--scrapes 500] [--modes plain,ledger] [--simulate] [--write]
"""

from __future__ import annotations

import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import _harness

KEY = "monitor-overhead"
MODES = ("plain", "ledger")
SCRAPE_EVERY_S = 15.0  # Prometheus's default scrape_interval
TARGET_SCRAPE_S = 0.050
TARGET_CORES = 0.01
URL = re.compile(r"serving (http://\S+/metrics) .*; meters: (.*)$")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid`, all its threads (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / _harness.CLK_TCK  # utime, stime (fields 14, 15)


def scrape_s(url: str) -> tuple[float, int]:
    """Wall time of one scrape (connect, request, whole body) and the body's size."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - start, len(body)


def start_monitor(mode: str, ledger: Path, simulate: bool) -> tuple[subprocess.Popen[str], str, str]:
    """The exporter's process, its URL and the meters it reads (as its first line says)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env["GREENAI_LEDGER"] = str(ledger)
    args = [sys.executable, "-m", "greenai", "monitor", "--port", "0", "--interval", "1"]
    args += ["--ledger"] if mode == "ledger" else []
    args += ["--simulate"] if simulate else []
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    found = URL.search(proc.stdout.readline().rstrip("\n"))
    if not found:
        proc.kill()
        raise RuntimeError(f"greenai monitor did not start: {proc.communicate()[1][-2000:]}")
    return proc, found.group(1), found.group(2)


def measure(mode: str, args: Any) -> dict[str, Any]:
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    with tempfile.TemporaryDirectory(prefix="greenai-monitor-bench-") as tmp:
        ledger = Path(tmp) / "ledger.db"
        other = None
        if mode == "ledger":  # one more run in progress for the exporter to read
            config = Config(ledger=ledger).validate()
            other = Tracker("train", config=config, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 250.0)]).start()
        proc, url, meters = start_monitor(mode, ledger, args.simulate)
        try:
            time.sleep(args.warmup)
            body_bytes = scrape_s(url)[1]
            _harness.log(f"{mode}: {args.window:g} s window, a scrape every {SCRAPE_EVERY_S:g} s")
            machine0, cpu0, wall0 = _harness.cpu_sample(), process_cpu_s(proc.pid), time.perf_counter()
            window_scrapes = []
            next_scrape = wall0
            while True:
                now = time.perf_counter()
                if now - wall0 >= args.window:
                    break
                if now >= next_scrape:
                    window_scrapes.append(scrape_s(url)[0])
                    next_scrape += SCRAPE_EVERY_S
                time.sleep(max(0.0, min(next_scrape, wall0 + args.window) - time.perf_counter()))
            machine1, cpu1, wall1 = _harness.cpu_sample(), process_cpu_s(proc.pid), time.perf_counter()
            exporter_cores = (cpu1 - cpu0) / (wall1 - wall0)
            co_load = max(0.0, machine1.others_cores(machine0) - exporter_cores)
            _harness.log(f"{mode}: exporter {exporter_cores * 100:.3f} % of a core; co-load {co_load:.2f} cores")
            times = [scrape_s(url)[0] for _ in range(args.scrapes)]
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            if other is not None:
                other.stop()
        if proc.returncode != 0:
            raise RuntimeError(f"greenai monitor exited {proc.returncode}: {err[-2000:]}")
    low, high, confidence = _harness.median_ci(times)
    return {
        "window_s": wall1 - wall0,
        "exporter_cores": exporter_cores,
        "co_load_cores": co_load,
        "steal_cores": machine1.steal_cores(machine0),
        "window_scrapes": len(window_scrapes),
        "scrapes": len(times),
        "median_s": statistics.median(times),
        "ci": (low, high, confidence),
        "p90_s": _harness.quantile(times, 0.9),
        "p99_s": _harness.quantile(times, 0.99),
        "max_s": max(times),
        "body_bytes": body_bytes,
        "meters": meters,
    }


def render(results: dict[str, dict[str, Any]], args: Any, command: str) -> str:
    meters = "; ".join(sorted({r["meters"] for r in results.values()}))
    lines = [
        "## Prometheus exporter (issue 18)",
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"prometheus-client {_harness.package_version('prometheus-client')}; meters: {meters}).",
        "",
        f"`greenai monitor --interval 1` in its own process. Its CPU: utime + stime from /proc/<pid>/stat over a "
        f"{args.window:g} s window, after {args.warmup:g} s of warm-up, with a scrape every {SCRAPE_EVERY_S:g} s "
        f"(Prometheus's default). A scrape: {args.scrapes} back to back, timed by the client (connect, request, whole "
        "body). `plain`: the meters only; `ledger`: `--ledger` (the machine recorded as a run, flushed every second) "
        "with one other run in progress read back from the ledger every second. Co-load: CPUs other processes kept "
        "busy during the window (steal included), the exporter and the benchmark left out.",
        "",
        "| mode | exporter CPU (% of a core) | target | co-load (cores) | scrape median (95 % CI) | p90 | p99 | max | target | body |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, r in results.items():
        low, high, _ = r["ci"]
        cpu_ok = "met" if r["exporter_cores"] <= TARGET_CORES else "**not met**"
        scrape_ok = "met" if r["median_s"] <= TARGET_SCRAPE_S else "**not met**"
        lines.append(
            f"| {mode} | {r['exporter_cores'] * 100:.3f} | ≤ 1 %: {cpu_ok} | {r['co_load_cores']:.2f} | "
            f"{r['median_s'] * 1000:.2f} ms ({low * 1000:.2f}–{high * 1000:.2f}) | {r['p90_s'] * 1000:.2f} ms | "
            f"{r['p99_s'] * 1000:.2f} ms | {r['max_s'] * 1000:.1f} ms | ≤ 50 ms: {scrape_ok} | "
            f"{r['body_bytes'] / 1000:.1f} kB |"
        )
    busiest = max(r["co_load_cores"] for r in results.values())
    cores = os.cpu_count() or 1
    if busiest >= _harness.QUIET_CORES:
        lines += [
            "",
            f"The machine was busy: other processes kept up to {busiest:.2f} of its {cores} CPUs busy during a "
            "window. The exporter's CPU time is its own (read from its /proc/<pid>/stat), so co-load does not add to "
            "it, but contention delays its wake-ups and scrapes and costs it cache misses: on a quiet machine both "
            "figures are likely lower.",
        ]
    else:
        lines += ["", f"The machine was quiet: other processes kept under {_harness.QUIET_CORES} CPUs busy."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--window", type=float, default=60.0, help="seconds of the CPU window (at least 60)")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--scrapes", type=int, default=500)
    ap.add_argument("--modes", type=_harness.names, default=list(MODES))
    ap.add_argument("--simulate", action="store_true", help="simulated meters instead of this machine's")
    _harness.add_write(ap, KEY)
    args = ap.parse_args(argv)
    if args.window < 60:
        ap.error("--window must be at least 60 s (the CPU figure would be a handful of clock ticks)")
    unknown = set(args.modes) - set(MODES)
    if unknown:
        ap.error(f"unknown mode(s) {sorted(unknown)}; modes: {', '.join(MODES)}")
    _harness.wait_for_quiet(60.0)
    results = {mode: measure(mode, args) for mode in args.modes}
    section = render(results, args, _harness.command(__file__, argv))
    print(section)
    if args.write:
        _harness.write_section(args.write, KEY, section)


if __name__ == "__main__":
    sys.exit(main())
