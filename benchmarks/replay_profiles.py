"""Judge several calibration profiles on one measured accuracy run (a paired comparison).

    python benchmarks/estimate_accuracy.py --profile /tmp/a.json --rounds 3 > /tmp/accuracy.log
    python benchmarks/replay_profiles.py /tmp/accuracy.log /tmp/a.json /tmp/b.json ...   # no timing
    python benchmarks/replay_profiles.py LOG P --without memory,grouped     # P without each part

On this shared VM two accuracy runs of the same code land several points of MAPE apart, so a
change to calibration cannot be judged by comparing two runs. This replays the measured step
times and energies of one run (the round of least time per case, as estimate_accuracy.py keeps)
against every profile given: each profile's error is then on the same measurements, and what
differs is only how (and when) each profile was calibrated. Calibrate the profiles back to back,
in alternation, so that the machine's drift hits them alike.

`--without PART,...` also judges each profile with a part of the estimator taken out, on the
same calibration: `memory` (memory beyond the caches: Profile.llc_bytes, dram_bandwidth_bps,
mapped_s_per_byte, matmul_dram_bandwidth_bps set to 0, as a profile made before them), or one
of its parts: `mapped` (no cost of fresh memory), `stream` (no stream from memory: neither for
calls beyond the last-level cache nor for steps whose parameters exceed it), `matmul-stream`
(matmuls streamed at the elementwise bandwidth); `grouped` (the grouped-convolution rooflines
dropped: grouped convolutions fall back on the dense one), `grouped-backward` (only the
backward's). The log may hold zoo and
held-out models (estimate_accuracy.py --set): errors are reported per set and per regime.

Also printed: each profile's micro-benchmark times against the first profile's, per operator
class and pass (median ratio over the sizes both timed): how fast the machine ran during each
calibration, which no fit can take out.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import parser
from _zoo import ZOO_REGIME, measured_cases, regime, replayed_run, zoo_counts

Key = tuple[str, int, str]
GROUPS: dict[str, Callable[[str, int, str], bool]] = {
    "all": lambda n, b, m: True,
    "zoo": lambda n, b, m: regime(n) == ZOO_REGIME,
    "held-out": lambda n, b, m: regime(n) != ZOO_REGIME,
    "batch 4 inference": lambda n, b, m: b == 4 and m == "inference",
    "batch 4 training": lambda n, b, m: b == 4 and m == "training",
    "batch 32 inference": lambda n, b, m: b == 32 and m == "inference",
    "batch 32 training": lambda n, b, m: b == 32 and m == "training",
}


def without(profile: Any, part: str) -> Any:
    """`profile` with one part of the estimator taken out (see the module's docstring)."""
    if part == "memory":
        return dataclasses.replace(
            profile, llc_bytes=0.0, dram_bandwidth_bps=0.0, mapped_s_per_byte=0.0, matmul_dram_bandwidth_bps=0.0
        )
    if part == "mapped":
        return dataclasses.replace(profile, mapped_s_per_byte=0.0)
    if part == "stream":
        return dataclasses.replace(profile, llc_bytes=0.0)
    if part == "matmul-stream":
        return dataclasses.replace(profile, matmul_dram_bandwidth_bps=0.0)
    if part == "grouped":
        return dataclasses.replace(
            profile, time_models={k: v for k, v in profile.time_models.items() if not k.endswith("@grouped")}
        )
    if part == "grouped-backward":
        return dataclasses.replace(
            profile, time_models={k: v for k, v in profile.time_models.items() if not k.endswith("/backward@grouped")}
        )
    raise SystemExit(
        f"--without: unknown part {part!r} (memory, mapped, stream, matmul-stream, grouped, grouped-backward)"
    )


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


def _mape(values: list[float]) -> float:
    finite = [abs(v) for v in values if math.isfinite(v)]
    return statistics.mean(finite) if finite else float("nan")


def _cell(t: float, e: float) -> str:
    return f"{t:.1%} / {e:.1%}" if math.isfinite(e) else f"{t:.1%}"


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("log", type=Path, help="stdout of benchmarks/estimate_accuracy.py")
    ap.add_argument("profiles", type=Path, nargs="+", help="calibration profiles to judge")
    ap.add_argument(
        "--without",
        default="",
        help="also judge each profile without these parts: memory, mapped, stream, matmul-stream, grouped, "
        "grouped-backward",
    )
    args = ap.parse_args()
    from greenai.estimation.predict import predict
    from greenai.estimation.profile import load_profile

    times = replayed_run(args.log, args.profiles)
    measured = measured_cases(args.log.read_text())
    loaded = [load_profile(p) for p in args.profiles]
    parts = [p for p in args.without.split(",") if p]
    profiles, names = [], []
    for i, (path, profile) in enumerate(zip(args.profiles, loaded)):
        profiles.append(profile)
        names.append(f"{i + 1}: {path}")
        for part in parts:
            profiles.append(without(profile, part))
            names.append(f"{i + 1} without {part}")
    predicted = [(key, measured[key], [predict(counts, p) for p in profiles]) for key, _t, counts in zoo_counts(times)]
    errors: dict[Key, list[tuple[float, float]]] = {
        key: [(p.time_s / t - 1, p.energy_j / e - 1 if e > 0 else float("nan")) for p in preds]
        for key, (t, e), preds in predicted
    }
    inside = [
        sum(preds[i].time_low_s <= t <= preds[i].time_high_s for _, (t, _e), preds in predicted)
        for i in range(len(profiles))
    ]
    groups = dict(GROUPS)
    for kind in sorted({regime(n) for n, _, _ in errors} - {ZOO_REGIME}):
        for mode in ("inference", "training"):
            groups[f"{kind}, {mode}"] = lambda n, b, m, kind=kind, mode=mode: regime(n) == kind and m == mode
    extra = " ".join(["--without", args.without] if parts else [])
    print(f"Command: `python benchmarks/replay_profiles.py {args.log} {' '.join(map(str, args.profiles))} {extra}`\n")
    print("| time / energy MAPE (cases) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, keep in groups.items():
        rows = [errs for (n, b, m), errs in errors.items() if keep(n, b, m)]
        if rows:
            cells = [_cell(_mape([r[i][0] for r in rows]), _mape([r[i][1] for r in rows])) for i in range(len(names))]
            print(f"| {label} ({len(rows)}) | " + " | ".join(cells) + " |")
    print("| measured time inside the ~95 % band | " + " | ".join(f"{k} of {len(predicted)}" for k in inside) + " |")
    print("\n| micro-benchmark time / profile 1's (median over sizes) | " + " | ".join(map(str, args.profiles)) + " |")
    print("|---|" + "---:|" * len(loaded))
    for group, values in sorted(point_ratios(loaded).items(), key=lambda kv: (kv[0] != "all", kv[0])):
        print(f"| {group} | " + " | ".join(f"{v:.2f}x" for v in values) + " |")
    print("\n| case (time error) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for (name, batch, mode), errs in sorted(errors.items(), key=lambda kv: (regime(kv[0][0]), kv[0])):
        print(f"| {name}/{batch} {mode} | " + " | ".join(f"{t:+.0%}" for t, _ in errs) + " |")


if __name__ == "__main__":
    main()
