"""Adam slows down when its state underflows to denormals: measured, with and without flushing.

    python benchmarks/denormal_adam.py              # ~1 min
    python benchmarks/denormal_adam.py --steps 3000 --model mlp --batch 4

Trains a model of the estimator's zoo (tests/estimate/models.py; default the MLP at batch 4,
loss = output.sum(), Adam lr 1e-3) for `--steps` steps, each run in a fresh process, and
reports the median time of `optimizer.step()` per block of 250 steps, the share of Adam's
state (exp_avg, exp_avg_sq) that is denormal (0 < |x| < 1.18e-38) at the end, and the energy
of the last block per step (a greenai Tracker; on a machine without counters that is greenai's
estimate). Two settings, interleaved over `--repeat` rounds:

- `default`: PyTorch as shipped;
- `flush`: `torch.set_flush_denormal(True)` before the first operator. It sets the CPU's
  flush-to-zero and denormals-are-zero flags of the calling thread, and OpenMP worker threads
  inherit them only when they are created after it: set at the start of a program.

Why: a unit whose gradient is exactly zero from some step on (a dead ReLU) has its first moment
multiplied by beta1 = 0.9 every step, so it reaches the denormal range (below 1.18e-38) a few
hundred steps later; arithmetic on denormals takes a microcode assist on x86 (Intel 64 and
IA-32 Optimization Reference Manual, "Floating-point exceptions" / denormals), many times a
normal operation's cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 250


def child(model_name: str, batch: int, steps: int, flush: bool) -> dict:
    import torch

    if flush:
        torch.set_flush_denormal(True)
    sys.path.insert(0, str(ROOT / "src"))
    from greenai.optimize.denormals import denormal_share
    from greenai.tracking.tracker import Tracker

    from estimate_accuracy import load_zoo  # benchmarks/ is on sys.path when run as a script

    model, x = load_zoo()[model_name](batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times: list[float] = []
    last = steps - BLOCK
    tracker = Tracker("denormal-adam", store=False, handle_signals=False)
    for i in range(steps):
        if i == last:
            tracker.start()
        opt.zero_grad()
        model(x).float().sum().backward()
        a = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - a)
    snap = tracker.stop().snapshot
    return {"blocks_ms": [statistics.median(times[i:i + BLOCK]) * 1e3 for i in range(0, steps, BLOCK)],
            "denormal_share": denormal_share(opt), "last_block_j_per_step": snap.energy_j / BLOCK,
            "provenance": snap.provenance.value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", choices=("default", "flush"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.steps < 2 * BLOCK:
        ap.error(f"--steps must be at least {2 * BLOCK}")
    if args.child:
        print(json.dumps(child(args.model, args.batch, args.steps, args.child == "flush")))
        return
    results: dict[str, list[dict]] = {"default": [], "flush": []}
    for _ in range(args.repeat):
        for setting in results:
            out = subprocess.run([sys.executable, __file__, "--child", setting, "--model", args.model,
                                  "--batch", str(args.batch), "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True)
            results[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"Command: `python benchmarks/denormal_adam.py --model {args.model} --batch {args.batch} "
          f"--steps {args.steps} --repeat {args.repeat}`\n")
    blocks = len(results["default"][0]["blocks_ms"])
    print("| setting | run | optimizer.step() median per block of 250 steps, ms | denormal share of Adam's state "
          "| last block, mJ per step |")
    print("|---|---:|---|---:|---:|")
    for setting, runs in results.items():
        for i, r in enumerate(runs, 1):
            print(f"| {setting} | {i} | {' / '.join(f'{b:.2f}' for b in r['blocks_ms'])} | "
                  f"{r['denormal_share']:.1%} | {r['last_block_j_per_step'] * 1e3:.1f} ({r['provenance']}) |")
    last = {s: statistics.median(r["blocks_ms"][-1] for r in runs) for s, runs in results.items()}
    first = {s: statistics.median(r["blocks_ms"][0] for r in runs) for s, runs in results.items()}
    energy = {s: statistics.median(r["last_block_j_per_step"] for r in runs) for s, runs in results.items()}
    print(f"\nLast block vs first ({blocks} blocks): default {last['default'] / first['default']:.2f}x, "
          f"flush {last['flush'] / first['flush']:.2f}x; energy per step in the last block, flush / default: "
          f"{energy['flush'] / energy['default']:.2f}")


if __name__ == "__main__":
    main()
