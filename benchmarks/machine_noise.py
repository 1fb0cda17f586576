"""How steady is this machine? Three probes, interleaved, over time: the noise floor under
every timing figure in docs/benchmarks.md.

    python benchmarks/machine_noise.py [--rounds 60] [--pause 0.2]

Each round times, back to back, the median of:
- dispatch: a tiny nn.Linear(8, 8) forward, 1000 calls (Python and dispatcher, ~4 µs);
- compute: a 256x256 float32 matmul, 50 calls (cache-resident FLOPs);
- memory: an elementwise add of two 4M-float tensors, 10 calls (DRAM bandwidth);
then sleeps `--pause`. Reported per probe: median, min, max, max/min, the share of rounds
slower than 1.25x the fastest, and how often two probes were slow in the same round (if the
slow spells were one machine-wide state, a single reference probe could correct the others;
they are not, on the VM this was written on). Prints Markdown.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from _harness import median_call_s, parser, spread

SLOW = 1.25  # a round slower than this x the probe's fastest counts as slow


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--pause", type=float, default=0.2, help="seconds between rounds")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    import torch

    torch.manual_seed(0)
    linear, x = torch.nn.Linear(8, 8), torch.randn(2, 8)
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    big_a, big_b = torch.randn(4_000_000), torch.randn(4_000_000)
    probes: dict[str, tuple[Callable[[], object], int]] = {
        "dispatch": (lambda: linear(x), 1000),
        "compute": (lambda: a @ b, 50),
        "memory": (lambda: torch.add(big_a, big_b), 10),
    }
    rows: dict[str, list[float]] = {name: [] for name in probes}
    with torch.inference_mode():
        for call, calls in probes.values():  # warm-up
            median_call_s(call, calls)
        for _ in range(args.rounds):
            for name, (call, calls) in probes.items():
                rows[name].append(median_call_s(call, calls))
            time.sleep(args.pause)
    slow = {name: [t > SLOW * min(ts) for t in ts] for name, ts in rows.items()}
    print(
        f"{args.rounds} rounds, {torch.get_num_threads()} torch threads, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    print("| probe | median | min | max | max / min | rounds > 1.25x min |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ts in rows.items():
        print(
            f"| {name} | {statistics.median(ts) * 1e6:.1f} µs | {min(ts) * 1e6:.1f} µs | "
            f"{max(ts) * 1e6:.1f} µs | {spread(ts):.2f}x | {sum(slow[name]) / len(ts):.0%} |"
        )
    names = list(rows)
    print()
    for i, p in enumerate(names):
        for q in names[i + 1 :]:
            both = sum(s and t for s, t in zip(slow[p], slow[q]))
            either = sum(s or t for s, t in zip(slow[p], slow[q]))
            print(f"- {p} and {q} slow in the same round: {both} of {either} rounds where either was")


if __name__ == "__main__":
    main()
