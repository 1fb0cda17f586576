"""Judge several calibration profiles on one measured accuracy run (a paired comparison).

    python benchmarks/estimate_accuracy.py --profile /tmp/a.json --rounds 3 > /tmp/accuracy.log
    python benchmarks/replay_profiles.py /tmp/accuracy.log /tmp/a.json /tmp/b.json ...   # no timing

On this shared VM two accuracy runs of the same code land several points of MAPE apart, so a
change to calibration cannot be judged by comparing two runs. This replays the measured step
times of one run (the least per case over its rounds, as estimate_accuracy.py keeps) against
every profile given: each profile's error is then on the same measurements, and what differs
is only how (and when) each profile was calibrated. Calibrate the profiles back to back, in
alternation, so that the machine's drift hits them alike.

Also printed: each profile's micro-benchmark times against the first profile's, per operator
class and pass (median ratio over the sizes both timed): how fast the machine ran during each
calibration, which no fit can take out.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from _harness import parser
from _zoo import replayed_run, zoo_counts

GROUPS = {
    "all": lambda b, m: True,
    "batch 4 inference": lambda b, m: b == 4 and m == "inference",
    "batch 4 training": lambda b, m: b == 4 and m == "training",
    "batch 32 inference": lambda b, m: b == 32 and m == "inference",
    "batch 32 training": lambda b, m: b == 32 and m == "training",
}


def point_ratios(profiles: list) -> dict[str, list[float]]:
    """Per "class[/pass]": the median over the sizes both timed of each profile's micro-benchmark
    time / the first profile's (1.0 for the first itself)."""
    first = {(pt.name, pt.op_class): pt.time_s for pt in profiles[0].points}
    ratios: dict[str, list[float]] = {}
    for i, profile in enumerate(profiles):
        by_class: dict[str, list[float]] = {}
        for pt in profile.points:
            if (pt.name, pt.op_class) in first:
                group = pt.op_class.split("/")[0] + ("/backward" if "/backward" in pt.op_class else "")
                by_class.setdefault("all", []).append(pt.time_s / first[pt.name, pt.op_class])
                by_class.setdefault(group, []).append(pt.time_s / first[pt.name, pt.op_class])
        for group, values in by_class.items():
            ratios.setdefault(group, [float("nan")] * len(profiles))[i] = statistics.median(values)
    return ratios


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("log", type=Path, help="stdout of benchmarks/estimate_accuracy.py")
    ap.add_argument("profiles", type=Path, nargs="+", help="calibration profiles to judge")
    args = ap.parse_args()
    from greenai.estimation.predict import predict
    from greenai.estimation.profile import load_profile

    times = replayed_run(args.log, args.profiles)
    profiles = [load_profile(p) for p in args.profiles]
    predicted = [
        (name, batch, mode, t, [predict(counts, p) for p in profiles])
        for (name, batch, mode), t, counts in zoo_counts(times)
    ]
    errors = [(name, batch, mode, [p.time_s / t - 1 for p in preds]) for name, batch, mode, t, preds in predicted]
    inside = [
        sum(preds[i].time_low_s <= t <= preds[i].time_high_s for *_, t, preds in predicted)
        for i in range(len(profiles))
    ]
    names = [f"{i + 1}: {p}" for i, p in enumerate(args.profiles)]
    print(f"Command: `python benchmarks/replay_profiles.py {args.log} {' '.join(map(str, args.profiles))}`\n")
    print("| time MAPE | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, keep in GROUPS.items():
        rows = [e for n, b, m, e in errors if keep(b, m)]
        if rows:
            cells = [statistics.mean(abs(r[i]) for r in rows) for i in range(len(names))]
            print(f"| {label} ({len(rows)}) | " + " | ".join(f"{c:.1%}" for c in cells) + " |")
    print("| measured time inside the ~95 % band | " + " | ".join(f"{k} of {len(predicted)}" for k in inside) + " |")
    print("\n| micro-benchmark time / profile 1's (median over sizes) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for group, values in sorted(point_ratios(profiles).items(), key=lambda kv: (kv[0] != "all", kv[0])):
        print(f"| {group} | " + " | ".join(f"{v:.2f}x" for v in values) + " |")
    print("\n| case | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for name, batch, mode, errs in errors:
        print(f"| {name}/{batch} {mode} | " + " | ".join(f"{e:+.0%}" for e in errs) + " |")


if __name__ == "__main__":
    main()
