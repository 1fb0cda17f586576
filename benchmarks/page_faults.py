"""Page faults in a training step, what they cost, and what keeping freed memory mapped saves.

    python benchmarks/page_faults.py                       # the zoo's models at batch 4 and 32, ~7 min
    python benchmarks/page_faults.py --models embedding --batches 32

For each model of the estimator's zoo (tests/estimate/models.py) and batch size, a fresh process
trains (zero_grad, forward, loss = output.sum(), backward, Adam step) for `--seconds` after 10
warm-up steps under a greenai Tracker and reports the median time per step and per part, the
median minor page faults per step (getrusage), the energy per step (the Tracker's energy /
steps; estimated on machines without counters) and the peak RSS. Three settings, interleaved
per case over `--repeat` rounds in a rotating order (medians of the rounds are reported: this machine's speed
drifts by 10-30 % between processes; the speed-ups are medians of the rounds' own ratios):

- `default`: glibc as it comes (twice per round: the second, `A/A`, shows the noise floor). Its mmap threshold is dynamic (128 KiB, raised to the size of
  the largest mmapped block freed, up to 32 MiB) and the heap's top is returned to the kernel
  once more than twice that is free (mallopt(3), M_MMAP_THRESHOLD and M_TRIM_THRESHOLD): a step
  whose multi-megabyte temporaries are freed together gives the memory back and faults on every
  page of it at the next step;
- `run`: started with greenai.tune.allocator.keep_freed_memory_env(), the environment
  `greenai run --keep-freed-memory` gives a program (mmap threshold 32 MiB, trim threshold 1 GiB);
- `call`: greenai.tune.allocator.keep_freed_memory() called at the start of the program.

The estimator's micro-benchmarks allocate the same sizes in a loop and never see these faults;
this shows where real steps pay them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from _harness import emit, for_seconds, ints, median_ratio, parser, rotations, run_worker
from _zoo import ZOO_MODELS, load_zoo, zoo_models


def child(name: str, batch: int, seconds: float, call: bool) -> dict:
    if call:
        from greenai.tune.allocator import keep_freed_memory

        keep_freed_memory()
    import torch

    from greenai.tracking.tracker import Tracker

    model, x = load_zoo()[name](batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    parts: dict[str, list[float]] = {"step": [], "forward": [], "backward": [], "optimizer": []}
    faults: list[int] = []

    def step(record: bool) -> None:
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = time.perf_counter()
        opt.zero_grad()
        loss = model(x).float().sum()
        b = time.perf_counter()
        loss.backward()
        c = time.perf_counter()
        opt.step()
        d = time.perf_counter()
        if record:
            for key, value in zip(parts, (d - a, b - a, c - b, d - c)):
                parts[key].append(value)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)

    for _ in range(10):
        step(False)
    with Tracker("page-faults", store=False, handle_signals=False) as tracker:
        for _ in for_seconds(seconds, at_least=5):
            step(True)
    snap = tracker.result.snapshot
    return {
        **{k: statistics.median(v) * 1e3 for k, v in parts.items()},
        "faults": statistics.median(faults),
        "energy_mj": snap.energy_j / len(faults) * 1e3,
        "provenance": snap.provenance.value,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--models", default=ZOO_MODELS)
    ap.add_argument("--batches", default="4,32")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--call", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, batch = args.child.split(":")
        emit(child(name, int(batch), args.seconds, args.call))
        return
    models, batches = zoo_models(ap, args.models), ints(args.batches)
    from greenai.tune.allocator import ENV_NAMES, keep_freed_memory_env

    # "default again": a second default process per round, the A/A comparison that shows how far
    # two identical settings land apart on this machine (its noise floor)
    settings = {
        "default": ({}, []),
        "default again": ({}, []),
        "run": (keep_freed_memory_env(), []),
        "call": ({}, ["--call"]),
    }
    print(
        f"Command: `python benchmarks/page_faults.py --models {args.models} --batches {args.batches} "
        f"--seconds {args.seconds:g} --repeat {args.repeat}`\n"
    )
    print(
        "| model | batch | faults per step: default / run / call | step (ms): default / run / call "
        "| optimizer (ms), default | energy per step (mJ): default / run / call "
        "| speed-up, time: A/A / run / call | speed-up, energy: A/A / run / call "
        "| peak RSS (MB): default / run / call |"
    )
    print("|---|---:|---|---|---:|---|---|---|---|")
    for name in models:
        for batch in batches:
            runs: dict[str, list[dict]] = {setting: [] for setting in settings}
            # each round starts with another setting (no position bias)
            for _, order in rotations(list(settings), args.repeat):
                for setting in order:
                    extra, flags = settings[setting]
                    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES} | extra
                    child_args = ["--child", f"{name}:{batch}", "--seconds", str(args.seconds), *flags]
                    runs[setting].append(run_worker(__file__, child_args, env=env))
            m = {
                setting: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "provenance"}
                for setting, rs in runs.items()
            }
            d, r, c = m["default"], m["run"], m["call"]
            prov = runs["default"][0]["provenance"]

            def speedup(key: str, setting: str, runs: dict = runs) -> float:  # median of the rounds' default / setting
                return median_ratio((r[key] for r in runs["default"]), (r[key] for r in runs[setting]))

            print(
                f"| {name} | {batch} | {d['faults']:.0f} / {r['faults']:.0f} / {c['faults']:.0f} "
                f"| {d['step']:.2f} / {r['step']:.2f} / {c['step']:.2f} | {d['optimizer']:.2f} "
                f"| {d['energy_mj']:.1f} / {r['energy_mj']:.1f} / {c['energy_mj']:.1f} ({prov}) "
                f"| {speedup('step', 'default again'):.2f}x / {speedup('step', 'run'):.2f}x "
                f"/ {speedup('step', 'call'):.2f}x "
                f"| {speedup('energy_mj', 'default again'):.2f}x / {speedup('energy_mj', 'run'):.2f}x "
                f"/ {speedup('energy_mj', 'call'):.2f}x "
                f"| {d['peak_rss_mb']:.0f} / {r['peak_rss_mb']:.0f} / {c['peak_rss_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
