"""Attention encoders in inference: PyTorch's fused fast path against its Python path, measured
and predicted.

    python benchmarks/attention_paths.py --profile P [--models transformer,tiny_encoder,encoder256] [--batches 4,32]

nn.TransformerEncoderLayer in eval mode under inference_mode runs `_transformer_encoder_layer_fwd`
(one operator whose C++ kernel runs the layer); `torch.backends.mha.set_fastpath_enabled(False)`
makes it run the same layer through its Python modules (nn.MultiheadAttention, nn.Linear, ...).
Op counting sees both (the fast path as the operators its kernel issues from C++, the Python
path as Python calls). Per model and batch, each path is timed (median forward over `--seconds`,
`--rounds` rounds alternating the two paths, least of the rounds' medians) and predicted with
the profile: if the estimate's error differs between the two paths on the same model, the
fused kernel is what counting gets wrong; if it is the same, the layer's operators are. Also
printed: the operators counted per path. The last column is the CPUs other processes kept busy.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from _harness import cpu_sample, for_seconds, ints, names, parser, rotations
from _zoo import build

PATHS = ("fast path", "Python path")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--profile", type=Path, required=True, help="a calibration profile")
    ap.add_argument("--models", default="transformer,tiny_encoder,encoder256")
    ap.add_argument("--batches", default="4,32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5, help="timed per path, case and round")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from greenai.estimation.counting import count_ops
    from greenai.estimation.predict import predict
    from greenai.estimation.profile import load_profile

    profile = load_profile(args.profile, strict=False)
    rows = []
    for name in names(args.models):
        for batch in ints(args.batches):
            model, x = build(name, batch)
            model.eval()
            measured: dict[str, list[float]] = {p: [] for p in PATHS}
            loads = []
            predicted, counted = {}, {}
            for path in PATHS:
                torch.backends.mha.set_fastpath_enabled(path == "fast path")
                counts = count_ops(model, x, training=False)
                predicted[path], counted[path] = predict(counts, profile).time_s, len(counts.records)
            for _, order in rotations(PATHS, args.rounds):
                for path in order:
                    torch.backends.mha.set_fastpath_enabled(path == "fast path")
                    before = cpu_sample()
                    with torch.inference_mode():
                        for _ in range(3):
                            model(x)
                        times = []
                        for _ in for_seconds(args.seconds, at_least=5):
                            a = time.perf_counter()
                            model(x)
                            times.append(time.perf_counter() - a)
                    measured[path].append(statistics.median(times))
                    loads.append(cpu_sample().others_cores(before))
            torch.backends.mha.set_fastpath_enabled(True)
            rows.append((name, batch, {p: min(v) for p, v in measured.items()}, predicted, counted, max(loads)))
    print(
        f"Command: `python benchmarks/attention_paths.py --profile P --models {args.models} --batches {args.batches} "
        f"--rounds {args.rounds} --seconds {args.seconds:g}{f' --threads {args.threads}' if args.threads else ''}` "
        f"(torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)\n"
    )
    print(
        "| model | batch | fast path: measured | predicted | error | Python path: measured | predicted | error "
        "| measured fast / Python | predicted fast / Python | operators counted (fast / Python) | co-load (max) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for name, batch, m, p, n, load in rows:
        f, s = PATHS
        print(
            f"| {name} | {batch} | {m[f] * 1e3:.2f} ms | {p[f] * 1e3:.2f} ms | {p[f] / m[f] - 1:+.0%} "
            f"| {m[s] * 1e3:.2f} ms | {p[s] * 1e3:.2f} ms | {p[s] / m[s] - 1:+.0%} "
            f"| {m[f] / m[s]:.2f} | {p[f] / p[s]:.2f} | {n[f]} / {n[s]} | {load:.2f} |"
        )


if __name__ == "__main__":
    main()
