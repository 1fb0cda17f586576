"""What if the estimator assumed a small step's data stays in the cache? Replays one accuracy run.

    python benchmarks/estimate_accuracy.py --profile /tmp/p.json --rounds 3 > /tmp/accuracy.log
    python benchmarks/warm_cache_whatif.py /tmp/accuracy.log /tmp/p.json     # ~10 s, no timing

Calibration times every operation on inputs cycled out of the caches (microbench.make_copies);
a small model's weights stay cached from one step to the next (benchmarks/cache_residency.py:
a batch-4 linear layer 2-3.5x faster warm). A residency model would predict memory-bound work
at a higher, warm bandwidth when the step's working set fits in the cache. This replays the
measured times of an accuracy run against such variants of its own profile: the memory terms'
bandwidth x `s` (and no extra DRAM term) for every case whose working set (parameter bytes,
x4 in training for gradients and Adam's two moments, plus the activations count_ops reports)
is at most `C`. It changes no code: a variant worth building would show here first.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

from _harness import parser
from _zoo import replayed_run, zoo_counts

SPEEDUPS = (1.5, 2.0, 3.0)
CACHE_MIB = (1, 2, 4, 8, 16, 32, 64)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("log", type=Path, help="stdout of benchmarks/estimate_accuracy.py")
    ap.add_argument("profile", type=Path, help="the profile that run used (its --profile)")
    args = ap.parse_args()
    from greenai.estimation.predict import predict
    from greenai.estimation.profile import load_profile

    times = replayed_run(args.log, [args.profile])
    profile = load_profile(args.profile)

    def warm(s: float):  # noqa: ANN202 - a Profile
        models = {
            k: dataclasses.replace(
                m, bandwidth_bps=m.bandwidth_bps * s if m.bandwidth_bps else None, dram_s_per_byte=0.0
            )
            for k, m in profile.time_models.items()
        }
        return dataclasses.replace(profile, time_models=models)

    variants = {1.0: profile} | {s: warm(s) for s in SPEEDUPS}
    rows = []
    for (name, batch, mode), t, counts in zoo_counts(times):
        working_set = counts.parameter_bytes * (4 if mode == "training" else 1) + counts.activation_bytes
        rows.append(
            (
                f"{name}/{batch} {mode}",
                working_set,
                t,
                {s: predict(counts, p).time_s / t - 1 for s, p in variants.items()},
            )
        )
    print(f"Command: `python benchmarks/warm_cache_whatif.py {args.log} {args.profile}`\n")
    base = statistics.mean(abs(r[3][1.0]) for r in rows)
    print(f"as calibrated: time MAPE {base:.1%} over {len(rows)} cases\n")
    print("| warm when the working set is at most | " + " | ".join(f"bandwidth x{s:g}" for s in SPEEDUPS) + " |")
    print("|---|" + "---:|" * len(SPEEDUPS))
    for c in CACHE_MIB:
        cells = [statistics.mean(abs(r[3][s if r[1] <= c * 2**20 else 1.0]) for r in rows) for s in SPEEDUPS]
        print(f"| {c} MiB | " + " | ".join(f"{m:.1%}" for m in cells) + " |")
    print(
        "\n| case | working set | measured | error as calibrated | "
        + " | ".join(f"warm x{s:g}" for s in SPEEDUPS)
        + " |"
    )
    print("|---|---:|---:|---:|" + "---:|" * len(SPEEDUPS))
    for label, ws, t, errs in sorted(rows, key=lambda r: r[1]):
        print(
            f"| {label} | {ws / 2**20:.2f} MiB | {t * 1e3:.2f} ms | {errs[1.0]:+.0%} | "
            + " | ".join(f"{errs[s]:+.0%}" for s in SPEEDUPS)
            + " |"
        )


if __name__ == "__main__":
    main()
