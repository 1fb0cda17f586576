"""Per-operator rules: which class an aten op belongs to, and its FLOPs and bytes.

The conventions (FLOPs per element of elementwise ops, activations, softmax, normalization,
reductions; bytes of views, copies and gathers; classes of convolutions, fused RNN layers,
attention and quantized linears) are documented in `greenai.estimation.counting`, which
applies these rules to every aten call it sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import (
    flop_registry,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

from greenai.estimation.ops import GROUPED, SINGLE_IMAGE, OpClass

_aten = torch.ops.aten


class Call:
    """One operator call: arguments by schema name, flattened inputs and outputs."""

    __slots__ = ("_named", "args", "func", "kwargs", "out")

    def __init__(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        self.func, self.args, self.kwargs, self.out = func, args, kwargs, out
        self._named: dict[str, Any] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        if self._named is None:
            named = {}
            for i, a in enumerate(self.func._schema.arguments):
                if a.name in self.kwargs:
                    named[a.name] = self.kwargs[a.name]
                elif i < len(self.args) and not a.kwarg_only:
                    named[a.name] = self.args[i]
            self._named = named
        return self._named.get(name, default)

    def ins(self) -> list[Tensor]:
        return [t for t in tree_flatten((self.args, self.kwargs))[0] if isinstance(t, Tensor)]

    def outs(self) -> list[Tensor]:
        return [t for t in tree_flatten(self.out)[0] if isinstance(t, Tensor)]

    def main_numel(self) -> int:
        """Elements of the main result: the first output; for foreach ops the whole list;
        for in-place foreach ops (which return nothing) the list they update."""
        if self.func._schema.name.startswith("aten::_foreach_"):
            main = self.out if self.out else (self.args[0] if self.args else None)
        else:
            main = self.out[0] if isinstance(self.out, (tuple, list)) and self.out else self.out
        return sum(t.numel() for t in tree_flatten(main)[0] if isinstance(t, Tensor))

    def first_arg_numel(self) -> int:
        """Elements of the first argument (a tensor, or a list of them for foreach ops)."""
        first = self.args[0] if self.args else None
        return sum(t.numel() for t in tree_flatten(first)[0] if isinstance(t, Tensor))


def nbytes(t: Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


# --------------------------------------------------------------------------- formulas
# Each formula maps a Call to FLOPs. Constants follow the convention in the module
# docstring; the ones that are a choice rather than an arithmetic count say so.

# FLOPs per element of elementwise ops, by base name ("add_" and "_foreach_add_" -> "add").
_ELEMENTWISE_COST: dict[str, float] = {
    **dict.fromkeys(
        [
            "add",
            "sub",
            "rsub",
            "mul",
            "div",
            "neg",
            "abs",
            "reciprocal",
            "sqrt",
            "rsqrt",
            "exp",
            "exp2",
            "expm1",
            "log",
            "log2",
            "log10",
            "log1p",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "atan2",
            "sinh",
            "cosh",
            "erf",
            "erfc",
            "erfinv",
            "sign",
            "sgn",
            "floor",
            "ceil",
            "round",
            "trunc",
            "frac",
            "remainder",
            "fmod",
            "pow",
            "square",
            "maximum",
            "minimum",
            "fmax",
            "fmin",
            "clamp",
            "clamp_min",
            "clamp_max",
            "clip",
            "relu",
            "relu6",
            "threshold",
            "threshold_backward",
            "where",
            "masked_fill",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "logical_and",
            "logical_or",
            "logical_not",
            "logical_xor",
            "bitwise_and",
            "bitwise_or",
            "bitwise_xor",
            "bitwise_not",
            "isnan",
            "isinf",
            "isfinite",
            "nan_to_num",
            "copysign",
            "heaviside",
            "xlogy",
            "hardtanh",
            "leaky_relu",
            "_prelu_kernel",
            "bernoulli",
            "normal",
            "uniform",
            "rand",
            "randn",
            "rand_like",
            "randn_like",
            "randint",
            "exponential",
            "_conj",
            "mvlgamma",
            "lgamma",
            "digamma",
            "hardshrink",
            "softshrink",
        ],
        1.0,
    ),
    "addcmul": 3.0,  # self + value * t1 * t2
    "addcdiv": 3.0,  # self + value * t1 / t2
    "lerp": 3.0,  # self + w * (end - self)
    "sigmoid": 4.0,  # 1 / (1 + exp(-x))
    "tanh": 5.0,  # (exp(2x) - 1) / (exp(2x) + 1)
    "silu": 5.0,  # x * sigmoid(x)
    "gelu": 8.0,  # convention: erf form 5, tanh form 13
    "softplus": 4.0,  # log(1 + exp(x)) with a threshold test
    "elu": 4.0,  # x > 0 ? x : a * (exp(x) - 1)
    "celu": 5.0,
    "selu": 5.0,
    "mish": 10.0,  # x * tanh(softplus(x))
    "hardswish": 5.0,  # x * min(max(x + 3, 0), 6) / 6
    "hardsigmoid": 4.0,
    "log_sigmoid_forward": 6.0,
    "native_dropout": 2.0,  # random draw + scaled mask multiply
    "native_dropout_backward": 2.0,
    "sigmoid_backward": 3.0,  # g * y * (1 - y)
    "tanh_backward": 3.0,  # g * (1 - y * y)
    "silu_backward": 9.0,  # sigmoid(x) (4) + g * s * (1 + x * (1 - s)) (5)
    "gelu_backward": 12.0,  # convention: ~1.5x the forward
    "hardtanh_backward": 2.0,
    "leaky_relu_backward": 2.0,
    "elu_backward": 3.0,
    "softplus_backward": 5.0,
    "hardswish_backward": 4.0,
    "hardsigmoid_backward": 2.0,
    "mish_backward": 15.0,
    "log_sigmoid_backward": 6.0,
    "_prelu_kernel_backward": 3.0,
    "mse_loss_backward": 2.0,  # 2 * (x - y) * g / n
    "l1_loss_backward": 2.0,
    "smooth_l1_loss_backward": 3.0,
    "huber_loss_backward": 3.0,
    "upsample_bilinear2d": 7.0,  # 4 taps: 4 mul + 3 add per output element
    "upsample_linear1d": 3.0,
    "upsample_nearest1d": 0.0,
    "upsample_nearest2d": 0.0,
    "upsample_nearest3d": 0.0,
}

# FLOPs per *input* element of reductions (1 = one accumulate per element).
_REDUCTION_COST: dict[str, float] = {
    **dict.fromkeys(
        [
            "sum",
            "nansum",
            "mean",
            "amax",
            "amin",
            "max",
            "min",
            "argmax",
            "argmin",
            "prod",
            "all",
            "any",
            "count_nonzero",
            "cumsum",
            "cumprod",
            "cummax",
            "cummin",
            "aminmax",
        ],
        1.0,
    ),
    "norm": 2.0,  # square + accumulate
    "linalg_vector_norm": 2.0,
    "var": 3.0,  # subtract mean, square, accumulate
    "std": 3.0,
    "var_mean": 3.0,
    "std_mean": 3.0,
    "logsumexp": 4.0,  # max, subtract, exp, accumulate
    "mse_loss": 3.0,  # subtract, square, accumulate
    "l1_loss": 3.0,
    "smooth_l1_loss": 4.0,
    "huber_loss": 4.0,
}

# Softmax family, per element: max, subtract, exp, sum, divide (softmax: 5, DeepSpeed-like
# counting of each step as 1); backward g*y - y*sum(g*y): 4.
_SOFTMAX_COST: dict[str, float] = {
    "_softmax": 5.0,
    "_safe_softmax": 5.0,
    "_log_softmax": 5.0,
    "_softmax_backward_data": 4.0,
    "_log_softmax_backward_data": 4.0,
    "binary_cross_entropy": 7.0,  # -(y log x + (1 - y) log(1 - x))
    "binary_cross_entropy_backward": 5.0,
}


def _elementwise(call: Call, base: str) -> float:
    cost = _ELEMENTWISE_COST[base]
    if base in ("add", "sub", "rsub") and call.get("alpha", 1) != 1:
        cost = 2.0  # a + alpha * b: multiply-add
    return cost * call.main_numel()


def _reduction(call: Call, base: str) -> float:
    return _REDUCTION_COST[base] * call.first_arg_numel()


def _softmax(call: Call, base: str) -> float:
    return _SOFTMAX_COST[base] * call.main_numel()


def _nll(call: Call) -> float:
    """nll_loss (and its backward): one gather-and-accumulate per target element."""
    return float(call.get("target").numel())


# Normalization, per element. Forward with batch statistics: mean (1), subtract (1),
# square and accumulate (2), scale by 1/std (1) = 5; +1 for a weight, +1 for a bias.
# Batch norm with running statistics (eval): subtract, scale = 2 (+ affine).
_NORM_STATS, _NORM_APPLY, _RMS_STATS = 5, 2, 3


def _affine(call: Call) -> int:
    weight, bias = call.get("weight"), call.get("bias")
    if bias is None and weight is not None and "backward" in call.func._schema.name:
        bias = weight  # backward schemas often omit the bias: assume it goes with the weight
    return int(weight is not None) + int(bias is not None)


def _norm(call: Call, base: str) -> float:
    x = call.get("input")
    numel = x.numel()
    training = call.get("training", call.get("train", True))
    if base == "_native_batch_norm_legit_no_training" or training is False:
        per = _NORM_APPLY
    elif "rms_norm" in base:
        per = _RMS_STATS
    else:
        per = _NORM_STATS
    per += _affine(call)
    return per * numel * (2 if base.endswith("backward") else 1)


# Fused recurrent layers (mkldnn_rnn_layer on CPU). Per step, per hidden unit, besides the
# two matmuls (2 * gates * H * (I + H)): gate sums and biases (3 per gate) plus the cell.
# LSTM: 4 gates -> 12, 3 sigmoids 12, 2 tanh 10, c = f*c + i*g 3, h = o*tanh(c) 1 = 38.
# GRU: 3 gates -> 9, 2 sigmoids 8, tanh 5, r*(W h + b) 1, (1-z)*n + z*h 3 = 26.
_RNN_CELL_FLOPS = {4: 38, 3: 26, 1: 8}


def _rnn_layer_flops(x: Tensor, w_ih: Tensor, hidden: int) -> float:
    gates, in_features = w_ih.shape[0] // hidden, w_ih.shape[1]
    per_step = 2 * gates * hidden * (in_features + hidden) + _RNN_CELL_FLOPS.get(gates, 0) * hidden
    return float(x.numel() // in_features * per_step)  # time steps x batch (packed or not)


def _rnn_layer(call: Call) -> float:
    return _rnn_layer_flops(call.get("input"), call.get("weight0"), int(call.get("hidden_size")))


def _rnn_layer_backward(call: Call) -> float:
    return 2 * _rnn_layer_flops(call.get("input"), call.get("weight1"), int(call.get("hidden_size")))


def _rnn_written(call: Call) -> float:
    """output, h and c; not the backend's workspace (its size is an oneDNN internal)."""
    return float(sum(nbytes(t) for t in call.outs()[:3]))


