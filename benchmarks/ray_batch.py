"""A batch of small training jobs on a local Ray cluster: every job's energy in the ledger,
and what scheduling costs per job.

    python benchmarks/ray_batch.py                  # 20 jobs, 2-CPU local cluster (~1.5 min on 2 cores)
    python benchmarks/ray_batch.py --jobs 4 --epochs 3   # smoke run

The workload: `train_mlp`, a 64-256-256-10 MLP trained with Adam on scikit-learn's bundled
digits (no download), one torch thread, ~1-2 s per job. Each job is a callable job
(`ray_batch:train_mlp`, seed = job index).

What it measures:
1. baseline: the same jobs called one after another in this process, untracked (after one
   untimed warm-up call), timing each;
2. ray: the jobs through `run_batch` on a local Ray cluster (`RayExecutor(num_cpus=2)`),
   each tracked on its worker into one ledger; then checks that every job has a
   `schedule_jobs` row linked to a run with energy > 0;
3. local: the same batch through `LocalExecutor` (a process per job), for comparison.

Per job, two overheads: dispatch = submission -> the job's work starts under its tracker
(the ledger's `scheduling_overhead_s`); round trip = submission -> outcome back at the
driver, minus the job's tracked duration (dispatch + tracker stop + result return). Median
and p95 over jobs; "warm" leaves out each executor's first wave (one job per slot), which
pays for starting worker processes. Ray's own start-up is reported apart.
Results: benchmarks/results/ray_batch.json (--json FILE to change).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import BENCHMARKS, RESULTS_DIR, command, parser

DEFAULT_JSON = RESULTS_DIR / "ray_batch.json"


def train_mlp(seed: int = 0, epochs: int = 15, hidden: int = 256) -> dict[str, float]:
    """Train a small MLP on digits (75/25 split, batch 32, Adam 1e-3); return test accuracy."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_train = int(len(x) * 0.75)
    train, test = order[:n_train], order[n_train:]
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = train[torch.randperm(n_train)]
        for i in range(0, n_train, 32):
            idx = perm[i : i + 32]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.inference_mode():
        accuracy = (model(x[test]).argmax(dim=1) == y[test]).float().mean().item()
    return {"test_accuracy": accuracy, "train_samples": float(n_train * epochs)}


def stats(values: list[float]) -> dict[str, float | None]:
    from greenai.schedule.batch import percentile

    ordered = sorted(v for v in values if not math.isnan(v))
    return {
        "n": len(ordered),
        "median_s": percentile(ordered, 50),
        "p95_s": percentile(ordered, 95),
        "max_s": ordered[-1] if ordered else None,
    }


