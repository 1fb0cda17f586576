"""What joining a job costs a 2-rank torchrun job: start() and stop() of each rank's tracker,
distributed (one job, rank 0 adds it up) against alone (distributed=False), interleaved.

    python benchmarks/distributed_aggregation.py            # 12 rounds (~1 min on 2 cores)
    python benchmarks/distributed_aggregation.py --rounds 3 # smoke run
    python benchmarks/distributed_aggregation.py --write    # update docs/benchmarks.md

One torchrun launch (2 ranks, gloo on CPU, one ledger file for both, as ranks of one host
have). Each round runs both variants, in rotated order: every rank starts a tracker, spins
the CPU for `--work-s`, meets the other at a barrier, and stops its tracker; the wall time of
start() and of stop() is taken on each rank. A distributed stop() publishes the rank's final
totals; on rank 0 it also waits for rank 1's and writes the job (aggregation); a distributed
start() says which node devices the rank sees and, on rank 1, waits for rank 0's. The cost
is the difference of medians (distributed - alone), with each variant's spread (p90 - p10).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import BENCHMARKS, add_write, command, emit, median_ci, parser, quantile, rotations, write_section

KEY = "distributed-aggregation"
VARIANTS = ("distributed", "alone")


def worker(rounds: int, work_s: float) -> None:
    """One rank (under torchrun): the rounds; rank 0 emits every rank's timings."""
    import torch.distributed as dist

    import greenai
    from greenai.distributed import Join

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    timings: list[dict[str, Any]] = []
    for round_, order in rotations(VARIANTS, rounds + 1):
        for variant in order:
            wanted: Any = Join(job_id=f"bench-{round_}") if variant == "distributed" else False
            dist.barrier()
            t0 = time.perf_counter()
            tracker = greenai.Tracker(f"bench-{variant}", distributed=wanted).start()
            t1 = time.perf_counter()
            end = time.monotonic() + work_s
            while time.monotonic() < end:
                sum(range(1000))
            dist.barrier()
            t2 = time.perf_counter()
            result = tracker.stop()
            t3 = time.perf_counter()
            if round_ > 0:  # round 0 warms both paths up
                timings.append(
                    {
                        "rank": rank,
                        "variant": variant,
                        "start_s": t1 - t0,
                        "stop_s": t3 - t2,
                        "job": result.job.status if result.job is not None else None,
                    }
                )
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, timings)
    dist.destroy_process_group()
    if rank == 0:
        emit([t for ts in everyone for t in ts])


def p90_p10(values: list[float]) -> float:
    return quantile(values, 0.9) - quantile(values, 0.1)


def summarize(timings: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rank in sorted({t["rank"] for t in timings}):
        for what in ("start_s", "stop_s"):
            values = {v: [t[what] for t in timings if t["rank"] == rank and t["variant"] == v] for v in VARIANTS}
            med = {v: statistics.median(values[v]) for v in VARIANTS}
            out[f"rank{rank}.{what}"] = {
                "distributed_median_s": med["distributed"],
                "distributed_ci_s": median_ci(values["distributed"])[:2],
                "distributed_spread_s": p90_p10(values["distributed"]),
                "alone_median_s": med["alone"],
                "alone_spread_s": p90_p10(values["alone"]),
                "cost_s": med["distributed"] - med["alone"],
                "n": len(values["distributed"]),
            }
    jobs = [t["job"] for t in timings if t["variant"] == "distributed" and t["rank"] == 0]
    out["jobs_completed"] = f"{sum(j == 'completed' for j in jobs)}/{len(jobs)}"
    return out


def render(summary: dict[str, Any], cmd: str, work_s: float) -> str:
    def ms(x: float) -> str:
        return f"{x * 1000:.1f} ms"

    lines = [
        "## Distributed jobs: the cost of adding up a 2-rank job",
        "",
        f"`{cmd}`: one torchrun launch, 2 ranks (gloo, CPU), one ledger; each round runs both variants in",
        f"rotated order, every rank tracking {work_s:g} s of work; wall time of each rank's `start()` and",
        "`stop()`, medians over rounds (95 % CI of the distributed median) and spreads (p90 - p10).",
        "",
        "| rank | call | distributed | alone | cost (distributed - alone) | spread d / a |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for key, row in summary.items():
        if not key.startswith("rank"):
            continue
        rank, call = key.split(".")
        lo, hi = row["distributed_ci_s"]
        lines.append(
            f"| {rank[4:]} | `{call[:-2]}()` | {ms(row['distributed_median_s'])} ({ms(lo)}-{ms(hi)}) | "
            f"{ms(row['alone_median_s'])} | {ms(row['cost_s'])} | {ms(row['distributed_spread_s'])} / "
            f"{ms(row['alone_spread_s'])} |"
        )
    n = next(row["n"] for key, row in summary.items() if key.startswith("rank"))
    lines += [
        "",
        f"{n} rounds; jobs written completed: {summary['jobs_completed']}. Rank 0's distributed `stop()` publishes",
        "its final totals, waits for rank 1's (polled every 10-100 ms) and writes the job and both ranks' rows",
        "through a connection of its own; rank 1's only publishes and writes its row. A distributed `start()`",
        "publishes which node devices the rank sees; rank 1 waits for rank 0's before choosing what it reads.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--work-s", type=float, default=0.5)
    ap.add_argument("--worker", action="store_true", help=argparse_hidden())
    add_write(ap, KEY)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.rounds, args.work_s)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
        env.update(GREENAI_LEDGER=str(Path(tmp) / "ledger.db"), OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", __file__, "--worker"]
        cmd += ["--rounds", str(args.rounds), "--work-s", str(args.work_s)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=BENCHMARKS, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the torchrun launch failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = summarize(json.loads(lines[-1]))
    section = render(summary, command(__file__, argv), args.work_s)
    print(section)
    print(json.dumps(summary, indent=2), file=sys.stderr)
    if args.write:
        write_section(args.write, KEY, section)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
