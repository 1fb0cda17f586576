"""A model's operators run slower than each one looped alone, as calibration times them.

    python benchmarks/interleaving.py --rounds 3

For each zoo model (inference, one batch): every leaf module's call on its real input, timed
(1) looped alone, as a calibration micro-benchmark is, and (2) with small calls of other
operator classes run, untimed, before each timed call (a convolution, a linear layer, layer
and batch norm, GELU, softmax, pooling, an embedding lookup, a reduction), as other
operators run between two calls of one in a model; and (3) the whole model's forward. If
the whole model costs more than its leaves looped alone, the difference is what running
operators one after another adds: each evicts the others' code, oneDNN primitive-cache
entries and tensor metadata from the caches. Medians of `--rounds` interleaved rounds.
"""

from __future__ import annotations

import statistics

from _harness import median_call_s, parser
from _zoo import build, zoo_models


def other_operators():  # noqa: ANN201 - a callable
    """Small calls of several operator classes (what runs between two calls in a model)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x4, w4 = torch.randn(1, 8, 16, 16, generator=g), torch.randn(8, 8, 3, 3, generator=g)
    x3, w3 = torch.randn(1, 8, 32, generator=g), torch.randn(8, 8, 3, generator=g)
    rows, w2 = torch.randn(8, 64, generator=g), torch.randn(64, 64, generator=g)
    mean, var = torch.zeros(8), torch.ones(8)
    table, idx = torch.randn(1000, 16, generator=g), torch.arange(32) * 31
    calls = [
        lambda: F.conv2d(x4, w4, padding=1),
        lambda: F.conv1d(x3, w3, padding=1),
        lambda: F.linear(rows, w2),
        lambda: F.layer_norm(rows, (64,)),
        lambda: F.batch_norm(x4, mean, var),
        lambda: F.gelu(rows),
        lambda: rows.softmax(-1),
        lambda: F.max_pool2d(x4, 2),
        lambda: F.embedding(idx, table),
        lambda: rows.sum(0),
    ]

    def run() -> None:
        for c in calls:
            c()

    return run


def leaves(model, x):  # noqa: ANN001, ANN201
    """(leaf module, its input args) in the order one forward calls them."""
    import torch

    calls = []
    hooks = [
        m.register_forward_hook(
            lambda m, args, out: calls.append((m, tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args)))
        )
        for m in model.modules()
        if not list(m.children())
    ]
    with torch.inference_mode():
        model(x)
    for h in hooks:
        h.remove()
    return calls


def measure(model, x, calls, others, n: int) -> tuple[float, float, float]:  # noqa: ANN001
    alone = interleaved = 0.0
    for m, args in calls:
        call = lambda m=m, args=args: m(*args)
        alone += median_call_s(call, n, warmup=0.1)
        interleaved += median_call_s(call, n, others, warmup=0.1)
    whole = median_call_s(lambda: model(x), n, warmup=0.1)
    return alone, interleaved, whole


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "--models",
        default="audio1d,resnet,cnn,mobilenet,mlp,embedding,gru",
        help="zoo models (not the transformer: its attention block is not a leaf module)",
    )
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200, help="timed calls per leaf and setting")
    args = ap.parse_args()
    import torch

    names = zoo_models(ap, args.models)
    others = other_operators()
    cases = {}
    for name in names:
        model, x = build(name, args.batch)
        model.eval()
        cases[name] = (model, x, leaves(model, x))
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for name, (model, x, calls) in cases.items():
                results[name].append(measure(model, x, calls, others, args.calls))
    print(
        f"Command: `python benchmarks/interleaving.py --models {args.models} --batch {args.batch} "
        f"--rounds {args.rounds} --calls {args.calls}`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print(
        "| model (inference) | leaves | leaves looped alone | leaves, other operators between calls | "
        "whole model | whole / alone | interleaved / alone |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rounds in results.items():
        alone, inter, whole = (statistics.median(r[i] for r in rounds) for i in range(3))
        print(
            f"| {name}/{args.batch} | {len(cases[name][2])} | {alone * 1e3:.2f} ms | {inter * 1e3:.2f} ms | "
            f"{whole * 1e3:.2f} ms | {whole / alone:.2f}x | {inter / alone:.2f}x |"
        )


if __name__ == "__main__":
    main()
