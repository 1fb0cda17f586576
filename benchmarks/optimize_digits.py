"""Digits CNN: cut inference energy per sample (target >= 3x at <= 1 point of accuracy lost)
and training energy to reach the baseline's test accuracy (target >= 30 % less).

Inference: one `greenai.optimize` study over the demo's plan, every candidate measured in
interleaved rounds under one tracked run (median time per sample x the candidate's mean
power). Training: each recipe is a tracked run that stops at the first epoch whose test
accuracy reaches the baseline's; recipes are run in interleaved rounds and the median
energy per recipe is reported. On a machine without energy counters the energy is the
CPU model's estimate, and the provenance column says so.

    .venv/bin/python benchmarks/optimize_digits.py [--rounds 3] [--repeats 7]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
from torch import nn

from _harness import RESULTS_DIR, parser, rotations
from greenai.demo.digits import Recipe, load_digits_data, make_cnn, train_digits
from greenai.demo.digits_optimize import digits_plan, digits_task
from greenai.optimize.search import optimize
from greenai.optimize.transforms.distill import halve_width
from greenai.optimize.transforms.lighten import replace_convs, separable_from_conv
from greenai.tracking.tracker import Tracker

RESULTS = RESULTS_DIR / "optimize_digits.json"
RUNTIME_KNOBS = ("threads-", "batch-")


def separable_cnn() -> nn.Module:
    """The demo CNN with its 32->64 and 64->64 convolutions depthwise-separable."""
    model, _ = replace_convs(make_cnn(), lambda c: c.in_channels >= 8 and c.kernel_size[0] > 1, separable_from_conv)
    return model


def half_cnn() -> nn.Module:
    return halve_width(make_cnn())


def inference(repeats: int) -> dict:
    with Tracker("bench-digits-train", store=False) as run:
        trained = train_digits(run, epochs=12)
    data = load_digits_data()
    study = optimize(
        digits_task(trained.model, data),
        digits_plan(serving_batch=len(data.x_test)),
        max_quality_drop=0.01,
        repeats=repeats,
        name="bench-digits-optimize",
        store=False,
    )
    rows = []
    for o in study.outcomes:
        m = o.measurement
        rows.append(
            {
                "name": o.name,
                "status": o.status,
                "reason": o.reason,
                "accuracy": o.quality,
                "energy_per_sample_j": m.energy_per_sample_j if m else None,
                "rel_uncertainty": m.rel_uncertainty if m else None,
                "rel_spread": m.rel_spread if m else None,
                "provenance": m.provenance.value if m else None,
                "ratio_vs_baseline": study.energy_ratio(o.name) if m else None,
                "runtime_knob": any(k in o.name for k in RUNTIME_KNOBS),
                "size_bytes": o.size_bytes,
                "nonzero_parameters": o.nonzero_parameters,
            }
        )
    within = [
        r for r in rows if r["accuracy"] is not None and r["energy_per_sample_j"] and r["accuracy"] >= study.bound
    ]
    best = max(within, key=lambda r: r["ratio_vs_baseline"])
    best_model_only = max((r for r in within if not r["runtime_knob"]), key=lambda r: r["ratio_vs_baseline"])
    return {
        "baseline_accuracy": study.baseline.quality,
        "bound": study.bound,
        "candidates": rows,
        "best": best["name"],
        "best_ratio": best["ratio_vs_baseline"],
        "best_model_only": best_model_only["name"],
        "best_model_only_ratio": best_model_only["ratio_vs_baseline"],
        "target_met": best["ratio_vs_baseline"] >= 3.0,
    }


def training(rounds: int) -> dict:
    recipes = {
        "baseline (12 epochs, fp32, batch 32)": None,
        "baseline recipe, stopping at the target": dict(),
        "bf16 autocast": dict(bf16=True),
        "batch 128, lr 4e-3": dict(batch_size=128, lr=4e-3),
        "1 thread": dict(threads=1),
        "depthwise-separable CNN": dict(make_model=separable_cnn),
        "half-width CNN": dict(make_model=half_cnn),
        "batch 128 + 1 thread + bf16": dict(batch_size=128, lr=4e-3, threads=1, bf16=True),
    }
    # the target: the baseline's final test accuracy (seed 0, as the demo trains it)
    with Tracker("bench-digits-target", store=False) as run:
        target = train_digits(run, epochs=12).test_accuracy
    runs: dict[str, list[dict]] = {name: [] for name in recipes}
    for round_index, order in rotations(list(recipes), rounds):
        for name in order:
            options = recipes[name]
            recipe = Recipe() if options is None else Recipe(stop_at_accuracy=target, **options)
            tracker = Tracker(f"bench-train {name}", store=False)
            with tracker as run:
                out = train_digits(run, epochs=12 if options is None else 40, recipe=recipe)
            result = tracker.result
            runs[name].append(
                {
                    "energy_j": result.energy_j,
                    "duration_s": result.duration_s,
                    "epochs": out.epochs,
                    "accuracy": out.test_accuracy,
                    "reached": out.test_accuracy >= target,
                    "provenance": result.snapshot.provenance.value,
                }
            )
            print(
                f"  round {round_index} {name:40s} {result.energy_j:8.1f} J  epochs {out.epochs:2d}  "
                f"acc {out.test_accuracy:.4f}",
                file=sys.stderr,
            )
    base = statistics.median(r["energy_j"] for r in runs["baseline (12 epochs, fp32, batch 32)"])
    summary = {}
    for name, rs in runs.items():
        energy = statistics.median(r["energy_j"] for r in rs)
        summary[name] = {
            "median_energy_j": energy,
            "saving_vs_baseline": 1 - energy / base,
            "reached_all": all(r["reached"] for r in rs),
            "runs": rs,
            "provenance": rs[0]["provenance"],
        }
    early = summary["baseline recipe, stopping at the target"]["median_energy_j"]
    for v in summary.values():
        v["saving_vs_baseline_stopping_at_target"] = 1 - v["median_energy_j"] / early
    reached = {k: v for k, v in summary.items() if v["reached_all"] and not k.startswith("baseline")}
    best = max(reached, key=lambda k: reached[k]["saving_vs_baseline"]) if reached else None
    return {
        "target_accuracy": target,
        "recipes": summary,
        "best": best,
        "best_saving": reached[best]["saving_vs_baseline"] if best else None,
        "target_met": bool(best and reached[best]["saving_vs_baseline"] >= 0.30),
    }


def transfer(seeds: int) -> dict:
    """Digits 0-4 -> 5-9 (about 100 training images of 5-9): the pretrained CNN with its first
    two convolutions frozen and a new head, against the same CNN from scratch; each arm a
    tracked run that stops at 0.90 test accuracy. Pretraining on 0-4 is not charged."""
    from greenai.demo.transfer_digits import (
        DigitsSetup,
        digits_scratch_arm,
        digits_transfer_arm,
        pretrain_digits_source,
    )

    arms: dict[str, list[dict]] = {"transfer (frozen conv1-2, new head)": [], "scratch": []}
    for seed in range(seeds):
        setup = DigitsSetup(seed=seed)
        pretrained, _ = pretrain_digits_source(seed=seed)  # the "pretrained model": not charged
        runs = {
            "transfer (frozen conv1-2, new head)": lambda run, p=pretrained, s=setup: digits_transfer_arm(
                p, s, run=run
            ),
            "scratch": lambda run, s=setup: digits_scratch_arm(s, run=run),
        }
        for name, train in runs.items():
            tracker = Tracker(f"bench-transfer {name}", store=False)
            with tracker as run:
                arm = train(run)
            snap = tracker.result.snapshot
            arms[name].append(
                {
                    "energy_j": snap.energy_j,
                    "epochs": arm.epochs_to_target,
                    "accuracy": arm.test_accuracy,
                    "trainable_params": arm.trainable_params,
                    "provenance": snap.provenance.value,
                }
            )
            print(f"  seed {seed} {name:38s} {snap.energy_j:7.2f} J  epochs {arm.epochs_to_target}", file=sys.stderr)
    summary = {
        name: {
            "median_energy_j": statistics.median(r["energy_j"] for r in rs),
            "epochs": [r["epochs"] for r in rs],
            "runs": rs,
        }
        for name, rs in arms.items()
    }
    t_j, s_j = (v["median_energy_j"] for v in summary.values())
    return {"arms": summary, "saving_vs_scratch": 1 - t_j / s_j}


def main() -> None:
    ap = parser(__doc__, paragraph=True)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of training recipes")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved inference rounds")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    out = {"torch_threads": torch.get_num_threads(), "inference": inference(args.repeats)}
    if not args.skip_training:
        out["training"] = training(args.rounds)
        out["transfer"] = transfer(args.rounds)
    out["wall_s"] = time.time() - t0
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    inf = out["inference"]
    print(
        f"inference: best {inf['best']} {inf['best_ratio']:.2f}x less energy/sample; "
        f"best model-only {inf['best_model_only']} {inf['best_model_only_ratio']:.2f}x; "
        f"target met: {inf['target_met']}"
    )
    for c in inf["candidates"]:
        ratio = f"{c['ratio_vs_baseline']:.2f}x" if c["ratio_vs_baseline"] else c["status"]
        print(
            f"  {c['name']:62s} {ratio:>8s}  acc {c['accuracy'] if c['accuracy'] is None else round(c['accuracy'], 4)}"
        )
    if "training" in out:
        tr = out["training"]
        print(
            f"training to {tr['target_accuracy']:.4f}: best {tr['best']} saves "
            f"{(tr['best_saving'] or 0):.0%}; target met: {tr['target_met']}"
        )
        for name, r in tr["recipes"].items():
            print(
                f"  {name:40s} {r['median_energy_j']:8.1f} J ({r['provenance']})  "
                f"{-r['saving_vs_baseline']:+.0%} vs full baseline, "
                f"{-r['saving_vs_baseline_stopping_at_target']:+.0%} vs baseline stopping at the target  "
                f"reached: {r['reached_all']}"
            )
    if "transfer" in out:
        tr = out["transfer"]
        for name, r in tr["arms"].items():
            print(f"  transfer to 5-9: {name:38s} {r['median_energy_j']:7.2f} J  epochs {r['epochs']}")
        print(f"  transfer saves {tr['saving_vs_scratch']:.0%} of the training energy to 0.90 on 5-9")
    print(f"wrote {RESULTS} in {out['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