def _rnn_backward_read(call: Call) -> float:
    workspace = call.get("workspace")
    return float(sum(nbytes(t) for t in call.ins() if t is not workspace))


def _quantized_linear(call: Call) -> float:
    """quantized::linear* (static and dynamic int8, fp16): 2 * in_features per output element."""
    return 2.0 * call.ins()[0].shape[-1] * call.outs()[0].numel()


def _packed_weight_dtype(call: Call) -> str | None:
    """Dynamic quantization keeps float activations: the packed weight's dtype (qint8) is
    what the matmul runs in."""
    for arg in call.args:
        if isinstance(arg, torch.ScriptObject) and hasattr(arg, "unpack"):
            try:
                with _disable_current_modes():  # unpacking makes real quantized tensors
                    return _dtype_name(arg.unpack()[0].dtype)
            except Exception:  # noqa: BLE001  (any failure: the dtype is unknown)
                return None
    return None


def _transform_qkv(call: Call) -> float:
    """_transform_bias_rescale_qkv: add the bias to q, k and v (1 per element), scale q (1)."""
    qkv = call.get("qkv")
    return 4.0 / 3.0 * qkv.numel()


def _addmm_activation(call: Call) -> float:
    """addmm fused with relu/gelu: 2 * K per output element, + 1 for the activation."""
    mat1 = call.get("mat1")
    out = call.outs()[0]
    return (2.0 * mat1.shape[-1] + 1.0) * out.numel()


