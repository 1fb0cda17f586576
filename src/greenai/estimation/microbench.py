"""Micro-benchmarks of the operation classes, for calibration.

Each benchmark is one PyTorch call of one class and dtype at one size. It lists the
*kernels* op counting (counting.py) records for that call, each with its class, FLOPs and
bytes by counting's conventions (a multiply-add is 2 FLOPs; bytes are the tensor inputs read
plus the outputs written; views are free), so what is fitted here is what `predict` is given.
Each is timed by `timing.run_bench` on copies of its tensors (`make_copies`).

Sizes go from microseconds (where the fixed cost of a call dominates) to tens of
milliseconds (where the rate or the bandwidth does), square and skinny, so that a roofline
`overhead + max(flops / rate, bytes / bandwidth)` can be fitted per class.

Forward benchmarks are timed inside one `torch.inference_mode()` (`pass_mode`), as a model's
inference runs all its operators (entering the mode costs about as much as a tiny operator,
so it is not entered per call). Backward benchmarks time `torch.autograd.grad` of a forward
call, as a training step runs it. Training-forward benchmarks ("forward_train") time, with
autograd on, the few forward kernels that differ in a training step (batch norm's batch
statistics, oneDNN's LSTM training variant). Inputs are constant (`filled`) except where a
kernel's speed depends on values (max pooling's branches: `varied`). What eager PyTorch adds around kernels in a model (module
calls, autograd, the Python share of a call) is measured in eager.py.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from greenai.estimation.ops import GROUPED, SINGLE_IMAGE, OpClass
from greenai.estimation.timing import filled, quiet, varied
from greenai.hardware.cpu import CpuFeatures, this_cpu

FP32, BF16, INT8 = "float32", "bfloat16", "int8"
FORWARD, BACKWARD = "forward", "backward"
# the forward of a training step, where a kernel differs from its inference variant (batch
# norm computes the batch's statistics, oneDNN's RNN keeps a workspace for the backward)
FORWARD_TRAIN = "forward_train"
M, CV, DW, RC = OpClass.MATMUL, OpClass.CONV, OpClass.DEPTHWISE_CONV, OpClass.RECURRENT
EW, NM, SM, RD = OpClass.ELEMENTWISE, OpClass.NORMALIZATION, OpClass.SOFTMAX, OpClass.REDUCTION
EB, DM = OpClass.EMBEDDING, OpClass.DATA_MOVEMENT

Kernel = tuple[OpClass, float, float]  # (class, flops, bytes) of one counted operator call


@dataclass(frozen=True)
class Bench:
    name: str
    op_class: OpClass  # the class this benchmark calibrates
    dtype: str
    pass_: str  # "forward" or "backward"
    rank: int  # size order within its group, 0 = smallest
    kernels: tuple[Kernel, ...]  # what counting records for one call
    make: Callable[[], Callable[[], Any]]  # builds the tensors, returns the call to time
    # a roofline of its own: an operator (aten base name) or a variant of one (OpRecord.variant,
    # e.g. ops.SINGLE_IMAGE); "" for the class's
    op: str = ""

    @property
    def group(self) -> str:
        key = f"{self.op_class.value}/{self.dtype}"
        key = key if self.pass_ == FORWARD else f"{key}/{self.pass_}"
        return f"{key}@{self.op}" if self.op else key

    @property
    def main(self) -> tuple[Kernel, ...]:
        return tuple(k for k in self.kernels if k[0] is self.op_class)

    @property
    def flops(self) -> float:
        return sum(k[1] for k in self.main)

    @property
    def bytes_moved(self) -> float:
        return sum(k[2] for k in self.main)


# -- hardware support ----------------------------------------------------------------------
def bf16_support(features: CpuFeatures | None = None) -> tuple[bool, str]:
    """(native, why) for bf16 on this CPU (or `features`), by hardware.cpu's one rule: native
    means bf16 instructions; oneDNN's bf16 on plain AVX-512 is emulation and does not count."""
    cpu = features if features is not None else this_cpu()
    if cpu.bf16:
        return True, cpu.bf16_detail()
    return False, f"{cpu.bf16_detail()}; measured anyway, at small sizes"


def int8_support() -> tuple[bool, str]:
    import torch

    try:
        import torch.ao.nn.quantized.dynamic
    except ImportError as e:
        return False, f"torch.ao dynamic quantization unavailable ({e})"
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        return False, "no quantized engine in this torch build"
    return True, f"dynamic quantized linear (engine {torch.backends.quantized.engine})"


COLD_BYTES = 64 << 20  # inputs cycled through per benchmark: more than the caches hold
MAX_COPIES = 256


