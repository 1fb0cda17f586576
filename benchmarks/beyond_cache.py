"""Cost per byte (and per parameter) of memory-bound work against tensor size, beyond the caches.

    python benchmarks/beyond_cache.py [--profile P] [--rounds 3] [--mib 0.25,1,4,16,64,128]   # ~1-2 min

Calibration's micro-benchmarks stop where an operator's output reaches about 4 MB, so the
rooflines of models whose parameters run to tens of megabytes (a 4096 x 4096 weight is 64 MiB;
this VM's last-level cache is 32 MiB) are extrapolated. Per size of one float32 tensor, each
timed after a pass over 32 MiB of other memory (timing.evict_caches, as calibration times the
optimizer), medians per round, `--rounds` rounds with the sizes in a rotating order, then the
least of the rounds' medians (load only adds time), and the minor page faults per call (last
round):

- `add_ in place`: `x.add_(y)`, 3 tensors' bytes (as op counting counts them);
- `add (fresh output)`: `torch.add(x, y)`, its output allocated anew each call (above glibc's
  largest mmap threshold, 32 MiB, every such allocation is a fresh mapping: a page fault per
  4 KiB page on first touch, and an munmap when freed);
- `Adam step`: PyTorch's default (for-loop) `Adam.step()` on one parameter of that size, with
  nonzero moments, per parameter;
- `Adam step (zero state)`: the same with a zero gradient and second moment (the rows of an
  embedding table no batch has looked up: `sqrt` of zeros, and nothing else changes);
- `linear backward`: `autograd.grad` of `F.linear` (1024 inputs) at batch 4 for the weight,
  per weight (the weight gradient is a fresh output of the weight's size);
- `embedding backward`: the gradient of `F.embedding` over 256 ids for a table of that size
  (64 columns), per parameter (`embedding_dense_backward` writes a fresh, zeroed table).

`--calibration-faults` instead times a few of calibration's own micro-benchmarks as calibration
does (run_bench over copies of their inputs) and counts the minor page faults per call: memory
the heap gave back to the kernel (glibc trims the top of its heap once more than twice its mmap
threshold is free there) and took again, which a roofline fitted on them absorbs.

With `--profile P` each is predicted too (op counting on fake tensors + predict, as the
estimator would): measured / predicted per size shows where the calibrated roofline stops
describing the machine. The last column of the table is the CPUs other processes kept busy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import cpu_sample, parser, rotations

KINDS = (
    "add_ in place",
    "add (fresh output)",
    "Adam step",
    "Adam step (zero state)",
    "linear backward",
    "embedding backward",
)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _adam_module(n: int, zero: bool) -> tuple[Any, Callable[[], Any], Any]:
    """A module of one parameter of n elements, trained with Adam: (module, its step, input)."""
    import torch
    from torch import nn

    class One(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.rand(n))

        def forward(self, x: Any) -> Any:
            return self.p * x

    m = One()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.p.grad = torch.zeros(n) if zero else torch.rand(n)
    opt.step()
    if zero:
        opt.state[m.p]["exp_avg_sq"].zero_()
        opt.state[m.p]["exp_avg"].zero_()
    return m, opt.step, torch.ones(n)


def cases(n: int) -> dict[str, tuple[Callable[[], Any], float, Callable[[], Any]]]:
    """Per kind: (the call to time, its units (bytes or parameters), a builder of
    (model, input, training) for op counting, or None)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    x, y = torch.rand(n), torch.rand(n)
    out: dict[str, Any] = {}
    out["add_ in place"] = (lambda: x.add_(y), 12.0 * n, None)
    out["add (fresh output)"] = (lambda: torch.add(x, y), 12.0 * n, None)
    for kind, zero in (("Adam step", False), ("Adam step (zero state)", True)):
        m, step, ones = _adam_module(n, zero)
        out[kind] = (step, float(n), (m, ones))
    k = 1024
    cols = max(n // k, 1)
    w = torch.rand(cols, k, requires_grad=True)
    xb = torch.rand(4, k)
    yb = F.linear(xb, w)
    g = torch.ones_like(yb)
    out["linear backward"] = (
        lambda: torch.autograd.grad(yb, [w], g, retain_graph=True),
        float(n),
        (nn.Linear(k, cols, bias=False), torch.rand(4, k)),
    )
    dim = 64
    table = torch.rand(max(n // dim, 256), dim, requires_grad=True)
    ids = torch.randint(0, table.shape[0], (256,))
    e = F.embedding(ids, table)
    ge = torch.ones_like(e)
    out["embedding backward"] = (
        lambda: torch.autograd.grad(e, [table], ge, retain_graph=True),
        float(n),
        (nn.Embedding(table.shape[0], dim), ids),
    )
    return out


def predicted(kind: str, n: int, built: Any, profile: Any) -> float:
    """The estimator's time for one call of `kind` at n elements."""
    from greenai.estimation.counting import count_ops
    from greenai.estimation.ops import ALWAYS_MAPPED_BYTES, OpClass, OpCounts, OpRecord, Pass
    from greenai.estimation.predict import predict

    if kind.startswith("add"):
        mapped = 4.0 * n if 4 * n >= ALWAYS_MAPPED_BYTES else 0.0  # as op counting marks a new output
        rec = OpRecord(
            "aten.add.Tensor",
            OpClass.ELEMENTWISE,
            "float32",
            float(n),
            8.0 * n,
            4.0 * n,
            "",
            Pass.FORWARD,
            mapped_bytes=mapped,
        )
        if kind.startswith("add_"):
            rec = OpRecord(
                "aten.add_.Tensor", OpClass.ELEMENTWISE, "float32", float(n), 8.0 * n, 4.0 * n, "", Pass.FORWARD
            )
        counts = OpCounts((rec,), 0, 0, 0, 1)
        return predict(counts, profile).time_s
    model, x = built
    if kind.startswith("Adam"):
        counts = count_ops(model, x, training=True, optimizer="adam")
        return predict(counts, profile).per_pass["optimizer"][0]
    counts = count_ops(model, x, training=True, optimizer=None)
    pred = predict(counts, profile)
    backward = pred.per_pass["backward"][0]
    return backward - profile.backward_call_s  # autograd.grad of a kept graph: no engine start counted


FAULT_BENCHES = (
    "conv 8x64x16x16 k128 3x3/1",
    "conv 32x64x16x16 k64 3x3/1",
    "grouped conv 16x64x32x32 g4 3x3/1",
    "grouped conv 8x64x16x16 g8 3x3/1",
    "linear 1024x1024->1024",
    "layer_norm 2048x512",
)


def calibration_faults(seconds: float) -> None:
    """Minor page faults per call of some of calibration's micro-benchmarks, timed as it times them."""
    import resource

    import torch

    from greenai.estimation import microbench as mb
    from greenai.estimation.timing import run_bench

    benches = {b.name: b for b in mb.suite((mb.FP32,), backward=False)}
    print(f"Command: `python benchmarks/beyond_cache.py --calibration-faults` ({torch.get_num_threads()} threads)\n")
    print("| micro-benchmark | output | copies of its inputs | median time per call | minor faults per call |")
    print("|---|---:|---:|---:|---:|")
    for name in FAULT_BENCHES:
        bench = benches[name]
        calls = mb.make_copies(bench, 0.05)
        with mb.pass_mode(bench):
            out = calls[0]()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            timing = run_bench(calls, seconds)
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (
                timing.calls + timing.warmup_calls
            )
        size = out.numel() * out.element_size() / 2**20
        print(f"| {name} | {size:.2f} MiB | {len(calls)} | {timing.time_s * 1e6:.0f} µs | {faults:,.0f} |")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--profile", type=Path, default=None, help="a calibration profile: also predict each size")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5, help="timed calls per size, kind and round")
    ap.add_argument("--mib", default="0.25,1,4,16,64,128", help="sizes of one float32 tensor, MiB")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of the kinds")
    ap.add_argument("--calibration-faults", action="store_true", help="page faults of calibration's micro-benchmarks")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    import torch

    from greenai.estimation.timing import evict_caches

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.calibration_faults:
        calibration_faults(0.3)
        return

    kinds = [k for k in args.kinds.split(",") if k]
    sizes = [int(m * 2**20 / 4) for m in floats(args.mib)]
    profile = None
    if args.profile is not None:
        from greenai.estimation.profile import load_profile

        profile = load_profile(args.profile, strict=False)
    import resource

    times: dict[tuple[str, int], list[float]] = {}
    faults: dict[tuple[str, int], float] = {}
    loads: list[float] = []
    for _, order in rotations(sizes, args.rounds):
        before = cpu_sample()
        for n in order:
            built = cases(n)
            for kind in kinds:
                call = built[kind][0]
                call()
                ts = []
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                for _ in range(args.reps):
                    evict_caches()
                    a = time.perf_counter()
                    call()
                    ts.append(time.perf_counter() - a)
                faults[(kind, n)] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / args.reps
                times.setdefault((kind, n), []).append(statistics.median(ts))
            del built
        loads.append(cpu_sample().others_cores(before))
    print(
        f"Command: `python benchmarks/beyond_cache.py --rounds {args.rounds} --reps {args.reps} --mib {args.mib}"
        f"{f' --threads {args.threads}' if args.threads else ''}{' --profile P' if profile else ''}` "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"other processes kept {min(loads):.2f}-{max(loads):.2f} CPUs busy over the rounds)\n"
    )
    head = "| kind | one tensor | time | per byte or parameter | minor faults per call |"
    head += " predicted | measured / predicted |" if profile else ""
    print(head)
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if profile else ""))
    for kind in kinds:
        for n in sizes:
            built = cases(n) if profile else None
            t = min(times[(kind, n)])
            units = 12.0 * n if kind.startswith("add") else float(n)
            per = t / units * 1e9
            unit = "ns/B" if kind.startswith("add") else "ns/param"
            row = f"| {kind} | {n * 4 / 2**20:g} MiB | {t * 1e3:.3f} ms | {per:.3f} {unit} | {faults[(kind, n)]:,.0f} |"
            if profile is not None and built is not None:
                p = predicted(kind, n, built[kind][2], profile)
                row += f" {p * 1e3:.3f} ms | {t / p:.2f}x |"
            print(row)


if __name__ == "__main__":
    main()