def run_baseline(n_jobs: int, epochs: int) -> dict[str, Any]:
    train_mlp(seed=-1, epochs=1)  # warm-up: torch's first call, data loading caches
    times = []
    start = time.perf_counter()
    for i in range(n_jobs):
        t0 = time.perf_counter()
        train_mlp(seed=i, epochs=epochs)
        times.append(time.perf_counter() - t0)
    return {
        "wall_s": time.perf_counter() - start,
        "job_s": stats(times),
        "sum_s": sum(times),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def run_executor(name: str, n_jobs: int, epochs: int, cpus: int, ledger_path: Path) -> dict[str, Any]:
    from greenai.config import load_config
    from greenai.ledger.jobs import batch_jobs
    from greenai.ledger.store import Ledger
    from greenai.schedule.batch import run_batch
    from greenai.schedule.jobs import Job

    config = load_config(ledger=ledger_path)
    jobs = [
        Job(f"mlp-{i:02d}", callable_path="ray_batch:train_mlp", kwargs={"seed": i, "epochs": epochs})
        for i in range(n_jobs)
    ]
    t0 = time.perf_counter()
    if name == "ray":
        from greenai.schedule.executor_ray import RayExecutor

        executor: Any = RayExecutor(num_cpus=cpus, config=config)
    else:
        from greenai.schedule.executor_local import LocalExecutor

        executor = LocalExecutor(max_parallel=cpus, config=config)
    startup_s = time.perf_counter() - t0
    received: dict[str, float] = {}
    try:
        summary = run_batch(
            jobs,
            executor,
            ledger_path,
            batch_id=f"bench-{name}",
            on_outcome=lambda o: received.setdefault(o.job_id, time.time()),
        )
    finally:
        executor.shutdown()
    with Ledger(ledger_path) as ledger:
        rows = batch_jobs(ledger, f"bench-{name}")
        checked = []
        for row in rows:
            run = ledger.get_run(row.run_id) if row.run_id else None
            checked.append(
                run is not None
                and run.snapshot.energy_j > 0
                and row.energy_j is not None
                and row.energy_j > 0
                and row.status == "completed"
            )
    by_id = {r.job_id: r for r in rows}
    order = sorted(rows, key=lambda r: r.submitted_at or 0.0)
    warm_ids = {r.job_id for r in order[cpus:]}
    dispatch = {r.job_id: r.scheduling_overhead_s if r.scheduling_overhead_s is not None else math.nan for r in rows}
    round_trip = {
        j: received[j] - by_id[j].submitted_at - (by_id[j].duration_s or 0.0)
        for j in received
        if by_id[j].submitted_at is not None
    }
    return {
        "startup_s": startup_s,
        "wall_s": summary.wall_s,
        "jobs": summary.jobs,
        "completed": summary.completed,
        "failed": summary.failed,
        "jobs_with_energy_in_ledger": sum(checked),
        "energy_j": summary.energy_j,
        "provenance": summary.provenance,
        "carbon_g": summary.carbon_g,
        "job_duration_s": stats([r.duration_s for r in rows if r.duration_s is not None]),
        "dispatch_overhead": stats(list(dispatch.values())),
        "dispatch_overhead_warm": stats([v for j, v in dispatch.items() if j in warm_ids]),
        "round_trip_overhead": stats(list(round_trip.values())),
        "round_trip_overhead_warm": stats([v for j, v in round_trip.items() if j in warm_ids]),
        "nodes": sorted({r.node for r in rows}),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "mean_accuracy": statistics.fmean(o.value["test_accuracy"] for o in summary.outcomes if o.ok)
        if summary.completed
        else None,
    }


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def report(result: dict[str, Any]) -> str:
    b = result["baseline"]
    lines = [
        f"{result['jobs']} jobs ({result['epochs']} epochs each), {result['cpus']} slots, "
        f"load average before: {result['loadavg_before']}",
        f"baseline (sequential, in-process, untracked): wall {b['wall_s']:.1f} s, "
        f"median job {b['job_s']['median_s']:.2f} s (load average after: {b['loadavg_after']})",
    ]
    for name in ("ray", "local"):
        r = result.get(name)
        if not r:
            continue
        lines += [
            f"{name} (load average after: {r['loadavg_after']}): start-up {r['startup_s']:.1f} s, batch wall {r['wall_s']:.1f} s, "
            f"{r['completed']}/{r['jobs']} completed, {r['jobs_with_energy_in_ledger']}/{r['jobs']} with energy "
            f"in the ledger, total {r['energy_j']:.1f} J ({r['provenance']}), median job {r['job_duration_s']['median_s']:.2f} s",
            f"  dispatch overhead per job: median {ms(r['dispatch_overhead']['median_s'])}, "
            f"p95 {ms(r['dispatch_overhead']['p95_s'])}; warm (after the first wave): median "
            f"{ms(r['dispatch_overhead_warm']['median_s'])}, p95 {ms(r['dispatch_overhead_warm']['p95_s'])}",
            f"  round-trip overhead per job: median {ms(r['round_trip_overhead']['median_s'])}, "
            f"p95 {ms(r['round_trip_overhead']['p95_s'])}; warm median "
            f"{ms(r['round_trip_overhead_warm']['median_s'])}, p95 {ms(r['round_trip_overhead_warm']['p95_s'])}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--cpus", type=int, default=2, help="Ray logical CPUs = local slots")
    ap.add_argument("--no-local", action="store_true", help="skip the LocalExecutor comparison")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    # job processes and Ray workers (started from here, inheriting the environment) import
    # `ray_batch:train_mlp` from benchmarks/
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")]))
    import torch

    import greenai

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command(__file__, argv),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "greenai": getattr(greenai, "__version__", "?"),
        },
        "jobs": args.jobs,
        "epochs": args.epochs,
        "cpus": args.cpus,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    result["baseline"] = run_baseline(args.jobs, args.epochs)
    with tempfile.TemporaryDirectory(prefix="greenai-ray-bench-") as tmp:
        import ray

        result["machine"]["ray"] = ray.__version__
        result["ray"] = run_executor("ray", args.jobs, args.epochs, args.cpus, Path(tmp) / "ledger.db")
        if not args.no_local:
            result["local"] = run_executor("local", args.jobs, args.epochs, args.cpus, Path(tmp) / "ledger.db")
    print(report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    ok = result["ray"]["jobs_with_energy_in_ledger"] == args.jobs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
