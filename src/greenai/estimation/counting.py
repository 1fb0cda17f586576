"""Count what a PyTorch model does, one aten operator call at a time.

``count_ops(model, example_input)`` runs one inference forward (or one training step:
forward, backward, optimizer step) under a ``TorchDispatchMode`` that sees every aten
operator call and turns it into an :class:`~greenai.estimation.ops.OpRecord`: its class,
FLOPs, bytes read and written, dtype, module and pass.

How it avoids real compute. By default the model and input are replaced by *fake*
tensors (``torch._subclasses.FakeTensorMode``): meta-device storage (no memory, no
arithmetic) that reports the device the model would really run on (``cpu`` for a model
built on ``meta``). Plain meta tensors would make PyTorch pick other kernels than on
the real device: ``nn.LSTM`` decomposes into per-step matmuls instead of the fused
``mkldnn_rnn_layer``, attention takes the math path instead of
``_scaled_dot_product_flash_attention_for_cpu``. Fake CPU tensors keep the CPU choices,
so counting "on meta" gives the same records as counting on the CPU.

FLOPs. Matmul, convolution and attention use ``torch.utils.flop_counter.flop_registry``
(one multiply-add = 2 FLOPs), except the convolution backward, whose weight-gradient
term torch counts as if groups were 1 (fixed here: divided by groups). Everything that
registry counts as zero gets a formula below. Convention: elementwise arithmetic,
comparisons and libm calls count 1 per element, as in the DeepSpeed flops profiler and
fvcore; unlike those (1 per element for any activation), an activation counts the
steps of its usual formula: sigmoid 1/(1+exp(-x)) = 4, tanh (e^2x-1)/(e^2x+1) = 5,
silu = sigmoid + 1 = 5, gelu 8 (a convention between the erf form, 5, and the tanh form,
13). Softmax: max, subtract, exp, sum, divide = 5 per element. Normalization with batch
statistics: 5 per element (DeepSpeed's 4-5) + 1 per affine term. Reductions and
pooling: 1 per input element / per window element. Embedding lookups: 0. Backward
formulas of normalizations and fused RNN layers are 2x their forward (the usual rule).
The optimizer is not a formula: its FLOPs are those of the ops it runs (Adam: 13 per
parameter, AdamW 14, SGD with momentum 4).

Bytes. ``bytes_read`` is the sum of ``numel * element_size`` of the tensor inputs (a
view counts the size it views, not its storage; an expanded tensor counts its expanded
size), ``bytes_written`` the same for the outputs (mutated arguments for in-place ops).
Gathers (embedding, index_select, ...) read only the rows they gather, plus the indices.
Destinations that are only written (``copy_``, ``fill_``, ``out=``) are not read.
``mapped_bytes``: the bytes of the outputs a call allocates (returns the schema does not alias
to an argument) of at least 32 MiB each, which glibc maps afresh on every allocation
(ops.ALWAYS_MAPPED_BYTES): the weight gradient of a large layer, the dense gradient of a large
embedding table, Adam's ``sqrt`` and division temporaries of a large parameter.
``repeated_bytes``: what an expanded (broadcast) tensor's counted size repeats of its storage;
the bytes a call really moves through memory are the bytes counted less these.

Zero-cost ops are skipped entirely (no record): views (``view``, ``transpose``, ``t``,
``permute``, ``expand``, ``unsqueeze``, ``detach``, ``alias``, ``_unsafe_view``,
``as_strided``, ``split``, ...), allocations that write nothing (``empty*``) and
metadata queries. Their cost is dispatcher overhead, which the per-call overhead of
the classes that do real work absorbs. Real copies (``clone``, ``contiguous``,
``cat``, ``copy_``, ``_to_copy``) are ``DATA_MOVEMENT`` records with their bytes.

Classes. Convolutions with groups == in_channels > 1 are ``DEPTHWISE_CONV``, others
``CONV``. On CPU, ``nn.LSTM`` runs one fused ``mkldnn_rnn_layer`` per layer and
direction: ``RECURRENT``, FLOPs from its shapes. ``nn.GRU`` and ``nn.RNN`` have no fused
CPU kernel: they run per-time-step ``addmm``/``mm`` and elementwise ops, counted as
``MATMUL`` and ``ELEMENTWISE`` (that is what the hardware executes), all but the first
issued from C++ (``OpRecord.python_call`` False, see calls.py). Attention through
``scaled_dot_product_attention`` is ``MATMUL``. The fused inference fast path of
``nn.TransformerEncoderLayer`` and ``nn.MultiheadAttention`` is taken as in a real run
(module hooks are global so as not to switch it off); its kernels
(``_transformer_encoder_layer_fwd``, ``_native_multi_head_attention``) only call other
operators, so they run under the mode and those operators are counted, issued from C++.
``quantized::linear*`` (int8 dynamic/static) is ``MATMUL`` with the packed weight's dtype.
Collectives are ``COMMUNICATION``. An op without a rule is ``DATA_MOVEMENT`` with its
bytes, 0 FLOPs, and is listed once in the notes.

Modules. Forward: the innermost module whose forward is running (global module hooks;
"" for the model itself and for the loss). Backward: the module whose forward
created the autograd node being executed (``torch._C._current_autograd_node()``; nodes
are claimed by the innermost module when its forward returns). Optimizer: the module
owning the parameter (or its gradient or optimizer state) being updated.

Training step. ``model.train()``, forward, loss, backward, then one optimizer step
counted in the steady state: a first, uncounted step creates the optimizer state (Adam's
moment buffers, SGD's momentum) so that the counted step is what every later step does.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import torch
from torch import Tensor, nn
from torch._C import DispatchKey
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from greenai.errors import EstimateError
from greenai.estimation.calls import PythonCalls
from greenai.estimation.op_rules import (
    COMMUNICATION_NAMESPACES,
    COMPOSED_KERNELS,
    CPU_NO_GRAD_KERNELS,
    FREE,
    QUANTIZED_RULES,
    SKIPPED_NAMESPACES,
    WRITE_ONLY_SELF,
    Call,
    Rule,
    base_name,
    lookup,
    main_dtype,
    nbytes,
    zero,
)
from greenai.estimation.ops import ALWAYS_MAPPED_BYTES, OpClass, OpCounts, OpRecord, Pass
from greenai.estimation.scope import Scope, tensors

__all__ = ["OPTIMIZERS", "EstimateError", "count_ops"]


# --------------------------------------------------------------------------- the mode


def repeated_bytes(t: Tensor) -> int:
    """Bytes a tensor's size counts beyond the memory it views: an expanded (broadcast) tensor
    counts its expanded size (the work convention), but its data is read from a far smaller
    storage (nn.MultiheadAttention's weight expanded over a batch of 48: 36 MiB counted, 0.75 MiB
    read)."""
    try:
        storage = t.untyped_storage().nbytes() - t.storage_offset() * t.element_size()
    except (RuntimeError, NotImplementedError, AttributeError):  # no storage to ask (a subclass)
        return 0
    return max(nbytes(t) - max(int(storage), 0), 0)


def fresh_outputs(call: Call) -> list[Tensor]:
    """The output tensors a call allocates: those of its returns the schema does not alias to
    an argument (in-place and out= results are the arguments' memory, views share it)."""
    returns = call.func._schema.returns
    out = call.out
    values = list(out) if len(returns) > 1 and isinstance(out, (tuple, list)) else [out]
    fresh: list[Tensor] = []
    for ret, value in zip(returns, values):
        if ret.alias_info is None:
            fresh += [t for t in tree_flatten(value)[0] if isinstance(t, Tensor)]
    return fresh


def _needs_grad(args: tuple, kwargs: dict) -> bool:
    """Would eager autograd record this call: grad mode on and a tensor input needing grad."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors((args, kwargs)))


class _CountingMode(TorchDispatchMode):
    """Records one OpRecord per aten call that does work."""

    def __init__(self, scope: Scope, backend_key: str) -> None:
        super().__init__()
        self.scope = scope
        self.pass_ = Pass.FORWARD
        self.records: list[OpRecord] = []
        self.unknown: set[str] = set()  # ops without a rule
        self.failed: set[str] = set()  # ops whose rule raised (not recorded)
        self.calls = PythonCalls()  # which operators start a Python-level call
        self._backend = backend_key
        self._backend_key: DispatchKey | None = getattr(DispatchKey, backend_key, None)

    def _composite_only(self, func: Any) -> bool:
        """True for ops that only have a CompositeImplicitAutograd kernel on this backend.
        Outside autograd (inference mode) they reach the mode undecomposed; running their
        decomposition under the mode shows the kernels that really run."""
        name = func.name()
        has = torch._C._dispatch_has_kernel_for_dispatch_key
        return has(name, DispatchKey.CompositeImplicitAutograd) and not has(name, self._backend)

    def _has_backend_kernel(self, func: Any) -> bool:
        return self._backend_key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(
            func.name(), self._backend_key
        )

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.calls.enter()
        try:
            return self._dispatch(func, args, kwargs or {})
        finally:
            self.calls.exit()

    def _dispatch(self, func: Any, args: tuple, kwargs: dict) -> Any:
        namespace = func.namespace
        if namespace in SKIPPED_NAMESPACES or not isinstance(func, torch._ops.OpOverload):
            return func(*args, **kwargs)
        name = func._schema.name.split("::", 1)[-1]
        if name in CPU_NO_GRAD_KERNELS and self._backend == "CPU" and not _needs_grad(args, kwargs):
            return self._record_whole(func, name, namespace, args, kwargs)
        if self._composite_only(func):
            with self:
                return func._op_dk(DispatchKey.CompositeImplicitAutograd, *args, **kwargs)
        key = self._backend_key
        if name in COMPOSED_KERNELS and key is not None and self._has_backend_kernel(func):
            with self:  # a fused layer whose kernel only calls other operators: count those
                return func._op_dk(key, *args, **kwargs)
        out = func(*args, **kwargs)
        if name in FREE or func.is_view:
            return out
        try:
            self._record(func, name, namespace, Call(func, args, kwargs, out))
        except Exception as e:  # noqa: BLE001  (counting must never break the model run)
            self.failed.add(f"{func} ({type(e).__name__}: {e})")
        return out

    def _record_whole(self, func: Any, name: str, namespace: str, args: tuple, kwargs: dict) -> Any:
        """One record for a composite operator whose eager kernel is its own: the output
        comes from its decomposition, run below this mode (not recorded)."""
        out = func._op_dk(DispatchKey.CompositeImplicitAutograd, *args, **kwargs)
        try:
            self._record(func, name, namespace, Call(func, args, kwargs, out))
        except Exception as e:  # noqa: BLE001  (counting must never break the model run)
            self.failed.add(f"{func} ({type(e).__name__}: {e})")
        return out

    def _record(self, func: Any, name: str, namespace: str, call: Call) -> None:
        base = base_name(name)
        rule = lookup(base) if namespace == "aten" else None
        if namespace == "quantized":
            rule = QUANTIZED_RULES.get(name)
        if namespace in COMMUNICATION_NAMESPACES:
            rule = Rule(OpClass.COMMUNICATION, zero)
        if rule is None:
            self.unknown.add(str(func))
            rule = Rule(OpClass.DATA_MOVEMENT, zero)
        op_class = rule.op_class(call) if callable(rule.op_class) else rule.op_class
        ins, outs = call.ins(), call.outs()
        read = rule.bytes_read(call) if rule.bytes_read else self._read(call, base, ins)
        written = rule.bytes_written(call) if rule.bytes_written else self._written(call, outs)
        flops = float(rule.flops(call))
        self.records.append(
            OpRecord(
                op=str(func),
                op_class=op_class,
                dtype=(rule.dtype and rule.dtype(call)) or main_dtype(ins, outs),
                flops=flops,
                bytes_read=float(read),
                bytes_written=float(written),
                module=self.scope.module_for(self.pass_, ins),
                pass_=self.pass_,
                python_call=self.calls.take() and self.pass_ is not Pass.BACKWARD,
                variant=rule.variant(call) if rule.variant else "",
                mapped_bytes=float(sum(n for n in map(nbytes, fresh_outputs(call)) if n >= ALWAYS_MAPPED_BYTES)),
                repeated_bytes=float(sum(repeated_bytes(t) for t in {id(t): t for t in (*ins, *outs)}.values())),
            )
        )

    @staticmethod
    def _mutated(call: Call) -> list[tuple[Any, Any]]:
        schema = call.func._schema
        return [(a, call.get(a.name)) for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]

    def _read(self, call: Call, base: str, ins: list[Tensor]) -> float:
        skip: set[int] = set()
        for arg, value in self._mutated(call):
            if arg.kwarg_only or (base.rstrip("_") in WRITE_ONLY_SELF and arg.name == "self"):
                skip.update(id(t) for t in tensors(value))
        return float(sum(nbytes(t) for t in ins if id(t) not in skip))

    def _written(self, call: Call, outs: list[Tensor]) -> float:
        seen: dict[int, Tensor] = {id(t): t for t in outs}
        for _, value in self._mutated(call):
            seen.update((id(t), t) for t in tensors(value))
        return float(sum(nbytes(t) for t in seen.values()))


# --------------------------------------------------------------------------- running


def _make_optimizer(name: str | None, params: list[nn.Parameter]) -> torch.optim.Optimizer | None:
    if name is None or not params:
        return None
    makers = OPTIMIZERS.get(name.lower())
    if makers is None:
        raise EstimateError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)} or None")
    return makers(params)


# Default hyperparameters only matter for which ops run (momentum and weight decay add ops).
OPTIMIZERS: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.01),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9),
    # the same with PyTorch's fused kernel (one operator per step; OptimizerImplKnob switches it)
    "adam-fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
    "adamw-fused": lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.01, fused=True),
    "sgd-fused": lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, fused=True),
}


def _check_input(example_input: Any) -> list[Tensor]:
    if not isinstance(example_input, (Tensor, tuple, dict)):
        raise EstimateError(
            f"the example input must be a tensor, a tuple of tensors or a dict of tensors, "
            f"not {type(example_input).__name__}"
        )
    if isinstance(example_input, dict) and not all(isinstance(k, str) for k in example_input):
        raise EstimateError("the keys of a dict example input must be argument names (str)")
    leaves = tree_flatten(example_input)[0]
    bad = [x for x in leaves if not isinstance(x, (Tensor, bool, int, float, type(None)))]
    if bad:
        raise EstimateError(
            f"the example input holds a {type(bad[0]).__name__}: only tensors (and None, bool, "
            "int, float arguments) can be passed"
        )
    tensors = [x for x in leaves if isinstance(x, Tensor)]
    if not tensors:
        raise EstimateError("the example input holds no tensor")
    return tensors


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, tuple):
        return model(*inputs)
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(inputs)


def _standin_loss(output: Any) -> Tensor:
    """The loss when none is given: the first floating-point output, as float32, summed."""
    for t in tensors(output):
        if t.dtype.is_floating_point or t.dtype.is_complex:
            return t.float().sum()
    raise EstimateError("the model output holds no floating-point tensor to build a loss from")


def _target_device(model: nn.Module, inputs: list[Tensor]) -> torch.device:
    for t in (*model.parameters(), *model.buffers(), *inputs):
        if t.device.type != "meta":
            return t.device
    return torch.device("cpu")


def _is_materialized(model: nn.Module, inputs: list[Tensor]) -> bool:
    return all(t.device.type != "meta" for t in (*model.parameters(), *model.buffers(), *inputs))


def _fake_copy(model: nn.Module, example_input: Any, fake_mode: Any, device: torch.device) -> tuple[nn.Module, Any]:
    """Copy the module tree with every parameter and buffer replaced by a fake tensor on
    `device`: nothing is materialized, whatever device the model lives on."""

    def fake(t: Tensor) -> Tensor:
        with fake_mode:
            f = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
        if isinstance(t, nn.Parameter):
            return nn.Parameter(f, requires_grad=t.requires_grad)
        return f.requires_grad_(t.requires_grad) if t.requires_grad else f

    memo: dict[int, Any] = {}
    for t in (*model.parameters(), *model.buffers()):
        memo[id(t)] = fake(t)
    work = copy.deepcopy(model, memo)
    return work, tree_map(lambda x: fake(x) if isinstance(x, Tensor) else x, example_input)


@dataclass
class _Run:
    mode: _CountingMode
    scope: Scope
    notes: list[str]


class _RunOptions(TypedDict):
    """What count_ops passes on to each _run (on fake tensors, then maybe on real ones)."""

    training: bool
    loss_fn: Callable[[Any], Tensor] | None
    optimizer: str | None


def _run(
    work: nn.Module,
    inputs: Any,
    device: torch.device,
    context: Any,
    *,
    training: bool,
    loss_fn: Callable[[Any], Tensor] | None,
    optimizer: str | None,
) -> _Run:
    scope = Scope(work)
    mode = _CountingMode(scope, {"cpu": "CPU", "cuda": "CUDA"}.get(device.type, device.type.upper()))
    notes: list[str] = []
    try:
        with context:
            if not training:
                work.eval()
                with torch.inference_mode(), mode.calls, mode:
                    _guard(lambda: _call(work, inputs), "the model does not run on the example input")
                return _Run(mode, scope, notes)
            work.train()
            params = [p for p in work.parameters() if p.requires_grad]
            opt = _make_optimizer(optimizer, params)
            with mode.calls, mode:
                out = _guard(lambda: _call(work, inputs), "the model does not run on the example input")
                loss = _guard(
                    lambda: loss_fn(out) if loss_fn is not None else _standin_loss(out),
                    "the loss function fails on the model output",
                )
                if not isinstance(loss, Tensor) or not loss.requires_grad:
                    raise EstimateError("the training loss does not depend on any trainable parameter")
                mode.pass_ = Pass.BACKWARD
                _guard(loss.backward, "the backward pass fails")
            if loss_fn is None:
                notes.append("loss = first floating-point output .float().sum() (stand-in: pass loss_fn)")
            if opt is not None:
                # The first step also creates the optimizer state; count a steady-state step.
                _guard(opt.step, "the optimizer step fails")
                owner = {id(p): n.rpartition(".")[0] for n, p in work.named_parameters()}
                for p in params:
                    related = [p, p.grad, *tree_flatten(opt.state.get(p, {}))[0]]
                    scope.tensor_owner.update((id(t), owner[id(p)]) for t in related if isinstance(t, Tensor))
                mode.pass_ = Pass.OPTIMIZER
                with mode.calls, mode:
                    _guard(opt.step, "the optimizer step fails")
            elif optimizer is not None:
                notes.append("no trainable parameter: no optimizer step counted")
    finally:
        scope.close()
    return _Run(mode, scope, notes)


def _guard(fn: Callable[[], Any], what: str) -> Any:
    try:
        with _quiet_fake_tensor_log():
            return fn()
    except EstimateError:
        raise
    except Exception as e:
        raise EstimateError(f"{what}: {type(e).__name__}: {e}") from e


@contextlib.contextmanager
def _quiet_fake_tensor_log() -> Iterator[None]:
    """FakeTensorMode logs a traceback at ERROR when an op fails on fake tensors; the failure
    reaches the user once, as an EstimateError, so the log is silenced while counting."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def count_ops(
    model: nn.Module,
    example_input: Tensor | tuple | dict,
    *,
    training: bool = False,
    loss_fn: Callable[[Any], Tensor] | None = None,
    optimizer: str | None = "adam",
    on_meta: bool = True,
) -> OpCounts:
    """Count every aten operator call of one inference forward or one training step.

    model: any nn.Module, on any device, including one built on ``meta``. It is never
        modified (a copy runs) and, with ``on_meta``, never computed with or copied in memory.
    example_input: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict
        (``model(**x)``) of tensors with the real shapes and dtypes.
    training: False counts ``model.eval()`` under ``torch.inference_mode()``; True counts
        ``model.train()``: forward, ``loss_fn(output)`` (default: the first floating
        output ``.float().sum()``, a stand-in), backward and one steady-state optimizer
        step (``"adam"``, ``"adamw"``, ``"sgd"`` with momentum in PyTorch's default
        for-loop form on CPU, ``"adam-fused"``, ``"adamw-fused"``, ``"sgd-fused"`` for
        ``fused=True``, or None for none).
    on_meta: count on fake tensors (meta storage that reports the model's real device,
        ``cpu`` for a meta model), so no memory is allocated and nothing is computed.
        If fake counting fails (e.g. data-dependent control flow) and the model has real
        weights, it falls back to running on them, with a note.

    The result's ``activation_bytes`` is the size of the distinct tensors returned by the
    forwards of all modules (a tensor, or the base of a view, counted once): what the
    forward produces between layers; a proxy for activation memory (autograd may also
    keep intermediates computed inside a module, e.g. attention scores, dropout masks). ``parameters``/``parameter_bytes`` count the model's parameters
    (shared ones once, buffers excluded); ``batch_size`` is the first dim of the first
    input tensor.

    Raises EstimateError for an input that is not tensors or a model that fails on it.
    """
    if not isinstance(model, nn.Module):
        raise EstimateError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    tensors = _check_input(example_input)
    options: _RunOptions = {"training": training, "loss_fn": loss_fn, "optimizer": optimizer}
    if optimizer is not None and optimizer.lower() not in OPTIMIZERS:
        raise EstimateError(f"unknown optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)} or None")
    materialized = _is_materialized(model, tensors)
    fallback_note: list[str] = []
    if on_meta or not materialized:
        from torch._subclasses.fake_tensor import FakeTensorMode

        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        device = _target_device(model, tensors)
        try:
            work, inputs = _guard(
                lambda: _fake_copy(model, example_input, fake_mode, device), "cannot make a fake copy"
            )
            run = _run(work, inputs, device, fake_mode, **options)
        except EstimateError as e:
            if not materialized:
                raise
            fallback_note.append(f"counted on real tensors: fake-tensor counting failed ({e})")
        else:
            return _counts(model, tensors, run)
    try:
        work = copy.deepcopy(model)
    except Exception as e:
        raise EstimateError(f"the model cannot be copied for counting: {type(e).__name__}: {e}") from e
    for p in work.parameters():
        p.grad = None  # gradients the user's model holds would add accumulation ops
    run = _run(work, example_input, _target_device(model, tensors), contextlib.nullcontext(), **options)
    run.notes[:0] = fallback_note
    return _counts(model, tensors, run)


def _counts(model: nn.Module, inputs: list[Tensor], run: _Run) -> OpCounts:
    params = list(model.parameters())
    notes = list(run.notes)
    if run.mode.unknown:
        notes.append("no FLOP formula, counted as data movement (bytes only): " + ", ".join(sorted(run.mode.unknown)))
    if run.mode.failed:
        notes.append("not counted, the formula failed: " + "; ".join(sorted(run.mode.failed)))
    first = inputs[0]
    return OpCounts(
        records=tuple(run.mode.records),
        parameters=sum(p.numel() for p in params),
        parameter_bytes=sum(nbytes(p) for p in params),
        activation_bytes=run.scope.activation_bytes,
        batch_size=int(first.shape[0]) if first.dim() > 0 else 1,
        notes=tuple(notes),
        parameter_tensors=sum(1 for p in params if p.requires_grad),
    )
