"""What a fused inference kernel runs, against what op counting counts for it.

    python benchmarks/fused_fast_path.py [--batch 4] [--calls 20]     # ~5 s

nn.TransformerEncoderLayer in eval mode under inference_mode takes PyTorch's "fast path": one
operator, `aten::_transformer_encoder_layer_fwd`, whose CPU kernel runs the whole layer in
C++. Op counting runs on fake tensors, which cannot run that kernel, so the layer is
decomposed into the operators its reference implementation issues and those are counted. This
script runs the zoo's transformer classifier (tests/estimate/models.py) for real under
torch.profiler and prints, per operator, the calls and self CPU time per forward next to the
calls counting recorded: what the real kernel does that the decomposition does not (copies,
views, its own work outside any operator).
"""

from __future__ import annotations

import collections

from _harness import parser
from _zoo import build


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--calls", type=int, default=20, help="profiled forwards (after 5 warm-up ones)")
    args = ap.parse_args()
    if args.batch < 1 or args.calls < 1:
        ap.error("--batch and --calls must be at least 1")
    import torch
    from torch.profiler import ProfilerActivity, profile

    from greenai.estimation.counting import count_ops

    model, x = build("transformer", args.batch)
    model.eval()
    counted = collections.Counter(
        str(r.op).removeprefix("aten.").split(".")[0].lstrip("_") for r in count_ops(model, x, training=False).records
    )
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.calls):
                model(x)
    rows = [
        (e.key.removeprefix("aten::").lstrip("_"), e.count / args.calls, e.self_cpu_time_total / args.calls)
        for e in prof.key_averages()
        if e.key.startswith("aten::")
    ]
    total_self = sum(t for _, _, t in rows)
    print(f"Command: `python benchmarks/fused_fast_path.py --batch {args.batch} --calls {args.calls}`\n")
    print(
        f"transformer/{args.batch} inference, per forward: {sum(counted.values())} operators counted "
        f"(fake tensors, decomposed), {sum(n for _, n, _ in rows):.0f} aten calls run, "
        f"{total_self:.0f} us of their self CPU time (profiled, so slower than unprofiled)\n"
    )
    print("| operator | calls run | self CPU, us | calls counted |")
    print("|---|---:|---:|---:|")
    for name, n, t in sorted(rows, key=lambda r: -r[2]):
        print(f"| {name} | {n:g} | {t:.1f} | {counted.pop(name, 0)} |")
    for name, n in sorted(counted.items()):
        print(f"| {name} | 0 | 0.0 | {n} |")


if __name__ == "__main__":
    main()