def _mv(call: Call) -> float:
    mat = call.get("mat")
    return 2.0 * (mat if mat is not None else call.get("self")).numel()


def _dot(call: Call) -> float:
    return 2.0 * call.get("self").numel()


def _int_mm(call: Call) -> float:
    """(M x K) @ (K x N): 2 * K per output element."""
    return 2.0 * call.get("self").shape[-1] * call.outs()[0].numel()


def _sdpa_cpu(call: Call) -> float:
    q, k, v = call.get("query"), call.get("key"), call.get("value")
    return float(sdpa_flop_count(q.shape, k.shape, v.shape))


def _sdpa_cpu_backward(call: Call) -> float:
    g, q, k, v = call.get("grad_out"), call.get("query"), call.get("key"), call.get("value")
    return float(sdpa_backward_flop_count(g.shape, q.shape, k.shape, v.shape))


def _window(call: Call, base: str) -> int:
    """Elements in one pooling window; a single size applies to every spatial dim."""
    kernel = call.get("kernel_size")
    dims = int(next((ch for ch in base if ch.isdigit()), "2"))
    if isinstance(kernel, (list, tuple)) and len(kernel) == 1:
        kernel = kernel[0]
    return int(kernel) ** dims if not isinstance(kernel, (list, tuple)) else math.prod(kernel)


