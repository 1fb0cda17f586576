"""Training steps slow down when their numbers underflow to denormals: measured, with and without flushing.

    python benchmarks/denormals.py                                    # the MLP's Adam, ~1 min
    python benchmarks/denormals.py --model lstm --batch 32 --steps 2500   # the LSTM's backward, ~4 min

Trains a model of the estimator's zoo (tests/estimate/models.py; default the MLP at batch 4,
loss = output.sum(), Adam lr 1e-3) for `--steps` steps, each run in a fresh process, and
reports per block of 250 steps the median time of `backward()` and of `optimizer.step()`, the
share of the gradients and of Adam's state (exp_avg, exp_avg_sq) that is denormal
(0 < |x| < 1.18e-38) at the end, and the energy of the last block per step (a greenai Tracker;
on a machine without counters that is greenai's estimate). Two settings, interleaved (ABBA) over
`--repeat` rounds:

- `default`: PyTorch as shipped;
- `flush`: `torch.set_flush_denormal(True)` before the first operator. It sets the CPU's
  flush-to-zero and denormals-are-zero flags of the calling thread, and OpenMP worker threads
  inherit them only when they are created after it: set at the start of a program.

Why: arithmetic on denormals takes a microcode assist on x86 (Intel 64 and IA-32 Optimization
Reference Manual, "Floating-point exceptions" / denormals), many times a normal operation's
cost. Two ways a run gets there: a unit whose gradient is exactly zero from some step on (a
dead ReLU) has Adam's first moment multiplied by beta1 = 0.9 every step, so it reaches the
denormal range a few hundred steps later (the MLP's optimizer); and saturated gates (sigmoid
near 0 or 1) make the derivatives an LSTM's backward multiplies through its time steps tiny
(the LSTM's backward: its intermediates, which no tensor left after the step holds).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _harness import emit, parser, rotations, run_worker
from _zoo import load_zoo

BLOCK = 250


def child(model_name: str, batch: int, steps: int, flush: bool) -> dict:
    import torch

    if flush:
        torch.set_flush_denormal(True)
    from _denormals import denormal_share, tensors_denormal_share
    from greenai.tracking.tracker import Tracker

    model, x = load_zoo()[model_name](batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    backward: list[float] = []
    step: list[float] = []
    last = steps - BLOCK
    tracker = Tracker("denormals", store=False, handle_signals=False)
    for i in range(steps):
        if i == last:
            tracker.start()
        opt.zero_grad()
        loss = model(x).float().sum()
        a = time.perf_counter()
        loss.backward()
        b = time.perf_counter()
        opt.step()
        step.append(time.perf_counter() - b)
        backward.append(b - a)
    snap = tracker.stop().snapshot
    blocks = lambda times: [statistics.median(times[i : i + BLOCK]) * 1e3 for i in range(0, steps, BLOCK)]
    return {
        "backward_ms": blocks(backward),
        "optimizer_ms": blocks(step),
        "grad_denormal_share": tensors_denormal_share(p.grad for p in model.parameters()),
        "denormal_share": denormal_share(opt),
        "last_block_j_per_step": snap.energy_j / BLOCK,
        "provenance": snap.provenance.value,
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", choices=("default", "flush"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.steps < 2 * BLOCK:
        ap.error(f"--steps must be at least {2 * BLOCK}")
    if args.batch < 1 or args.repeat < 1:
        ap.error("--batch and --repeat must be at least 1")
    if args.child:
        emit(child(args.model, args.batch, args.steps, args.child == "flush"))
        return
    if args.model not in (zoo := load_zoo()):
        ap.error(f"--model {args.model!r} is not in the zoo; choose one of {', '.join(zoo)}")
    results: dict[str, list[dict]] = {"default": [], "flush": []}
    for _, order in rotations(list(results), args.repeat):  # default, flush; flush, default; ...
        for setting in order:
            flags = ["--child", setting, "--model", args.model, "--batch", str(args.batch), "--steps", str(args.steps)]
            results[setting].append(run_worker(__file__, flags))
    print(
        f"Command: `python benchmarks/denormals.py --model {args.model} --batch {args.batch} "
        f"--steps {args.steps} --repeat {args.repeat}`\n"
    )
    blocks = len(results["default"][0]["optimizer_ms"])
    print(f"Median per block of {BLOCK} steps, ms (first / ... / last):\n")
    print(
        "| setting | run | backward() | optimizer.step() | denormal share: gradients / Adam's state "
        "| last block, mJ per step |"
    )
    print("|---|---:|---|---|---:|---:|")
    for setting, runs in results.items():
        for i, r in enumerate(runs, 1):
            print(
                f"| {setting} | {i} | {' / '.join(f'{b:.2f}' for b in r['backward_ms'])} | "
                f"{' / '.join(f'{b:.2f}' for b in r['optimizer_ms'])} | "
                f"{r['grad_denormal_share']:.1%} / {r['denormal_share']:.1%} | "
                f"{r['last_block_j_per_step'] * 1e3:.1f} ({r['provenance']}) |"
            )
    growth = {
        (s, part): statistics.median(r[part][-1] / r[part][0] for r in runs)
        for s, runs in results.items()
        for part in ("backward_ms", "optimizer_ms")
    }
    energy = {s: statistics.median(r["last_block_j_per_step"] for r in runs) for s, runs in results.items()}
    print(
        f"\nLast block / first ({blocks} blocks), median over runs: backward default "
        f"{growth['default', 'backward_ms']:.2f}x, flush {growth['flush', 'backward_ms']:.2f}x; "
        f"optimizer.step() default {growth['default', 'optimizer_ms']:.2f}x, flush "
        f"{growth['flush', 'optimizer_ms']:.2f}x; energy per step in the last block, flush / default: "
        f"{energy['flush'] / energy['default']:.2f}"
    )


if __name__ == "__main__":
    main()
