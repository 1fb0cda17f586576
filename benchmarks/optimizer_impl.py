"""Energy of a training step with the optimizer's for-loop, foreach or fused implementation.

    python benchmarks/optimizer_impl.py                      # the zoo at batch 4 and 32, ~7 min
    python benchmarks/optimizer_impl.py --models embedding --batches 4 --rounds 3

For each model of the estimator's zoo (tests/estimate/models.py) and batch size, a fresh process
trains with Adam (zero_grad, forward, loss = output.sum(), backward, step) and switches the
optimizer's implementation between steps with greenai's `OptimizerImplKnob` (the same optimizer
and state throughout): `for-loop` (PyTorch's default on CPU), `foreach`, `fused`, and `for-loop`
a second time in each round (`A/A`: how far two identical settings land apart on this noisy
machine). Each trial runs 5 unmeasured steps after the switch, then `--seconds` of steps under
a greenai Tracker: median time per step and per optimizer step, energy per step (the Tracker's
energy / steps; estimated on machines without counters). `--rounds` rounds in a rotating order;
ratios are medians of the rounds' own ratios (for-loop / setting).

Also reported: the share of exact zeros in Adam's second moment at the end, since the
for-loop's `sqrt` of zeros is slow on this CPU (see `--sqrt`, which times torch.sqrt on
640,000 zeros and on random values).

    python benchmarks/optimizer_impl.py --cold --batches 4     # ~1 min

`--cold` instead times `optimizer.step()` alone (for-loop and fused Adam, after 15 training
steps, gradients kept) right after: nothing (back to back, as calibration used to time it), a
pass over 8 MiB or 32 MiB of other memory, or the forward and backward of a training step;
medians of 50 calls each. It is the evidence for calibrating the optimizer with cold caches
(greenai.estimation.timing.run_cold).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _harness import emit, for_seconds, ints, median_ratio, parser, rotations, run_worker
from _zoo import ZOO_MODELS, build, zoo_models

SETTINGS = ("for-loop", "for-loop again", "foreach", "fused")


def child(name: str, batch: int, seconds: float, rounds: int) -> dict:
    import torch

    from greenai.tracking.tracker import Tracker
    from greenai.tune.knobs.optimizer import OptimizerImplKnob

    model, x = build(name, batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    knob = OptimizerImplKnob(opt)

    def step() -> tuple[float, float]:
        a = time.perf_counter()
        opt.zero_grad()
        model(x).float().sum().backward()
        b = time.perf_counter()
        opt.step()
        c = time.perf_counter()
        return c - a, c - b

    for _ in range(10):
        step()
    trials: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for _, order in rotations(SETTINGS, rounds):
        for setting in order:
            knob.apply(setting.split()[0])
            for _ in range(5):
                step()
            times: list[tuple[float, float]] = []
            with Tracker("optimizer-impl", store=False, handle_signals=False) as tracker:
                times.extend(step() for _ in for_seconds(seconds, at_least=5))
            snap = tracker.result.snapshot
            trials[setting].append(
                {
                    "step_ms": statistics.median(t for t, _ in times) * 1e3,
                    "optimizer_ms": statistics.median(o for _, o in times) * 1e3,
                    "energy_mj": snap.energy_j / len(times) * 1e3,
                    "provenance": snap.provenance.value,
                }
            )
    second = [s["exp_avg_sq"] for s in opt.state.values() if "exp_avg_sq" in s]
    zeros = sum(int((v == 0).sum()) for v in second) / max(sum(v.numel() for v in second), 1)
    return {"trials": trials, "zero_share": zeros, "parameters": sum(p.numel() for p in model.parameters())}


def cold_table(models: list[str], batches: list[int]) -> None:
    import torch

    passes = {size: torch.ones(size // 4) for size in (8 << 20, 32 << 20)}
    print("| model | batch | Adam | optimizer.step() after: nothing | 8 MiB pass | 32 MiB pass | forward + backward |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name in models:
        for batch in batches:
            for fused in (False, True):
                model, x = build(name, batch)
                opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
                for _ in range(15):
                    opt.zero_grad()
                    model(x).float().sum().backward()
                    opt.step()

                def backward(opt=opt, model=model, x=x) -> None:  # bound now, not when called
                    opt.zero_grad()
                    model(x).float().sum().backward()

                before = {
                    "nothing": lambda: None,
                    "8 MiB": lambda: passes[8 << 20].add_(1.0),
                    "32 MiB": lambda: passes[32 << 20].add_(1.0),
                    "forward + backward": backward,
                }
                cells = []
                for work in before.values():
                    times = []
                    for _ in range(60):
                        work()
                        a = time.perf_counter()
                        opt.step()
                        times.append(time.perf_counter() - a)
                    cells.append(f"{statistics.median(times[10:]) * 1e3:.2f} ms")
                print(
                    f"| {name} | {batch} | {'fused' if fused else 'for-loop'} | " + " | ".join(cells) + " |", flush=True
                )


def sqrt_timing() -> None:
    import torch

    n = 640_000
    for label, x in (("random", torch.rand(n)), ("zeros", torch.zeros(n))):
        out, times = torch.empty(n), []
        for _ in range(200):
            a = time.perf_counter()
            torch.sqrt(x, out=out)
            times.append(time.perf_counter() - a)
        print(f"torch.sqrt of {n:,} {label}: {statistics.median(times) * 1e6:.0f} us (median of 200)")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--models", default=ZOO_MODELS)
    ap.add_argument("--batches", default="4,32")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sqrt", action="store_true", help="also time torch.sqrt on zeros and on random values")
    ap.add_argument("--cold", action="store_true", help="time optimizer.step() after other work instead")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, batch = args.child.split(":")
        emit(child(name, int(batch), args.seconds, args.rounds))
        return
    models, batches = zoo_models(ap, args.models), ints(args.batches)
    import torch

    if args.cold:
        print(
            f"Command: `python benchmarks/optimizer_impl.py --cold --models {args.models} --batches {args.batches}`; "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads\n"
        )
        cold_table(models, batches)
        return
    print(
        f"Command: `python benchmarks/optimizer_impl.py --models {args.models} --batches {args.batches} "
        f"--seconds {args.seconds:g} --rounds {args.rounds}`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs\n"
    )
    if args.sqrt:
        sqrt_timing()
        print()
    print(
        "| model | batch | step, ms: for-loop / foreach / fused | optimizer, ms: for-loop / foreach / fused "
        "| energy per step, mJ: for-loop / foreach / fused | energy ratio (for-loop / setting): A/A / foreach / fused "
        "| zeros in Adam's 2nd moment |"
    )
    print("|---|---:|---|---|---|---|---:|")
    for name in models:
        for batch in batches:
            res = run_worker(
                __file__, ["--child", f"{name}:{batch}", "--seconds", str(args.seconds), "--rounds", str(args.rounds)]
            )
            t = res["trials"]
            med = {
                s: {k: statistics.median(r[k] for r in t[s]) for k in ("step_ms", "optimizer_ms", "energy_mj")}
                for s in SETTINGS
            }

            def ratio(setting: str, t: dict = t) -> float:  # median of the rounds' own for-loop / setting ratios
                return median_ratio((r["energy_mj"] for r in t["for-loop"]), (r["energy_mj"] for r in t[setting]))

            shown = ("for-loop", "foreach", "fused")
            print(
                f"| {name} | {batch} | "
                + " / ".join(f"{med[s]['step_ms']:.2f}" for s in shown)
                + " | "
                + " / ".join(f"{med[s]['optimizer_ms']:.2f}" for s in shown)
                + " | "
                + " / ".join(f"{med[s]['energy_mj']:.1f}" for s in shown)
                + f" ({t['fused'][0]['provenance']})"
                + f" | {ratio('for-loop again'):.2f}x / {ratio('foreach'):.2f}x / {ratio('fused'):.2f}x"
                + f" | {res['zero_share']:.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