def _pool(call: Call, base: str) -> float:
    """Windowed pooling: one compare/accumulate per window element per output element."""
    return float(call.main_numel() * _window(call, base))


def _pool_backward(call: Call, base: str) -> float:
    """Max: one scatter-add per gradient element; average: one per window element."""
    g = call.get("grad_output")
    return float(g.numel() * (1 if "max" in base else _window(call, base)))


def _adaptive_pool(call: Call) -> float:
    return float(call.get("self").numel())  # every input element enters one window


def _embedding_bag(call: Call) -> float:
    dim = call.get("weight").shape[-1]
    weighted = call.get("per_sample_weights") is not None
    return float(call.get("indices").numel() * dim * (2 if weighted else 1))


def _embedding_backward(call: Call) -> float:
    g = call.get("grad_output", call.get("grad"))
    return float(call.get("indices").numel() * g.shape[-1])


# FLOPs per parameter element of the fused optimizer kernels: the same arithmetic as their
# for-loop form counts op by op (the counting module's docstring: Adam 13, AdamW 14, SGD with
# momentum 4), in one kernel.
FUSED_OPTIMIZER_FLOPS = {"_fused_adam": 13.0, "_fused_adamw": 14.0, "_fused_adagrad": 6.0}


def _fused_optimizer(call: Call, base: str) -> float:
    if base == "_fused_sgd":  # p -= lr * g (2), with momentum buf = m * buf + g first (2 more)
        per_element = 4.0 if call.get("momentum", 0.0) else 2.0
    else:
        per_element = FUSED_OPTIMIZER_FLOPS[base]
    return per_element * call.first_arg_numel()


def zero(call: Call) -> float:
    return 0.0


# --------------------------------------------------------------------------- bytes rules


def _gather_read(call: Call) -> float:
    """Gathers read the rows they gather (= their output) plus the index tensors."""
    index_like = [call.get(n) for n in ("indices", "index", "offsets", "per_sample_weights")]
    index_bytes = sum(nbytes(t) for t in tree_flatten(index_like)[0] if isinstance(t, Tensor))
    out = call.outs()
    return float(nbytes(out[0]) if out else 0) + index_bytes


def _embedding_bag_read(call: Call) -> float:
    w = call.get("weight")
    row_bytes = nbytes(w) // max(w.shape[0], 1)
    extra = (call.get("indices"), call.get("offsets"), call.get("per_sample_weights"))
    return float(call.get("indices").numel() * row_bytes + sum(nbytes(t) for t in extra))


def _embedding_grad_written(call: Call) -> float:
    """Dense embedding gradients write the whole (num_weights x dim) table."""
    g = call.get("grad_output", call.get("grad"))
    return float(int(call.get("num_weights")) * g.shape[-1] * g.element_size())


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Rule:
    op_class: OpClass | Callable[[Call], OpClass]
    flops: Callable[[Call], float]
    bytes_read: Callable[[Call], float] | None = None
    bytes_written: Callable[[Call], float] | None = None
    dtype: Callable[[Call], str | None] | None = None  # when not the first float input's
    variant: Callable[[Call], str] | None = None  # OpRecord.variant, "" for none