def make_copies(bench: Bench, setup_budget_s: float = 0.05) -> list[Callable[[], Any]]:
    """Copies of a benchmark on different tensors, enough to cycle through COLD_BYTES of
    inputs (at most MAX_COPIES, and as many as fit in setup_budget_s of building)."""
    t0 = time.perf_counter()
    calls = [bench.make()]
    one = time.perf_counter() - t0
    per_call_bytes = max(sum(k[2] for k in bench.kernels), 1.0)
    wanted = min(MAX_COPIES, max(1, math.ceil(COLD_BYTES / per_call_bytes)))
    affordable = max(1, int(setup_budget_s / max(one, 1e-6)))
    while len(calls) < min(wanted, affordable):
        calls.append(bench.make())
    return calls


# -- the suite -----------------------------------------------------------------------------
def _size(dtype: str) -> int:
    return {FP32: 4, BF16: 2, INT8: 1}[dtype]


def _tdtype(dtype: str) -> Any:
    import torch

    return {FP32: torch.float32, BF16: torch.bfloat16}[dtype]


def _inference(op: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: op(*args)  # timed inside pass_mode(): torch.inference_mode()


def pass_mode(bench: Bench) -> contextlib.AbstractContextManager[Any]:
    """The autograd mode a benchmark is timed in: inference mode for forward benchmarks."""
    import torch

    return torch.inference_mode() if bench.pass_ == FORWARD else contextlib.nullcontext()


def _backward(forward: Callable[..., Any], *inputs: Any) -> Callable[[], Any]:
    """The backward of forward(*inputs): autograd.grad of its output, graph kept for repeats."""
    import torch

    out = forward(*inputs)
    grad = torch.full_like(out, 0.5)
    needs = [t for t in inputs if getattr(t, "requires_grad", False)]
    return lambda: torch.autograd.grad(out, needs, grad, retain_graph=True)


def _bench(
    name: str,
    cls: OpClass,
    dtype: str,
    backward: bool,
    kernels: Sequence[Kernel],
    make: Callable[[], Callable[[], Any]],
    op: str = "",
) -> Bench:
    return Bench(
        name,
        cls,
        dtype,
        BACKWARD if backward else FORWARD,
        0,
        tuple((k, float(f), float(b)) for k, f, b in kernels),
        make,
        op,
    )


def matmul_benches(dtype: str, backward: bool = False) -> list[Bench]:
    """Linear layers (addmm; backward: grad_input mm, grad_weight mm, grad_bias sum) and
    batched matmuls (bmm), square and skinny."""
    import torch
    import torch.nn.functional as F

    s = _size(dtype)
    linears = [
        (1, 16, 16),
        (8, 64, 64),
        (64, 128, 128),
        (1, 1024, 1024),
        (32, 512, 512),
        (256, 256, 256),
        (128, 1024, 256),
        (512, 512, 512),
        (2048, 64, 128),
        (4096, 128, 32),
        (64, 4096, 256),
        (1024, 1024, 1024),
    ]
    bmms = [(4, 16, 16, 16), (32, 64, 64, 64), (8, 128, 64, 128), (16, 256, 64, 256)]
    if dtype == BF16:  # emulated on most CPUs: keep it affordable
        linears = [sh for sh in linears if sh[0] * sh[1] * sh[2] <= 64 * 512 * 512][:6]
        bmms = bmms[:2]
    out = []
    for m, k, n in linears:

        def make(m=m, k=k, n=n) -> Callable[[], Any]:
            td = _tdtype(dtype)
            x = filled(m, k, dtype=td, requires_grad=backward)
            w = filled(n, k, dtype=td, requires_grad=backward)
            b = filled(n, dtype=td, requires_grad=backward)
            return _backward(F.linear, x, w, b) if backward else _inference(F.linear, x, w, b)

        f = 2 * m * k * n
        if backward:
            kernels = [
                (M, f, s * (m * n + n * k + m * k)),
                (M, f, s * (m * n + m * k + n * k)),
                (RD, m * n, s * (m * n + n)),
            ]
        else:
            kernels = [(M, f, s * (n + m * k + k * n + m * n))]
        out.append(_bench(f"linear {m}x{k}->{n}", M, dtype, backward, kernels, make))
    for bt, m, k, n in bmms:

        def make_bmm(bt=bt, m=m, k=k, n=n) -> Callable[[], Any]:
            td = _tdtype(dtype)
            a = filled(bt, m, k, dtype=td, requires_grad=backward)
            b = filled(bt, k, n, dtype=td, requires_grad=backward)
            return _backward(torch.bmm, a, b) if backward else _inference(torch.bmm, a, b)

        f = 2 * bt * m * k * n
        one = s * bt * (m * k + k * n + m * n)
        kernels = [(M, f, one), (M, f, one)] if backward else [(M, f, one)]
        out.append(_bench(f"bmm {bt}x{m}x{k}x{n}", M, dtype, backward, kernels, make_bmm))
    return out


def int8_linear_benches() -> list[Bench]:
    import torch

    shapes = [(1, 256, 256), (16, 256, 256), (32, 512, 512), (128, 1024, 1024), (512, 1024, 1024), (64, 4096, 1024)]
    out = []
    for m, k, n in shapes:

        def make(m=m, k=k, n=n) -> Callable[[], Any]:
            import torch.ao.nn.quantized.dynamic as nnqd

            with quiet():
                lin = nnqd.Linear(k, n, dtype=torch.qint8)
            x = filled(m, k)
            return _inference(lin, x)

        # int8 weights; fp32 activations quantized on the fly, fp32 output
        kernels = [(M, 2 * m * k * n, k * n + 4 * n + 4 * m * k + 4 * m * n)]
        out.append(_bench(f"qlinear {m}x{k}->{n}", M, INT8, False, kernels, make))
    return out


def _conv_out(h: int, k: int, stride: int, pad: int) -> int:
    return (h + 2 * pad - k) // stride + 1


def conv_benches(dtype: str, depthwise: bool, backward: bool = False) -> list[Bench]:
    import torch.nn.functional as F

    s = _size(dtype)
    if depthwise:  # (N, C, H, k, stride)
        base = [
            (1, 16, 16, 3, 1),
            (1, 32, 32, 3, 1),
            (8, 64, 32, 3, 1),
            (8, 128, 16, 3, 1),
            (4, 256, 14, 3, 1),
            (8, 32, 64, 3, 2),
            (2, 512, 7, 5, 1),
            (16, 128, 16, 3, 1),
            (2, 32, 16, 3, 1),
            (4, 128, 8, 3, 1),
        ]
        shapes = [(n, c, h, c, k, st) for n, c, h, k, st in base]
    else:  # (N, C, H, K, k, stride)
        shapes = [
            (1, 3, 16, 8, 3, 1),
            (1, 16, 16, 16, 3, 1),
            (8, 3, 32, 32, 3, 1),
            (8, 32, 32, 32, 3, 1),
            (8, 64, 16, 128, 3, 1),
            (4, 64, 56, 64, 3, 1),
            (16, 128, 8, 128, 1, 1),
            (8, 32, 64, 64, 3, 2),
            (2, 256, 14, 256, 3, 1),
            (32, 64, 16, 64, 3, 1),
            # small batches and feature maps, where oneDNN runs far below its peak rate
            (2, 8, 32, 16, 3, 1),
            (4, 16, 16, 32, 3, 1),
            (4, 32, 8, 64, 3, 1),
            (1, 64, 8, 64, 3, 1),
            (1, 128, 14, 128, 3, 1),
        ]
    if dtype == BF16:  # emulated or slow: the smaller sizes, five batched and three of one image
        small = [sh for sh in shapes if sh[0] * sh[1] * sh[2] ** 2 * sh[3] <= 8 * 32 * 32 * 32 * 32]
        one = [] if depthwise else [sh for sh in small if sh[0] == 1][:3]
        shapes = [sh for sh in small if sh not in one][:5] + one
    out = []
    for n, c, h, k_out, k, stride in shapes:
        groups = c if depthwise else 1
        pad = k // 2
        ho = _conv_out(h, k, stride, pad)

        def make(n=n, c=c, h=h, k_out=k_out, k=k, stride=stride, groups=groups, pad=pad):
            td = _tdtype(dtype)
            x = filled(n, c, h, h, dtype=td, requires_grad=backward)
            w = filled(k_out, c // groups, k, k, dtype=td, requires_grad=backward)
            b = filled(k_out, dtype=td, requires_grad=backward)

            def conv(x: Any, w: Any, b: Any) -> Any:
                return F.conv2d(x, w, b, stride=stride, padding=pad, groups=groups)

            return _backward(conv, x, w, b) if backward else _inference(conv, x, w, b)

        f = 2 * n * k_out * ho * ho * (c // groups) * k * k
        xb, wb, bb, ob = n * c * h * h, k_out * (c // groups) * k * k, k_out, n * k_out * ho * ho
        cls = DW if depthwise else CV
        if backward:  # convolution_backward: grad_input and grad_weight (2x the forward)
            kernels = [(cls, 2 * f, s * (2 * xb + 2 * wb + bb + ob))]
        else:
            kernels = [(cls, f, s * (xb + wb + bb + ob))]
        name = f"{'dwconv' if depthwise else 'conv'} {n}x{c}x{h}x{h} k{k_out} {k}x{k}/{stride}"
        # one image: another oneDNN path, ~100-300 us cheaper than a batch (its own roofline,
        # chosen by OpRecord.variant)
        op = SINGLE_IMAGE if n == 1 and not depthwise else ""
        out.append(_bench(name, cls, dtype, backward, kernels, make, op))
    return out


# grouped convolutions (N, C, H, groups; 3x3, stride 1 unless noted, as many outputs as inputs):
# 2 to 32 channels per group (at 4 and 8 the time follows the bytes, not the FLOPs), one image
# and batches, outputs up to 4 MB
GROUPED_SHAPES = [
    (1, 32, 16, 8, 1),
    (4, 64, 16, 16, 1),
    (4, 128, 16, 32, 1),
    (8, 64, 16, 8, 1),
    (4, 256, 8, 32, 1),
    (4, 128, 32, 8, 2),
    (8, 128, 16, 4, 1),
    (16, 64, 32, 4, 1),
]


def grouped_conv_benches() -> list[Bench]:
    """Grouped 3x3 convolutions (float32, forward), a roofline of their own (ops.GROUPED): oneDNN
    runs them group by group in a blocked layout, far below the dense rate with few channels per
    group (benchmarks/grouped_conv.py). Their backward is left to the dense backward roofline: a
    grouped backward roofline (six sizes) made the held-out set's training steps worse in four
    paired replays of four (docs/benchmarks.md)."""
    import torch.nn.functional as F

    s = _size(FP32)
    out = []
    k, pad = 3, 1
    for n, c, h, groups, stride in GROUPED_SHAPES:
        ho = _conv_out(h, k, stride, pad)

        def make(n=n, c=c, h=h, groups=groups, stride=stride) -> Callable[[], Any]:
            x = filled(n, c, h, h)
            w = filled(c, c // groups, k, k)
            return _inference(lambda x, w: F.conv2d(x, w, None, stride=stride, padding=pad, groups=groups), x, w)

        f = 2 * n * c * ho * ho * (c // groups) * k * k
        kernels = [(CV, f, s * (n * c * h * h + c * (c // groups) * k * k + n * c * ho * ho))]
        name = f"grouped conv {n}x{c}x{h}x{h} g{groups} 3x3/{stride}"
        out.append(_bench(name, CV, FP32, False, kernels, make, GROUPED))
    return out


def lstm_benches(dtype: str, backward: bool = False) -> list[Bench]:
    """One nn.LSTM layer (fused mkldnn_rnn_layer on CPU): zeros x2, the layer, stack x2."""
    import torch

    s = _size(dtype)
    shapes = [
        (1, 4, 16, 16),
        (4, 8, 32, 32),
        (8, 16, 64, 64),
        (16, 32, 64, 128),
        (32, 32, 128, 256),
        (8, 64, 256, 256),
        (64, 16, 32, 64),
    ]  # (batch, seq, input, hidden)
    if dtype == BF16:
        shapes = shapes[:4]
    out = []
    for bsz, t, i, hdim in shapes:

        def make(bsz=bsz, t=t, i=i, hdim=hdim):
            td = _tdtype(dtype)
            lstm = torch.nn.LSTM(i, hdim, batch_first=True).to(td)
            lstm.requires_grad_(backward)
            x = filled(bsz, t, i, dtype=td, requires_grad=backward)
            if backward:
                return _backward(lambda x: lstm(x)[0], x)
            return _inference(lstm, x)

        per_step = 2 * 4 * hdim * (i + hdim) + 38 * hdim
        f = bsz * t * per_step
        weights = 4 * hdim * (i + hdim) + 8 * hdim
        state = bsz * hdim
        if backward:
            layer_bytes = s * (2 * bsz * t * i + 2 * weights + 2 * bsz * t * hdim + 6 * state)
            kernels = [(RC, 2 * f, layer_bytes)]
        else:
            layer_bytes = s * (bsz * t * i + weights + 2 * state + bsz * t * hdim + 2 * state)
            kernels = [
                (DM, 0, s * state),
                (DM, 0, s * state),
                (RC, f, layer_bytes),
                (DM, 0, s * 2 * state),
                (DM, 0, s * 2 * state),
            ]
        out.append(_bench(f"lstm {bsz}x{t}x{i}->{hdim}", RC, dtype, backward, kernels, make))
    return out


def train_forward_benches(dtype: str) -> list[Bench]:
    """Forward kernels that differ in a training step (grad enabled, modules in train mode),
    each with a roofline of its own for that pass: batch norm computes the batch's mean and
    variance (a reduction over N x H x W per channel, parallel over channels only) instead of
    applying stored statistics, ~10x its inference time measured here; oneDNN's LSTM runs its
    forward_training variant, which keeps a workspace for the backward (oneDNN RNN docs:
    "prop_kind::forward_training")."""
    import torch
    import torch.nn.functional as F

    s = _size(dtype)
    out = []
    for n_, c, h in [(1, 16, 8), (4, 16, 16), (8, 16, 32), (8, 32, 32), (16, 64, 16), (16, 64, 32)]:

        def make(n_=n_, c=c, h=h):
            td = _tdtype(dtype)
            x = filled(n_, c, h, h, dtype=td, requires_grad=True)
            w = torch.ones(c, dtype=td, requires_grad=True)
            b = torch.zeros(c, dtype=td, requires_grad=True)
            rm, rv = torch.zeros(c, dtype=td), torch.ones(c, dtype=td)
            return lambda: F.batch_norm(x, rm, rv, w, b, training=True)

        n = n_ * c * h * h  # counting: 5 + 2 (affine) FLOPs per element; x, w, b, running
        kernels = [(NM, 7 * n, s * (2 * n + 6 * c))]  # stats read; out, mean, invstd written
        out.append(
            Bench(
                f"batch_norm train {n_}x{c}x{h}x{h}",
                NM,
                dtype,
                FORWARD_TRAIN,
                0,
                tuple((k, float(f), float(b_)) for k, f, b_ in kernels),
                make,
                "native_batch_norm",
            )
        )
    for bsz, t, i, hdim in [(1, 4, 16, 16), (4, 8, 32, 32), (8, 16, 64, 64), (16, 32, 64, 128), (32, 32, 128, 256)]:

        def make_lstm(bsz=bsz, t=t, i=i, hdim=hdim):
            td = _tdtype(dtype)
            lstm = torch.nn.LSTM(i, hdim, batch_first=True).to(td)
            x = filled(bsz, t, i, dtype=td, requires_grad=True)
            return lambda: lstm(x)

        per_step = 2 * 4 * hdim * (i + hdim) + 38 * hdim
        weights = 4 * hdim * (i + hdim) + 8 * hdim
        state = bsz * hdim
        layer_bytes = s * (bsz * t * i + weights + 2 * state + bsz * t * hdim + 2 * state)
        kernels = [
            (DM, 0, s * state),
            (DM, 0, s * state),
            (RC, bsz * t * per_step, layer_bytes),
            (DM, 0, s * 2 * state),
            (DM, 0, s * 2 * state),
        ]
        out.append(
            Bench(
                f"lstm train {bsz}x{t}x{i}->{hdim}",
                RC,
                dtype,
                FORWARD_TRAIN,
                0,
                tuple((k, float(f), float(b_)) for k, f, b_ in kernels),
                make_lstm,
            )
        )
    return out


# Elementwise operators whose cost per element is far from a streaming add's on CPUs
# (transcendentals, random numbers): each gets its own roofline, keyed by its aten name.
# name -> (call, flops per element forward, backward operator, flops per element backward)
OWN_ELEMENTWISE: dict[str, tuple[str, float, str, float]] = {
    "gelu": ("gelu", 8, "gelu_backward", 12),
    "sigmoid": ("sigmoid", 4, "sigmoid_backward", 3),
    "tanh": ("tanh", 5, "tanh_backward", 3),
    "silu": ("silu", 5, "silu_backward", 9),
    "exp": ("exp", 1, "", 0),
    "sqrt": ("sqrt", 1, "", 0),
    "bernoulli": ("bernoulli", 1, "", 0),  # dropout's mask
}


def elementwise_benches(dtype: str, backward: bool = False) -> list[Bench]:
    """Streaming operators (the class roofline) and, each on its own, the ones of
    OWN_ELEMENTWISE."""
    import torch
    import torch.nn.functional as F

    s = _size(dtype)
    sizes = [256, 4096, 65536, 1 << 18, 1 << 20]  # outputs up to 4 MB (see suite())
    if dtype == BF16:
        sizes = sizes[:4]
    calls: dict[str, Callable[..., Any]] = {
        "add": torch.add,
        "mul": torch.mul,
        "relu": F.relu,
        "hardtanh": lambda x: F.hardtanh(x, 0.0, 6.0),
        "gelu": F.gelu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "silu": F.silu,
        "exp": torch.exp,
        "sqrt": torch.sqrt,  # on |x| (below): a square root of a negative is a slow NaN path
        "bernoulli": lambda x: x.bernoulli_(0.9),
    }
    plain: dict[str, tuple[int, float, float]] = {  # name -> (inputs, flops/elt fwd, bwd)
        "add": (2, 1, 0),
        "mul": (2, 1, 1),
        "relu": (1, 1, 1),
        "hardtanh": (1, 1, 2),
    }
    out = []
    for name, call in calls.items():
        own = OWN_ELEMENTWISE.get(name)
        if own is not None:
            arity, fpe, bwd_op, bpe = 1, own[1], own[2], own[3]
        else:
            arity, fpe, bpe = plain[name]
            bwd_op = ""
        if backward and (name == "add" or (own is not None and not bwd_op)):
            continue  # add's backward runs no kernel; exp and bernoulli: forward only
        for n in sizes if own is None else sizes[::2] if dtype == FP32 else sizes[:3]:

            def make(call=call, arity=arity, n=n, name=name):
                td = _tdtype(dtype)
                xs = [filled(n, dtype=td, requires_grad=backward) for _ in range(arity)]
                if name == "sqrt":
                    xs = [x.abs() for x in xs]
                return _backward(call, *xs) if backward else _inference(call, *xs)

            if backward:  # mul: two products; the others one kernel reading grad and input
                kernels = [(EW, bpe * n, 3 * s * n)] * (2 if name == "mul" else 1)
            elif name == "bernoulli":  # in place: the tensor is written only
                kernels = [(EW, fpe * n, s * n)]
            else:
                kernels = [(EW, fpe * n, s * n * (arity + 1))]
            op = (bwd_op if backward else own[0]) if own is not None else ""
            out.append(_bench(f"{name} {n}", EW, dtype, backward, kernels, make, op))
    return out


def normalization_benches(dtype: str, backward: bool = False) -> list[Bench]:
    import torch
    import torch.nn.functional as F

    s = _size(dtype)
    out = []
    for rows, dim in [(8, 64), (64, 256), (512, 512), (1024, 768), (2048, 512)]:

        def make(rows=rows, dim=dim):
            td = _tdtype(dtype)
            x = filled(rows, dim, dtype=td, requires_grad=backward)
            w = torch.ones(dim, dtype=td, requires_grad=backward)
            b = torch.zeros(dim, dtype=td, requires_grad=backward)
            op = lambda x, w, b: F.layer_norm(x, (dim,), w, b)
            return _backward(op, x, w, b) if backward else _inference(op, x, w, b)

        n = rows * dim
        if backward:
            kernels = [(NM, 14 * n, s * (3 * n + 4 * dim) + 8 * rows)]
        else:
            kernels = [(NM, 7 * n, s * (2 * n + 2 * dim) + 8 * rows)]
        out.append(_bench(f"layer_norm {rows}x{dim}", NM, dtype, backward, kernels, make))
    for n_, c, h in [(1, 16, 8), (8, 32, 32), (8, 64, 32), (16, 64, 32)]:

        def make_bn(n_=n_, c=c, h=h):
            td = _tdtype(dtype)
            x = filled(n_, c, h, h, dtype=td, requires_grad=backward)
            w = torch.ones(c, dtype=td, requires_grad=backward)
            b = torch.zeros(c, dtype=td, requires_grad=backward)
            rm, rv = torch.zeros(c, dtype=td), torch.ones(c, dtype=td)
            op = lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=backward)
            return _backward(op, x, w, b) if backward else _inference(op, x, w, b)

        n = n_ * c * h * h
        if backward:  # training statistics forward, native_batch_norm_backward
            kernels = [(NM, 14 * n, s * (3 * n + 7 * c))]
        else:
            kernels = [(NM, 4 * n, s * (2 * n + 4 * c))]
        out.append(_bench(f"batch_norm {n_}x{c}x{h}x{h}", NM, dtype, backward, kernels, make_bn))
    return out


def softmax_benches(dtype: str, backward: bool = False) -> list[Bench]:
    import torch

    s = _size(dtype)
    out = []
    for rows, dim in [(4, 16), (64, 128), (256, 1024), (1024, 1024), (128, 8192)]:
        for name, op in [("softmax", torch.softmax), ("log_softmax", torch.log_softmax)]:

            def make(rows=rows, dim=dim, op=op):
                td = _tdtype(dtype)
                x = filled(rows, dim, dtype=td, requires_grad=backward)
                f = lambda x: op(x, -1)
                return _backward(f, x) if backward else _inference(f, x)

            n = rows * dim
            kernels = [(SM, 4 * n, 3 * s * n)] if backward else [(SM, 5 * n, 2 * s * n)]
            out.append(_bench(f"{name} {rows}x{dim}", SM, dtype, backward, kernels, make))
    return out


def reduction_benches(dtype: str, backward: bool = False) -> list[Bench]:
    """Sums and means along and across rows, global average pooling; max pooling (with
    indices, as autograd needs them) has a roofline of its own: far slower per byte."""
    import torch.nn.functional as F

    s = _size(dtype)
    out = []
    if not backward:
        for rows, dim in [(16, 16), (64, 1024), (512, 1024), (1024, 1024)]:
            n = rows * dim

            def make(rows=rows, dim=dim):
                x = filled(rows, dim, dtype=_tdtype(dtype))
                return _inference(lambda: x.sum(-1))

            out.append(_bench(f"sum {rows}x{dim}", RD, dtype, False, [(RD, n, s * (n + rows))], make))

            def make_mean(rows=rows, dim=dim):
                x = filled(rows, dim, dtype=_tdtype(dtype))
                return _inference(lambda: x.mean(0))

            out.append(_bench(f"mean0 {rows}x{dim}", RD, dtype, False, [(RD, n, s * (n + dim))], make_mean))
        for n_, c, h in [(1, 8, 16), (8, 32, 32), (8, 64, 56)]:
            m = n_ * c * h * h

            def make_avg(n_=n_, c=c, h=h):
                x = filled(n_, c, h, h, dtype=_tdtype(dtype))
                return _inference(lambda: F.adaptive_avg_pool2d(x, 1))

            out.append(_bench(f"avg_pool {n_}x{c}x{h}x{h}", RD, dtype, False, [(RD, m, s * (m + n_ * c))], make_avg))
    for n_, c, h in [
        (1, 8, 16),
        (2, 16, 16),
        (4, 8, 32),
        (4, 16, 32),
        (8, 16, 32),
        (8, 32, 32),
        (16, 64, 16),
        (32, 16, 32),
        (8, 64, 56),
    ]:  # >= 6 sizes: a size correction
        m = n_ * c * h * h
        q = m // 4

        def make_pool(n_=n_, c=c, h=h):
            x = varied(n_, c, h, h, dtype=_tdtype(dtype), requires_grad=backward)  # values matter
            op = lambda x: F.max_pool2d(x, 2)
            return _backward(op, x) if backward else _inference(op, x)

        if backward:  # reads grad and indices, writes the input's gradient
            kernels = [(RD, q, s * q + 8 * q + 2 * s * m)]
            op_name = "max_pool2d_with_indices_backward"
        else:
            kernels = [(RD, 4 * q, s * (m + q) + 8 * q)]
            op_name = "max_pool2d_with_indices"
        out.append(_bench(f"max_pool2d {n_}x{c}x{h}x{h}", RD, dtype, backward, kernels, make_pool, op_name))
    return out


def embedding_benches(dtype: str, backward: bool = False) -> list[Bench]:
    import torch
    import torch.nn.functional as F

    s = _size(dtype)
    out = []
    for vocab, dim, tokens in [
        (1000, 16, 32),
        (10000, 64, 512),
        (30000, 128, 4096),
        (50000, 256, 4096),
        (5000, 512, 2048),
        (100000, 64, 1024),
    ]:

        def make(vocab=vocab, dim=dim, tokens=tokens):
            w = filled(vocab, dim, dtype=_tdtype(dtype), requires_grad=backward)
            idx = torch.randint(0, vocab, (tokens,))
            f = lambda w: F.embedding(idx, w)
            return _backward(f, w) if backward else _inference(f, w)

        if backward:  # embedding_dense_backward writes the whole (vocab x dim) gradient
            kernels = [(EB, tokens * dim, s * tokens * dim + 8 * tokens + s * vocab * dim)]
        else:
            kernels = [(EB, 0, 2 * s * tokens * dim + 8 * tokens)]
        out.append(_bench(f"embedding {vocab}x{dim} [{tokens}]", EB, dtype, backward, kernels, make))
    # EmbeddingBag (mean of each bag): its own kernel, and a roofline of its own
    for vocab, dim, bags, per_bag in [
        (1000, 16, 4, 8),
        (20000, 32, 32, 20),
        (50000, 64, 128, 20),
        (20000, 128, 256, 32),
    ]:

        def make_bag(vocab=vocab, dim=dim, bags=bags, per_bag=per_bag):
            w = filled(vocab, dim, dtype=_tdtype(dtype), requires_grad=backward)
            idx = torch.randint(0, vocab, (bags, per_bag))
            f = lambda w: F.embedding_bag(idx, w, mode="mean")
            return _backward(f, w) if backward else _inference(f, w)

        tokens = bags * per_bag
        if backward:
            kernels = [(EB, tokens * dim, s * bags * dim + 8 * (2 * tokens + 3 * bags) + s * vocab * dim)]
            op = "_embedding_bag_backward"
        else:  # offsets (arange); reads the rows it gathers; writes the bags, offset2bag, bag
            # sizes, max indices (the training forward, _embedding_bag, costs the same)
            kernels = [
                (DM, 0, 8 * bags),
                (EB, tokens * dim, s * tokens * dim + 8 * (tokens + bags) + s * bags * dim + 8 * (tokens + 2 * bags)),
            ]
            op = "_embedding_bag_forward_only"
        out.append(
            _bench(f"embedding_bag {vocab}x{dim} [{bags}x{per_bag}]", EB, dtype, backward, kernels, make_bag, op)
        )
    return out


def data_movement_benches(dtype: str) -> list[Bench]:
    import torch

    s = _size(dtype)
    out = []
    for n in [16, 64, 256, 512, 1024]:

        def make_clone(n=n):
            x = filled(n, n, dtype=_tdtype(dtype))
            return _inference(lambda: x.clone())

        out.append(_bench(f"clone {n}x{n}", DM, dtype, False, [(DM, 0, 2 * s * n * n)], make_clone))
        if n > 512:
            continue

        def make_cat(n=n):
            a, b = filled(n, n, dtype=_tdtype(dtype)), filled(n, n, dtype=_tdtype(dtype))
            return _inference(lambda: torch.cat([a, b], 1))

        out.append(_bench(f"cat {n}x{n}x2", DM, dtype, False, [(DM, 0, 4 * s * n * n)], make_cat))

        def make_stack(n=n):
            a, b = filled(n, n, dtype=_tdtype(dtype)), filled(n, n, dtype=_tdtype(dtype))
            return _inference(lambda: torch.stack([a, b]))

        out.append(_bench(f"stack {n}x{n}x2", DM, dtype, False, [(DM, 0, 4 * s * n * n)], make_stack))
    return out


def fused_optimizer_benches() -> list[Bench]:
    """Adam's fused CPU kernel on one float32 parameter tensor of n elements (its own roofline:
    13 FLOPs per element in registers, far from a streaming add's). Its calls' fixed and
    per-tensor costs are measured apart (eager.fused_optimizer_costs). Bytes as counting
    records them: parameters, gradients and both moments read and written, plus the step."""
    import torch

    from greenai.estimation.op_rules import FUSED_OPTIMIZER_FLOPS

    out = []
    for n in (4096, 65536, 1 << 18, 1 << 20):

        def make(n=n) -> Callable[[], Any]:
            param, grad, m = (varied(n) for _ in range(3))
            v = varied(n) + 0.1  # second moments of nonzero gradients (sqrt of zeros is slower)
            step = torch.ones(())
            return lambda: torch._fused_adam_(
                [param],
                [grad],
                [m],
                [v],
                [],
                [step],
                lr=1e-3,
                beta1=0.9,
                beta2=0.999,
                weight_decay=0.0,
                eps=1e-8,
                amsgrad=False,
                maximize=False,
            )

        kernels = [(EW, FUSED_OPTIMIZER_FLOPS["_fused_adam"] * n, 32 * n + 4)]
        out.append(_bench(f"fused adam {n}", EW, FP32, False, kernels, make, "_fused_adam"))
    return out


def suite(dtypes: tuple[str, ...] = (FP32, BF16, INT8), backward: bool = True) -> list[Bench]:
    """Every benchmark for the dtypes, ranked by size within each group.

    Sizes stop where an operator's output reaches about 4 MB: beyond it the allocator takes
    fresh pages from the OS for every output (page faults cost as much as the kernel) and the
    traffic leaves the caches, a regime a roofline per class does not describe; the models
    predicted are expected to stay below it, larger operators are extrapolated."""
    benches: list[Bench] = []
    for dtype in dtypes:
        if dtype == INT8:
            benches += int8_linear_benches()
            continue
        benches += matmul_benches(dtype) + conv_benches(dtype, False) + conv_benches(dtype, True)
        benches += lstm_benches(dtype) + elementwise_benches(dtype) + normalization_benches(dtype)
        benches += softmax_benches(dtype) + reduction_benches(dtype) + embedding_benches(dtype)
        benches += data_movement_benches(dtype)
        if dtype == FP32:
            benches += grouped_conv_benches()
        if backward and dtype == FP32:
            benches += matmul_benches(dtype, True) + conv_benches(dtype, False, True)
            benches += conv_benches(dtype, True, True) + lstm_benches(dtype, True)
            benches += elementwise_benches(dtype, True) + normalization_benches(dtype, True)
            benches += softmax_benches(dtype, True) + embedding_benches(dtype, True)
            benches += reduction_benches(dtype, True) + train_forward_benches(dtype)
            benches += fused_optimizer_benches()
    return _ranked(benches)


def _ranked(benches: list[Bench], per_bf16_group: int = 5) -> list[Bench]:
    """Rank benchmarks of each group by work (flops + bytes), smallest first; emulated bf16
    groups keep at most `per_bf16_group` sizes, spread from smallest to largest."""
    groups: dict[str, list[Bench]] = {}
    for b in benches:
        groups.setdefault(b.group, []).append(b)
    out: list[Bench] = []
    for members in groups.values():
        members.sort(key=lambda b: (b.flops + b.bytes_moved, b.name))
        if members[0].dtype == BF16 and len(members) > per_bf16_group:
            step = (len(members) - 1) / (per_bf16_group - 1)
            members = [members[round(i * step)] for i in range(per_bf16_group)]
        out += [Bench(b.name, b.op_class, b.dtype, b.pass_, i, b.kernels, b.make, b.op) for i, b in enumerate(members)]
    return out


def priority(bench: Bench) -> int:
    """Which groups a small budget serves first: float32 classes, their backward, operators
    (and variants) with their own roofline, int8, bfloat16."""
    if bench.dtype == BF16:
        return 4
    if bench.dtype == INT8:
        return 3
    if bench.op:
        return 2
    return 1 if bench.pass_ != FORWARD else 0
