"""Grouped convolutions: time against channels per group, measured and predicted.

    python benchmarks/grouped_conv.py [--profile P] [--rounds 3] [--threads 1]     # ~30 s

A 3x3 convolution of C channels to C channels in G groups does 1/G of the dense one's FLOPs. If
its time followed its FLOPs, the dense convolution's roofline would predict it. Per shape (N, C,
H) and G from 1 (dense) to C (depthwise), the forward's median time per call over `--rounds`
rounds (the group counts in a rotating order; least of the rounds' medians), its rate in
GFLOP/s, and with `--profile P` the estimate from the dense roofline (`conv/float32`) and from
the grouped one (`conv/float32@grouped`, OpRecord.variant GROUPED) where P has it. The last
line gives the CPUs other processes kept busy.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from _harness import cpu_sample, parser, rotations

SHAPES = ((4, 128, 16), (8, 64, 16), (4, 256, 8))
GROUPS = (1, 2, 4, 8, 16, 32)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--profile", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=15, help="timed calls per case and round")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    import torch
    import torch.nn.functional as F

    from greenai.estimation.ops import GROUPED, OpClass, OpCounts, OpRecord, Pass

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    profile = None
    if args.profile is not None:
        from greenai.estimation.profile import load_profile

        profile = load_profile(args.profile, strict=False)
    cases = [(n, c, h, g) for n, c, h in SHAPES for g in (*GROUPS, c) if g <= c]
    times: dict[tuple[int, int, int, int], list[float]] = {k: [] for k in cases}
    loads = []
    for _, order in rotations(cases, args.rounds, stride=7):
        before = cpu_sample()
        for n, c, h, g in order:
            x, w = torch.randn(n, c, h, h), torch.randn(c, c // g, 3, 3)
            F.conv2d(x, w, padding=1, groups=g)
            ts = []
            for _ in range(args.calls):
                a = time.perf_counter()
                F.conv2d(x, w, padding=1, groups=g)
                ts.append(time.perf_counter() - a)
            times[(n, c, h, g)].append(statistics.median(ts))
        loads.append(cpu_sample().others_cores(before))

    def predicted(n: int, c: int, h: int, g: int, variant: str) -> float:
        from greenai.estimation.predict import predict

        flops = 2.0 * n * c * h * h * (c // g) * 9
        nbytes = 4.0 * (2 * n * c * h * h + c * (c // g) * 9)
        cls = OpClass.DEPTHWISE_CONV if g == c else OpClass.CONV
        rec = OpRecord(
            "aten.convolution.default", cls, "float32", flops, nbytes / 2, nbytes / 2, "", Pass.FORWARD, variant=variant
        )
        return predict(OpCounts((rec,), 0, 0, 0, n), profile).time_s - profile.module_call_s

    print(
        f"Command: `python benchmarks/grouped_conv.py --rounds {args.rounds} --calls {args.calls}"
        f"{f' --threads {args.threads}' if args.threads else ''}{' --profile P' if profile else ''}` "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads; other processes kept "
        f"{min(loads):.2f}-{max(loads):.2f} CPUs busy over the rounds)\n"
    )
    head = "| N x C x H | groups | channels per group | time | GFLOP/s |"
    if profile is not None:
        head += " dense roofline | error | grouped roofline | error |"
    print(head)
    print("|---|---:|---:|---:|---:|" + ("---:|---:|---:|---:|" if profile is not None else ""))
    for n, c, h, g in cases:
        t = min(times[(n, c, h, g)])
        flops = 2.0 * n * c * h * h * (c // g) * 9
        row = f"| {n}x{c}x{h}x{h} | {g} | {c // g} | {t * 1e6:.0f} µs | {flops / t / 1e9:.1f} |"
        if profile is not None:
            variant = GROUPED if 1 < g < c else ""
            dense = predicted(n, c, h, g, "")
            row += f" {dense * 1e6:.0f} µs | {dense / t - 1:+.0%} |"
            if variant and "conv/float32@grouped" in profile.time_models:
                grouped = predicted(n, c, h, g, variant)
                row += f" {grouped * 1e6:.0f} µs | {grouped / t - 1:+.0%} |"
            else:
                row += " | |"
        print(row)


if __name__ == "__main__":
    main()
