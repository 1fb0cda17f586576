"""How much do predictions move from one calibration to the next?

    python benchmarks/calibration_stability.py                 # 3 calibrations, ~3.5 min
    python benchmarks/calibration_stability.py --repeat 5 --budget 30

Calibrates `--repeat` times in a row (same budget, nothing else running) and predicts, with each
profile, the 36 cases of benchmarks/estimate_accuracy.py (the model zoo x batch 4, 32 x
inference, training; counting only, no model is run). Reported: for each case the spread
max / min of its predicted time over the calibrations, the median and the worst of those
spreads over the cases; the same spread of the micro-benchmarks' raw median times (is it the
machine or the fit?); and the context costs (module call, Adam step) of each calibration. A
prediction cannot be steadier than the calibration it comes from: this is the floor under
the accuracy benchmark's error on this machine.
"""

from __future__ import annotations

import statistics
import sys
import time

from _harness import ints, parser, quantile, spread
from _zoo import load_zoo


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="calibrations")
    ap.add_argument("--budget", type=float, default=60.0, help="calibration budget, seconds")
    ap.add_argument("--batches", default="4,32")
    args = ap.parse_args()
    if args.repeat < 2:
        ap.error("--repeat must be at least 2 (a spread needs two calibrations)")

    import warnings

    from greenai.estimation.calibrate import calibrate
    from greenai.estimation.counting import count_ops
    from greenai.estimation.predict import predict

    warnings.simplefilter("ignore")
    zoo = load_zoo()
    batches = ints(args.batches)
    counts = {
        (name, b, training): count_ops(*make(b), training=training)
        for name, make in zoo.items()
        for b in batches
        for training in (False, True)
    }
    profiles = []
    t0 = time.perf_counter()
    for i in range(args.repeat):
        prof = calibrate(args.budget, save=False)
        profiles.append(prof)
        print(
            f"  [{i + 1}/{args.repeat}] {prof.calibration_s:.1f} s, module call {prof.module_call_s * 1e6:.2f} us, "
            f"Adam step {prof.optimizer_step_s * 1e6:.1f} us + {prof.optimizer_record_s * 1e6:.2f} us/op",
            file=sys.stderr,
        )
    spreads = {}
    for key, c in counts.items():
        ts = [predict(c, p).time_s for p in profiles]
        spreads[key] = spread(ts)
    raw: dict[tuple[str, str], list[float]] = {}
    for p in profiles:
        for point in p.points:
            raw.setdefault((point.op_class, point.name), []).append(point.time_s)
    raw_spreads = sorted(spread(v) for v in raw.values() if len(v) == len(profiles))
    worst = max(spreads, key=spreads.get)
    name, b, training = worst
    print(
        f"Command: `python benchmarks/calibration_stability.py --repeat {args.repeat} --budget {args.budget:g}`"
        f" ({time.perf_counter() - t0:.0f} s, {len(counts)} cases, {len(raw_spreads)} micro-benchmark sizes)\n"
    )
    print(
        "| calibrations | predicted time per case, max / min: median | 90th pct | worst case "
        "| micro-benchmark median time, max / min: median | 90th pct | module call, us | Adam step, us |"
    )
    print("|---:|---:|---:|---|---:|---:|---|---|")
    values = sorted(spreads.values())
    raw_cells = (
        f"{statistics.median(raw_spreads):.3f}x | {quantile(raw_spreads, 0.9):.2f}x"
        if raw_spreads
        else "n/a (no size timed by every calibration) | n/a"
    )
    print(
        f"| {len(profiles)} | {statistics.median(values):.3f}x | {quantile(values, 0.9):.2f}x "
        f"| {spreads[worst]:.2f}x ({name}/{b} {'training' if training else 'inference'}) "
        f"| {raw_cells} "
        f"| {', '.join(f'{p.module_call_s * 1e6:.2f}' for p in profiles)} "
        f"| {', '.join(f'{p.optimizer_step_s * 1e6:.0f}' for p in profiles)} |"
    )


if __name__ == "__main__":
    main()
