"""Tracking overhead: how much slower a CPU training loop runs under greenai (and CodeCarbon).

    python benchmarks/overhead.py                    # full run (7 interleaved trials, ~8.5 min on 2 idle cores)
    python benchmarks/overhead.py --quick            # smoke run (short trials)
    python benchmarks/overhead.py --write docs/benchmarks.md

What it measures (DESIGN.md principle 3, "the overhead is benchmarked, not assumed"):

1. Throughput of one training loop (a small CNN on synthetic in-memory data, PyTorch, CPU)
   in three variants that differ only in tracking:
     baseline    no tracker; phases are `contextlib.nullcontext()`, counters a no-op
     greenai     `greenai.track(..., sample_hz=10)` with phases and counters, ledger in a
                 temp dir (the path users get)
     codecarbon  `codecarbon.OfflineEmissionsTracker` around the loop, its default interval
   Trials are interleaved (the variants' order rotates each trial) and every variant runs in
   a fresh process. Throughput is timed over the loop only; tracker start and stop are
   reported apart. Overhead = 1 - median over trials of (variant / baseline of the same
   trial), the pairwise ratio being robust to slow drift of the machine. Each run also
   records its throughput per ~1 s window with the CPU other processes used meanwhile, so a
   shared machine's bursts can be left out ("quiet windows").
2. greenai on and off in alternating ~2 s blocks inside ONE process (ABBA), which takes
   each process's own speed out of the ratio; reported with a confidence interval.
3. The cost of a phase boundary (`with run.phase("x"): pass`) with the sampler running.
4. Where the sampler's time goes: each meter's `read()`, the accumulator's tick, a ledger
   flush, the sampler thread's CPU time during training and while the program idles.

The script is the driver: each measurement runs in a fresh process of
benchmarks/_overhead_worker.py, and benchmarks/_overhead_report.py renders the report.
Targets: overhead <= 0.5 % at 10 Hz; one phase boundary (enter + exit) <= 50 us.
The report is Markdown on stdout; `--write [FILE]` replaces the section between
`<!-- overhead:start -->` and `<!-- overhead:end -->` in FILE (default docs/benchmarks.md;
created if absent); `--json FILE` keeps the raw measurements and `--render FILE` re-renders them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    add_write,
    command,
    log,
    package_version,
    parser,
    rotated,
    run_worker,
    wait_for_quiet,
    write_section,
)
from _overhead_report import render
from _overhead_worker import VARIANTS

WORKER = Path(__file__).resolve().parent / "_overhead_worker.py"
QUIET_BEFORE_RUN = 0.25  # cores other processes may keep busy when a run starts


def _worker_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    return env


def run(args: list[str], threads: int, timeout_s: float) -> dict[str, Any]:
    """Run one measurement in a fresh worker process, in a fresh temp dir (so no greenai.toml
    or .codecarbon.config of the caller applies)."""
    with tempfile.TemporaryDirectory(prefix="greenai-bench-") as tmp:
        return run_worker(
            WORKER,
            [*args, "--workdir", tmp, "--threads", str(threads)],
            env=_worker_env(threads),
            cwd=tmp,
            timeout=timeout_s,
        )


def machine() -> dict[str, str]:
    import torch

    from greenai.hardware.cpu import read_cpu_info

    try:
        cpu = read_cpu_info().model_name
    except OSError:
        cpu = platform.processor() or "unknown CPU"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "greenai": package_version("greenai") or "?",
        "codecarbon": package_version("codecarbon") or "not installed",
    }


def drive(args: argparse.Namespace) -> dict[str, Any]:
    variants = [v for v in args.variants.split(",") if v]
    notes: list[str] = []
    if "codecarbon" in variants and package_version("codecarbon") is None:
        variants.remove("codecarbon")
        notes.append(
            "CodeCarbon is not installed, so its variant was skipped "
            "(`make bench` installs it through the `bench` extra)."
        )
        log("codecarbon not installed: skipping its variant")
    if variants[0] != "baseline":
        raise SystemExit("the first variant must be baseline")
    timeout = max(120.0, args.seconds * 6)
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait, QUIET_BEFORE_RUN)
    cal = run(["calibrate", "--seconds", str(args.calibrate_seconds)], args.threads, timeout)
    steps = max(20, round(cal["steps_per_s"] * args.seconds))
    log(
        f"calibrated: {cal['steps_per_s']:.1f} steps/s untracked ({cal['how']}) -> {steps} steps "
        f"per trial (~{args.seconds:g} s)"
    )
    trials: list[dict[str, dict[str, Any]]] = []
    orders: list[str] = []
    waited_total = 0.0
    for trial in range(args.trials):
        order = rotated(variants, trial)
        results: dict[str, dict[str, Any]] = {}
        for variant in order:
            if args.quiet_wait > 0 and waited_total < args.quiet_budget:
                waited = wait_for_quiet(min(args.quiet_wait, args.quiet_budget - waited_total), QUIET_BEFORE_RUN)
                waited_total += waited
                if waited > 1.5:
                    log(f"  waited {waited:.0f} s for the machine to quieten")
            results[variant] = run([variant, "--steps", str(steps)], args.threads, timeout)
        trials.append(results)
        orders.append("".join(v[0].upper() for v in order))
        log(
            f"trial {trial + 1}/{args.trials} ({orders[-1]}): "
            + ", ".join(
                f"{v} {results[v]['steps_per_s']:.2f} (others {results[v]['foreign_cores']:.2f})" for v in variants
            )
        )
    log(f"phase-boundary microbenchmark ({args.phase_iterations} x {args.phase_repeats})")
    phase = run(
        ["phase", "--iterations", str(args.phase_iterations), "--repeats", str(args.phase_repeats)],
        args.threads,
        600,
    )
    paired = None
    if "greenai" in variants and args.pairs > 0:
        log(f"in-process paired blocks ({args.pairs} pairs)")
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait, QUIET_BEFORE_RUN)
        paired = run(
            ["paired", "--repeats", str(args.pairs), "--seconds", str(args.block_seconds)],
            args.threads,
            900,
        )
    costs = None
    if not args.no_costs:
        log("sampler costs")
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait, QUIET_BEFORE_RUN)
        costs = run(["costs"], args.threads, 300)
    return {
        "calibration": cal,
        "steps": steps,
        "variants": variants,
        "trials": trials,
        "orders": orders,
        "quiet_waited_s": waited_total,
        "phase": phase,
        "costs": costs,
        "paired": paired,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, paragraph=True)
    p.add_argument("--trials", type=int, default=None, help="interleaved trials (default 7; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="short smoke run: 2 short trials")
    p.add_argument("--seconds", type=float, default=None, help="target seconds per trial (default 8; 1.5 with --quick)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, baseline first")
    add_write(p, "overhead")
    p.add_argument("--json", type=Path, metavar="FILE", help="also save the raw measurements")
    p.add_argument(
        "--render", type=Path, metavar="FILE", help="measure nothing: re-render the report of a run saved with --json"
    )
    p.add_argument("--no-costs", action="store_true", help="skip the sampler cost breakdown")
    p.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="greenai on/off block pairs in one process (default 16; 4 with --quick; 0: skip)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        metavar="S",
        help="before each run wait up to S s for other processes to go idle (0: never)",
    )
    p.add_argument(
        "--quiet-budget", type=float, default=60.0, metavar="S", help="at most S s of such waiting in all (default 60)"
    )
    args = p.parse_args(argv)

    if args.render:
        saved = json.loads(args.render.read_text())
        info, cmd, date = saved.pop("machine"), saved.pop("command"), saved.pop("date")
        section = render(saved, info, cmd, date)
        print(section)
        if args.write:
            write_section(args.write, "overhead", section)
            log(f"updated {args.write} from {args.render}")
        return 0

    args.trials = args.trials or (2 if args.quick else 7)
    args.seconds = args.seconds or (1.5 if args.quick else 8.0)
    args.calibrate_seconds = 3.0 if args.quick else 5.0
    args.phase_iterations = 20_000 if args.quick else 200_000
    args.phase_repeats = 3 if args.quick else 7
    args.pairs = args.pairs if args.pairs is not None else (4 if args.quick else 16)
    args.block_seconds = 1.0 if args.quick else 2.0
    if args.write and args.quick:
        log("note: writing a --quick run's figures")
    cmd = command(__file__, argv)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    data = drive(args)
    data["threads"] = args.threads
    info = machine()
    log(f"done in {time.perf_counter() - t0:.0f} s")
    section = render(data, info, cmd, date)
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"date": date, "machine": info, "command": cmd, **data}, indent=1))
    if args.write:
        write_section(args.write, "overhead", section)
        log(f"updated {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
