"""A convolution of one image costs far less than one of two: oneDNN's batch-1 path.

    python benchmarks/conv_batch.py --rounds 3

Dense 2-D convolutions (3x3 and 1x1, small feature maps, as in the zoo's CNNs) at batch 1, 2,
4 and 8, forward (inference mode) and backward (input and weight gradients), torch's default
threads. If the time from batch 1 to batch 2 jumps by far more than from batch 2 to batch 4,
batch 1 runs on another path, and one roofline fitted over both mispredicts the small
batched convolutions (the estimator calibrates batch 1 apart: ops.SINGLE_IMAGE). Medians per
call over `--rounds` rounds, the shapes and batches interleaved within each round.
"""

from __future__ import annotations

import statistics

from _harness import median_call_s, parser

SHAPES = [(3, 16, 32, 3, 1), (16, 16, 16, 3, 1), (32, 16, 32, 3, 1), (64, 8, 64, 3, 1), (32, 16, 64, 1, 2)]
BATCHES = (1, 2, 4, 8)
CALLS = 200  # timed calls per case and round


def cases():  # noqa: ANN201
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    out = {}
    for c, h, k, ks, stride in SHAPES:
        for n in BATCHES:
            x = torch.randn(n, c, h, h, generator=g, requires_grad=True)
            w = (torch.randn(k, c, ks, ks, generator=g) * 0.1).requires_grad_()
            conv = lambda x=x, w=w, ks=ks, stride=stride: F.conv2d(x, w, stride=stride, padding=ks // 2)
            y = conv()
            grad = torch.ones_like(y)
            out[(c, h, k, ks, stride, n)] = (
                lambda conv=conv: _inference(conv),
                lambda y=y, x=x, w=w, grad=grad: torch.autograd.grad(y, [x, w], grad, retain_graph=True),
            )
    return out


def _inference(conv) -> None:  # noqa: ANN001
    import torch

    with torch.inference_mode():
        conv()


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import torch

    calls = cases()
    times: dict[tuple, list[tuple[float, float]]] = {key: [] for key in calls}
    for _ in range(args.rounds):
        for key, (forward, backward) in calls.items():
            times[key].append((median_call_s(forward, CALLS, warmup=0.2), median_call_s(backward, CALLS, warmup=0.2)))
    print(
        f"Command: `python benchmarks/conv_batch.py --rounds {args.rounds}`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print(
        "| convolution (one image's C x H x W -> K) | pass | "
        + " | ".join(f"batch {n}" for n in BATCHES)
        + " | batch 1 -> 2 | batch 2 -> 4 |"
    )
    print("|---|---|" + "---:|" * (len(BATCHES) + 2))
    for c, h, k, ks, stride in SHAPES:
        for i, label in enumerate(("forward", "backward")):
            t = [statistics.median(r[i] for r in times[(c, h, k, ks, stride, n)]) for n in BATCHES]
            print(
                f"| {c}x{h}x{h} -> {k}, {ks}x{ks}/{stride} | {label} | "
                + " | ".join(f"{v * 1e6:.0f} us" for v in t)
                + f" | {(t[1] - t[0]) * 1e6:+.0f} us | {(t[2] - t[1]) * 1e6:+.0f} us |"
            )


if __name__ == "__main__":
    main()