def _conv_class(call: Call) -> OpClass:
    """groups == in_channels (> 1) is a depthwise convolution; other groups are dense."""
    groups = call.get("groups", 1) or 1
    x = call.get("input")
    in_channels = x.shape[1] if x is not None and x.dim() > 1 else 0
    return OpClass.DEPTHWISE_CONV if groups > 1 and groups == in_channels else OpClass.CONV


def _conv_variant(call: Call) -> str:
    """SINGLE_IMAGE for a dense, ungrouped, not transposed convolution of a batch of one
    (forward or backward: benchmarks/conv_batch.py measured that regime; grouped and
    transposed ones gain far less from it). torch.nn.functional adds the batch dimension of
    an unbatched input before aten.convolution, so that is one image too. GROUPED for a
    grouped, not depthwise, not transposed one (1 < groups < in_channels), whatever its batch:
    oneDNN's grouped path runs far below the dense rate with few channels per group
    (benchmarks/grouped_conv.py)."""
    x = call.get("input")
    groups = call.get("groups", 1) or 1
    transposed = bool(call.get("transposed", False))
    if x is None or x.dim() <= 2 or transposed:
        return ""
    if groups == 1:
        return SINGLE_IMAGE if x.shape[0] == 1 else ""
    return GROUPED if groups < x.shape[1] else ""


def _conv_backward(call: Call) -> float:
    """torch's conv_backward_flop counts the weight gradient as if groups were 1 (it
    multiplies C_in by C_out): a depthwise conv's backward came out C_in times too big.
    Count the input gradient with torch's formula, the weight gradient divided by groups."""
    formula = flop_registry[_aten.convolution_backward]
    args = [call.get(a.name) for a in call.func._schema.arguments]  # ..., groups, output_mask
    *head, mask = args
    groups = int(call.get("groups") or 1)

    def part(keep: int) -> float:
        only = [i == keep and bool(m) for i, m in enumerate(mask)]
        return float(formula(*head, only, out_val=call.out))

    return part(0) + part(1) / groups


def _registry_rule(
    op_class: OpClass | Callable[[Call], OpClass], packet: Any, variant: Callable[[Call], str] | None = None
) -> Rule:
    formula = flop_registry[packet]
    return Rule(op_class, lambda c: float(formula(*c.args, **c.kwargs, out_val=c.out)), variant=variant)


def _bind(fn: Callable[[Call, str], float], base: str) -> Callable[[Call], float]:
    return lambda c: fn(c, base)


_RULES: dict[str, Rule] = {}
for _packet in flop_registry:
    _name = getattr(_packet, "__name__", str(_packet))
    if _name == "convolution_backward":
        _RULES[_name] = Rule(_conv_class, _conv_backward, variant=_conv_variant)
    elif _name.startswith(("conv", "_conv", "cudnn_conv", "_slow_conv")):
        _RULES[_name] = _registry_rule(_conv_class, _packet, _conv_variant)
    else:  # matmuls and attention
        _RULES[_name] = _registry_rule(OpClass.MATMUL, _packet)
