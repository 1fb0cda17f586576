"""A linear layer with its weights in the cache vs cycled out of it: how much residency matters.

    python benchmarks/cache_residency.py            # ~20 s

Calibration (greenai.estimation.microbench.make_copies) times each operation on copies of its
inputs cycled through 64 MiB, so every call finds its weights out of the private caches, as a
big model's are. A small model's weights stay in the cache from one batch to the next. Here
`F.linear` at small batch, per shape: `warm` calls it on one weight matrix again and again;
`cold` cycles through copies of the weights filling 64 MiB. Median time per call (run_bench, as
calibration times) over `--rounds` interleaved rounds, then the median over rounds.
"""

from __future__ import annotations

import statistics

from _harness import parser

SHAPES = ((4, 256, 512), (4, 512, 512), (32, 512, 512), (4, 1024, 1024), (4, 2048, 2048))
COLD_BYTES = 64 << 20


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.3, help="timed per shape, setting and round")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from greenai.estimation.timing import run_bench

    torch.set_grad_enabled(False)
    times: dict[tuple[int, int, int], dict[str, list[float]]] = {s: {"warm": [], "cold": []} for s in SHAPES}
    for _ in range(args.rounds):
        for b, k, n in SHAPES:
            x, bias = torch.randn(b, k), torch.randn(n)
            weights = [torch.randn(n, k) for _ in range(max(2, COLD_BYTES // (4 * n * k)))]
            calls = [lambda w=w, x=x, bias=bias: F.linear(x, w, bias) for w in weights]
            times[(b, k, n)]["warm"].append(run_bench(calls[0], args.seconds).time_s)
            times[(b, k, n)]["cold"].append(run_bench(calls, args.seconds).time_s)
    print(
        f"Command: `python benchmarks/cache_residency.py --rounds {args.rounds} --seconds {args.seconds:g}` "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)\n"
    )
    print("| input x weight | weights | warm (in cache) | cold (cycled, as calibration) | cold / warm |")
    print("|---|---:|---:|---:|---:|")
    for (b, k, n), t in times.items():
        warm, cold = statistics.median(t["warm"]), statistics.median(t["cold"])
        print(
            f"| {b}x{k} @ {k}x{n} | {n * k * 4 / 2**20:.2f} MiB | {warm * 1e6:.1f} µs | {cold * 1e6:.1f} µs "
            f"| {cold / warm:.2f}x |"
        )


if __name__ == "__main__":
    main()
