"""Memory of a tracked process over a long run, in every mode: RSS stays flat.

Each mode runs in a fresh worker process: a tracker sampling 4 simulated devices at 1000 Hz
(100x the default rate, so a minute here is as many ticks as 100 minutes at 10 Hz) while the
main thread and a loader thread enter phases and count steps about 500 times a second each.
The worker reads its RSS every `--every` seconds and reports the growth after a warm-up, as
MB per minute (least squares) and as the change from the first to the last reading.

Modes:
- store: the ledger written every second (the default);
- no-store: `store=False` (the Ray executor's shipping mode, calibration): before the fix,
  every tick's sample rows were kept for a ledger that never came (+17 MB/min at 1000 Hz);
- locked: the ledger locked by another connection for the whole run, so every flush fails
  and the rows wait in memory (thinned beyond MAX_PENDING_ROWS).

`--compare-src DIR` runs the no-store mode once more with greenai imported from DIR (e.g. a
`git worktree` of an older commit, or `git archive 30faa8a src | tar -x -C /tmp/greenai-30faa8a`
and DIR /tmp/greenai-30faa8a/src), for a before/after figure.

Each mode starts once the machine is quiet (`--quiet-wait` seconds at most) and records its
co-load: the CPUs other processes kept busy during its run (/proc/stat minus the worker's own).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _harness

MODES = ("store", "no-store", "locked")
SAMPLE_HZ = 1000.0
DEVICES = ("gpu:0=250", "gpu:1=250", "cpu:0=65", "dram:0=8")


def worker(mode: str, seconds: float, every_s: float, ledger: str) -> None:
    import sqlite3

    import psutil

    from greenai.config import Config
    from greenai.meters.simulated import make_simulated_meters
    from greenai.tracking.tracker import Tracker

    me = psutil.Process()
    cfg = Config(ledger=ledger, intensity="100", sample_hz=SAMPLE_HZ).validate()
    meters = make_simulated_meters(",".join(DEVICES))
    stop = threading.Event()
    lock = None
    tracker = Tracker(f"memory-{mode}", config=cfg, meters=meters, store=mode != "no-store", handle_signals=False)
    with tracker as run:
        load0 = _harness.cpu_sample()
        if mode == "locked":
            lock = sqlite3.connect(ledger, isolation_level=None, check_same_thread=False)
            lock.execute("BEGIN IMMEDIATE")

        def loader() -> None:
            while not stop.is_set():
                with run.phase("load"):
                    time.sleep(0.002)
                run.count("batches")

        thread = threading.Thread(target=loader, daemon=True)
        thread.start()
        rss: list[tuple[float, float]] = []
        t0 = time.monotonic()
        next_read = t0
        while (now := time.monotonic()) < t0 + seconds:
            with run.phase("train_step"):
                with run.phase("forward"):
                    time.sleep(0.001)
            run.count("steps")
            if now >= next_read:
                rss.append((now - t0, me.memory_info().rss / 2**20))
                next_read += every_s
        stop.set()
        thread.join()
        end = _harness.cpu_sample()
        rss.append((time.monotonic() - t0, me.memory_info().rss / 2**20))
        sampler: Any = run._sampler  # deliberately reaching in, for the figure
        count = getattr(sampler, "pending_rows", None)  # older trackers (--compare-src) lack it
        pending = count() if count else len(sampler._unflushed) + len(sampler._acc.pending_samples)
    if lock is not None:
        lock.rollback()
        lock.close()
    result = tracker.result
    assert result is not None
    _harness.emit(
        {
            "mode": mode,
            "rss": rss,
            "pending_rows": pending,
            "steps": result.snapshot.counters.get("steps", 0.0),
            "energy_j": result.energy_j,
            "duration_s": result.duration_s,
            "stored": getattr(result, "stored", None),
            "coload_cores": end.others_cores(load0),
            "own_cores": end.own_cores(load0),
        }
    )


def growth(rss: list[tuple[float, float]], warmup_s: float) -> tuple[float, float, float, float]:
    """(first MB after warm-up, last MB, change in MB, least-squares slope in MB/min)."""
    points = [(t, mb) for t, mb in rss if t >= warmup_s] or rss
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in points) / var if var > 0 else 0.0
    return points[0][1], points[-1][1], points[-1][1] - points[0][1], slope * 60


def main() -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=45.0, help="length of each mode's run (default 45)")
    ap.add_argument("--every", type=float, default=2.5, help="seconds between RSS readings (default 2.5)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds left out of the growth (default 5)")
    ap.add_argument("--modes", type=_harness.names, default=list(MODES), help="comma-separated: " + ",".join(MODES))
    ap.add_argument("--compare-src", type=Path, help="also run no-store with greenai from this src/ directory")
    ap.add_argument("--compare-name", help="how the report names --compare-src (e.g. its commit; default its path)")
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for a quiet machine (default 60)")
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "LEDGER"), help=argparse.SUPPRESS)
    _harness.add_write(ap, "memory")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.seconds, args.every, args.worker[1])
        return
    import tempfile

    runs = [(mode, None) for mode in args.modes]
    if args.compare_src:
        runs.append(("no-store", args.compare_src))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="greenai-memory-") as scratch:
        for mode, src in runs:
            label = mode if src is None else f"{mode}, before the fix ({args.compare_name or src})"
            _harness.log(f"{label}: {args.seconds:g} s at {SAMPLE_HZ:g} Hz")
            env = dict(os.environ)
            if src is not None:
                src = with_coload_reader(src, Path(scratch) / "before-src")
                env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            ledger = str(Path(scratch) / f"{mode}-{len(rows)}.db")
            _harness.wait_for_quiet(args.quiet_wait)
            out = _harness.run_worker(
                __file__,
                ["--worker", mode, ledger, "--seconds", str(args.seconds), "--every", str(args.every)],
                env=env,
                timeout=args.seconds * 3 + 60,
            )
            first, last, change, slope = growth([tuple(p) for p in out["rss"]], args.warmup)
            rows.append((label, first, last, change, slope, out))
            _harness.log(
                f"  RSS {first:.1f} -> {last:.1f} MB ({change:+.2f} MB, {slope:+.2f} MB/min); "
                f"co-load {out['coload_cores']:.2f} CPUs"
            )
    text = report(rows, args)
    print(text)
    if args.write:
        _harness.write_section(args.write, "memory", text)


Row = tuple[str, float, float, float, float, dict]


def with_coload_reader(src: Path, scratch: Path) -> Path:
    """`src`, or a copy of it in `scratch` given today's co-load reader when it has none (a tree
    older than greenai/hardware/coload.py): the harness, imported by the worker, reads co-load
    with it (stdlib only); the older tracker never imports it."""
    import shutil

    import greenai.hardware.coload

    if (src / "greenai" / "hardware" / "coload.py").exists():
        return src
    shutil.copytree(src, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(greenai.hardware.coload.__file__, scratch / "greenai" / "hardware" / "coload.py")
    return scratch


def report(rows: list[Row], args: argparse.Namespace) -> str:
    ticks = args.seconds * SAMPLE_HZ
    lines = [
        "## Memory over a long run",
        "",
        f"`{_harness.command(__file__, None)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs): a tracker sampling {len(DEVICES)} simulated devices "
        f"at {SAMPLE_HZ:g} Hz for {args.seconds:g} s ({ticks:,.0f} ticks: as many as {ticks / 10 / 60:,.0f} minutes "
        "at the default 10 Hz), the main thread and a loader thread entering phases and counting steps "
        "about 500 times a second each; RSS read every "
        f"{args.every:g} s, growth measured after the first {args.warmup:g} s.",
        "",
        "| mode | RSS after warm-up | RSS at the end | change | slope | rows waiting at the end | co-load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, first, last, change, slope, out in rows:
        lines.append(
            f"| {label} | {first:.1f} MB | {last:.1f} MB | {change:+.2f} MB | {slope:+.2f} MB/min | "
            f"{out['pending_rows']:,} | {out['coload_cores']:.2f} CPUs |"
        )
    by_label = {label: (slope, out) for label, _, _, _, slope, out in rows}
    locked = by_label.get("locked")
    before = [(slope, label) for label, _, _, _, slope, _ in rows if "before the fix" in label]
    lines += [
        "",
        "`store`: the ledger written every second; `no-store`: `store=False`, no sample rows kept at all (before "
        "the fix every tick's rows were kept: +17 MB/min at 1000 Hz in the fault audit); `locked`: the ledger locked "
        "by another connection for the whole run, every flush failing after its 1 s bound and its rows kept for the "
        "next (each failed flush holds the sampler for that second, so the sampler ticks about once a second and the "
        "rows pile up slowly"
        + (f": {locked[1]['pending_rows']:,} after {args.seconds:g} s" if locked else "")
        + "; beyond 10,000 they are thinned). The rows waiting at the end of `store` are the last second's. "
        "Phase boundaries waiting for the sampler are capped at 100,000. RSS slopes of the current tracker: "
        + ", ".join(f"{label} {slope:+.2f}" for label, (slope, _) in by_label.items() if "before" not in label)
        + " MB/min"
        + "".join(f"; before the fix `store=False` grew by {slope:+.1f} MB/min here" for slope, _ in before)
        + ". Co-load: the CPUs other processes kept busy during the mode's run (/proc/stat minus the worker's own "
        f"CPU time, steal included), each mode started after waiting (at most {args.quiet_wait:g} s) for a quiet machine. "
        + _harness.machine_words(max(out["coload_cores"] for *_, out in rows)),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