_RULES.update(
    {
        "mv": Rule(OpClass.MATMUL, _mv),
        "addmv": Rule(OpClass.MATMUL, _mv),
        "dot": Rule(OpClass.MATMUL, _dot),
        "vdot": Rule(OpClass.MATMUL, _dot),
        "_int_mm": Rule(OpClass.MATMUL, _int_mm),
        "_addmm_activation": Rule(OpClass.MATMUL, _addmm_activation),
        "_transform_bias_rescale_qkv": Rule(OpClass.ELEMENTWISE, _transform_qkv),
        "_weight_int8pack_mm": Rule(OpClass.MATMUL, _int_mm),
        "_scaled_dot_product_flash_attention_for_cpu": Rule(OpClass.MATMUL, _sdpa_cpu),
        "_scaled_dot_product_flash_attention_for_cpu_backward": Rule(OpClass.MATMUL, _sdpa_cpu_backward),
        "mkldnn_rnn_layer": Rule(OpClass.RECURRENT, _rnn_layer, None, _rnn_written),
        "mkldnn_rnn_layer_backward": Rule(OpClass.RECURRENT, _rnn_layer_backward, _rnn_backward_read),
        "nll_loss_forward": Rule(OpClass.SOFTMAX, _nll),
        "nll_loss_backward": Rule(OpClass.SOFTMAX, _nll),
        "nll_loss2d_forward": Rule(OpClass.SOFTMAX, _nll),
        "nll_loss2d_backward": Rule(OpClass.SOFTMAX, _nll),
        "embedding": Rule(OpClass.EMBEDDING, zero, _gather_read),
        "embedding_dense_backward": Rule(OpClass.EMBEDDING, _embedding_backward, None, _embedding_grad_written),
        "_embedding_bag": Rule(OpClass.EMBEDDING, _embedding_bag, _embedding_bag_read),
        "_embedding_bag_forward_only": Rule(OpClass.EMBEDDING, _embedding_bag, _embedding_bag_read),
        "_embedding_bag_backward": Rule(OpClass.EMBEDDING, _embedding_backward, None, _embedding_grad_written),
        "_embedding_bag_dense_backward": Rule(OpClass.EMBEDDING, _embedding_backward, None, _embedding_grad_written),
        "_embedding_bag_per_sample_weights_backward": Rule(OpClass.EMBEDDING, _embedding_backward),
    }
)
for _n in [*FUSED_OPTIMIZER_FLOPS, "_fused_sgd"]:
    _RULES[_n] = Rule(OpClass.ELEMENTWISE, _bind(_fused_optimizer, _n))
for _n in _ELEMENTWISE_COST:
    _RULES.setdefault(_n, Rule(OpClass.ELEMENTWISE, _bind(_elementwise, _n)))
for _n in _REDUCTION_COST:
    _RULES.setdefault(_n, Rule(OpClass.REDUCTION, _bind(_reduction, _n)))
for _n in _SOFTMAX_COST:
    _RULES.setdefault(_n, Rule(OpClass.SOFTMAX, _bind(_softmax, _n)))
for _n in [
    "native_layer_norm",
    "native_layer_norm_backward",
    "native_group_norm",
    "native_group_norm_backward",
    "native_batch_norm",
    "native_batch_norm_backward",
    "batch_norm_backward",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional",
    "cudnn_batch_norm",
    "cudnn_batch_norm_backward",
    "miopen_batch_norm",
    "_fused_rms_norm",
    "_fused_rms_norm_backward",
]:
    _RULES[_n] = Rule(OpClass.NORMALIZATION, _bind(_norm, _n))
for _n in [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "mkldnn_max_pool2d",
    "mkldnn_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
]:
    _RULES[_n] = Rule(OpClass.REDUCTION, _bind(_pool, _n))
for _n in [
    "max_pool2d_with_indices_backward",
    "max_pool3d_with_indices_backward",
    "avg_pool2d_backward",
    "avg_pool3d_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d_backward",
]:
    _RULES[_n] = Rule(OpClass.REDUCTION, _bind(_pool_backward, _n))
for _n in [
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "_adaptive_avg_pool2d_backward",
    "_adaptive_avg_pool3d_backward",
]:
    _RULES[_n] = Rule(OpClass.REDUCTION, _adaptive_pool)
for _n in ["index", "index_select", "gather", "take"]:
    _RULES[_n] = Rule(OpClass.DATA_MOVEMENT, zero, _gather_read)
# Known pure data movement (no note): copies, concatenation, indexing, padding, fills.
for _n in [
    "clone",
    "copy",
    "copy_",
    "_to_copy",
    "_copy_from",
    "_copy_from_and_resize",
    "cat",
    "stack",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "index_put",
    "index_put_",
    "_index_put_impl_",
    "index_add",
    "index_copy",
    "index_fill",
    "masked_scatter",
    "masked_select",
    "constant_pad_nd",
    "reflection_pad1d",
    "reflection_pad2d",
    "reflection_pad3d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
    "slice_backward",
    "select_backward",
    "slice_scatter",
    "select_scatter",
    "diagonal_scatter",
    "as_strided_scatter",
    "zeros",
    "zeros_like",
    "ones",
    "ones_like",
    "full",
    "full_like",
    "new_zeros",
    "new_ones",
    "new_full",
    "scalar_tensor",
    "arange",
    "linspace",
    "eye",
    "fill",
    "zero",
    "flip",
    "roll",
    "repeat",
    "repeat_interleave",
    "tril",
    "triu",
    "_local_scalar_dense",
    "nonzero",
    "sort",
    "topk",
    "im2col",
    "col2im",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
    "to_dense",
    "_pack_padded_sequence",
    "_pad_packed_sequence",
    "unfold_backward",
    "reflection_pad1d_backward",
    "reflection_pad2d_backward",
    "constant_pad_nd_backward",
]:
    _RULES.setdefault(_n, Rule(OpClass.DATA_MOVEMENT, zero))

