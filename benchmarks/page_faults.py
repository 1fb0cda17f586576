"""Page faults in a training step, and what they cost: glibc's default allocator vs fixed thresholds.

    python benchmarks/page_faults.py                       # the zoo's models at batch 4 and 32, ~2 min
    python benchmarks/page_faults.py --models embedding --batches 4

For each model of the estimator's zoo (tests/estimate/models.py) and batch size, a fresh process
trains (zero_grad, forward, loss = output.sum(), backward, Adam step) for `--seconds` after 10
warm-up steps and reports the median time per step and per part, and the median minor page
faults per step (getrusage). Two settings, interleaved per case over `--repeat` rounds (medians
of the rounds are reported: this machine's speed drifts by 10-30 % between processes):

- `default`: glibc as it comes. Its mmap threshold is dynamic (128 KiB, raised to the size of
  the largest mmapped block freed, up to 32 MiB) and the heap's top is returned to the kernel
  once more than twice that is free (mallopt(3), M_MMAP_THRESHOLD and M_TRIM_THRESHOLD): a step
  whose multi-megabyte temporaries are freed together gives the memory back and faults on every
  page of it at the next step;
- `fixed`: MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ set to 1 GiB, so freed memory stays
  mapped.

The estimator's micro-benchmarks allocate the same sizes in a loop and never see these faults;
this shows where real steps pay them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def child(name: str, batch: int, seconds: float) -> dict:
    import torch

    from estimate_accuracy import load_zoo  # benchmarks/ is on sys.path when run as a script

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
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(faults) < 5:
        step(True)
    return {**{k: statistics.median(v) * 1e3 for k, v in parts.items()}, "faults": statistics.median(faults)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn,mobilenet,transformer,lstm,embedding,gru,audio1d,resnet")
    ap.add_argument("--batches", default="4,32")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, batch = args.child.split(":")
        print(json.dumps(child(name, int(batch), args.seconds)))
        return
    print(f"Command: `python benchmarks/page_faults.py --models {args.models} --batches {args.batches} "
          f"--seconds {args.seconds:g} --repeat {args.repeat}`\n")
    print("| model | batch | faults per step, default | step, default (ms) | optimizer, default (ms) "
          "| faults, fixed | step, fixed (ms) | optimizer, fixed (ms) | default / fixed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            runs: dict[str, list[dict]] = {"default": [], "fixed": []}
            for _ in range(args.repeat):
                for setting, extra in (("default", {}), ("fixed", FIXED)):
                    env = {k: v for k, v in os.environ.items() if k not in FIXED} | extra
                    out = subprocess.run([sys.executable, __file__, "--child", f"{name}:{batch}",
                                          "--seconds", str(args.seconds)],
                                         capture_output=True, text=True, check=True, env=env)
                    runs[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
            d, f = ({k: statistics.median(r[k] for r in rs) for k in rs[0]} for rs in runs.values())
            print(f"| {name} | {batch} | {d['faults']:.0f} | {d['step']:.2f} | {d['optimizer']:.2f} "
                  f"| {f['faults']:.0f} | {f['step']:.2f} | {f['optimizer']:.2f} | {d['step'] / f['step']:.2f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