# Quantized kernels (torch.ao.quantization), keyed by name in the "quantized" namespace.
QUANTIZED_RULES: dict[str, Rule] = {
    name: Rule(OpClass.MATMUL, _quantized_linear, dtype=_packed_weight_dtype)
    for name in [
        "linear",
        "linear_relu",
        "linear_dynamic",
        "linear_relu_dynamic",
        "linear_dynamic_fp16",
        "linear_relu_dynamic_fp16",
    ]
}

# Ops that only write their first argument (not counted as read).
WRITE_ONLY_SELF = frozenset(
    [
        "copy",
        "fill",
        "zero",
        "normal",
        "uniform",
        "bernoulli",
        "random",
        "exponential",
        "geometric",
        "cauchy",
        "log_normal",
    ]
)
# Zero-cost ops skipped entirely: views the schema does not annotate, metadata-only
# in-place ops, allocations that write nothing.
FREE = frozenset(
    [
        "_unsafe_view",
        "_reshape_alias",
        "unsafe_split",
        "unsafe_split_with_sizes",
        "unsafe_chunk",
        "lift_fresh",
        "lift",
        "_nested_view_from_buffer",
        "transpose_",
        "t_",
        "squeeze_",
        "unsqueeze_",
        "as_strided_",
        "detach_",
        "resize_",
        "resize_as_",
        "set_",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "empty_permuted",
        "_assert_async",
        "_assert_scalar",
        "_assert_tensor_metadata",
        "sym_constrain_range",
        "sym_constrain_range_for_size",
        "_functional_sym_constrain_range",
        "is_contiguous",
        "is_same_size",
        "is_strides_like_format",
        "is_non_overlapping_and_dense",
        "size",
        "stride",
        "storage_offset",
        "numel",
        "dim",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "sym_storage_offset",
        "sym_is_contiguous",
        "device",
        "layout",
        "_record_function_enter",
        "_record_function_enter_new",
        "_record_function_exit",
        "record_stream",
        "_version",
    ]
)
# Fused kernels that only call other operators (aten/src/ATen/native/transformers): counting
# runs them under its mode to see those operators.
COMPOSED_KERNELS = frozenset({"_transformer_encoder_layer_fwd", "_native_multi_head_attention"})
# Composite operators with a CPU kernel of their own outside autograd, which fake tensors (a
# tensor subclass) never take: max_pool1d runs max_pool1d_impl, a plain loop writing no
# indices, when the input needs no gradient (aten/src/ATen/native/MaxPooling.cpp), and
# max_pool1d_with_indices -> max_pool2d_with_indices (several times slower) otherwise.
CPU_NO_GRAD_KERNELS = frozenset({"max_pool1d"})
COMMUNICATION_NAMESPACES = frozenset({"c10d", "_c10d_functional", "c10d_functional", "_dtensor"})
SKIPPED_NAMESPACES = frozenset({"profiler", "prim"})


def base_name(name: str) -> str:
    """Schema name without the foreach prefix: "_foreach_add_" -> "add_"."""
    return name.removeprefix("_foreach_")


def lookup(name: str) -> Rule | None:
    rule = _RULES.get(name)
    if rule is None and name.endswith("_") and not name.endswith("__"):
        rule = _RULES.get(name[:-1])  # in-place variant: add_ -> add
    return rule


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def main_dtype(ins: list[Tensor], outs: list[Tensor]) -> str:
    for t in ins:
        if t.dtype.is_floating_point or t.dtype.is_complex or t.is_quantized:
            return _dtype_name(t.dtype)
    for t in ins or outs:
        return _dtype_name(t.dtype)
    return "none"
