"""Phases on a plain PyTorch training loop, put there by hooks instead of `with run.phase(...)`.

    from greenai.integrations.torch import instrument

    with greenai.track("train", planned_steps=steps) as run:
        hooks = instrument(model, optimizer, run)    # forward, backward, optimizer_step; samples, steps
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()                         # the step counted here is a budget safe point
            optimizer.zero_grad()
        hooks.remove()                               # or `with instrument(...):`

Where each boundary comes from:

- `forward`: the model's forward pre-hook and forward hook (`always_call=True`, so a forward
  that raises still leaves its phase). A model called inside its own forward is one phase.
- `backward`: on the CPU, autograd runs the backward in the thread that called `backward()`;
  the phase is entered by a pre-hook on the grad_fn of the model's outputs (when the first
  gradient reaches the model, so the loss function's own backward, a few element-wise ops, is
  left out) and left by a callback autograd runs when the whole backward pass has finished
  (`queue_callback`, as DDP does). On an accelerator autograd runs hooks in its own device
  threads, and a phase belongs to the thread that enters it, so there the phase spans from
  the end of a training forward to the optimizer step (or the next forward): it includes the
  loss computation. `backward_mode="span"` or `"hooks"` forces one rule.
- `optimizer_step`: the optimizer's step pre-hook and post-hook.

Counts: each training forward (grad enabled, module in training mode) adds its batch size
(dim 0 of the first tensor argument) to `samples`, other forwards to `eval_samples`, both
inside the forward phase; each optimizer step adds 1 to `steps` after its phase is left.
That count is where the tracker's rules put a safe point (a `run.count` outside any phase,
in the run's thread, after the optimizer step: README "Forecast and budgets"), so a `stop`
budget raises `BudgetExceeded` out of `optimizer.step()`, the parameters updated, after
`on_budget`; hooks registered on the optimizer after greenai's are then skipped for that one
step. `stop_at_steps=False` counts the step inside its phase instead: never a safe point.
A count is skipped when its name is None.

Cost: every boundary is the tracker's own phase append (a phase object made once, reused),
plus a thread check; see docs/benchmarks.md for the measured throughput cost.
Hooks fire only in the thread that called `instrument()` (a DataParallel replica's forward
in a worker thread is not counted twice). Each process instruments its own model.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal

from greenai.integrations import unavailable

try:
    import torch
    from torch import nn
except ImportError as e:
    raise unavailable("torch", e) from None

from greenai.integrations._common import batch_size_of
from greenai.tracking.tracker import Tracker

BackwardMode = Literal["auto", "hooks", "span"]
MAX_OUTPUT_HOOKS = 4  # grad_fns of the model's outputs that may open the backward phase
_get_ident = threading.get_ident  # the hooks' hot path: looked up once
_grad_enabled = torch.is_grad_enabled

_instrumented: weakref.WeakKeyDictionary[nn.Module, Instrumentation] = weakref.WeakKeyDictionary()


class Instrumentation:
    """The hooks `instrument()` put on a model and its optimizer; `remove()` takes them all off
    (also on leaving `with instrument(...):`). `forwards`, `backwards` and `steps` count what
    the hooks saw."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        run: Tracker,
        *,
        forward: str | None,
        backward: str | None,
        optimizer_step: str | None,
        samples: str | None,
        eval_samples: str | None,
        steps: str | None,
        batch_size: Callable[[tuple[Any, ...], dict[str, Any]], int | None] | None,
        backward_mode: BackwardMode,
        stop_at_steps: bool,
    ) -> None:
        if backward_mode not in ("auto", "hooks", "span"):
            raise ValueError(f"backward_mode must be 'auto', 'hooks' or 'span' (got {backward_mode!r})")
        self.run = run
        self.model = model
        self.optimizer = optimizer
        self.forwards = 0
        self.backwards = 0
        self.steps = 0
        self._thread = threading.get_ident()
        self._forward = run.phase(forward) if forward else None
        self._backward = run.phase(backward) if backward else None
        self._step = run.phase(optimizer_step) if optimizer_step else None
        self._samples, self._eval_samples, self._steps = samples, eval_samples, steps
        self._batch_size = batch_size
        # span or hooks, decided at the first training forward for "auto" (by its output's device)
        self._span: bool | None = {"auto": None, "hooks": False, "span": True}[backward_mode]
        self._stop_at_steps = stop_at_steps
        self._depth = 0  # forward calls of the model under way in this thread
        self._backward_open = False
        self._queue_callback = torch.autograd.Variable._execution_engine.queue_callback
        self._backward_starts_hook = self._backward_starts  # one bound method, made once
        self._backward_ends_hook = self._backward_ends
        self._handles: list[Any] = [
            model.register_forward_pre_hook(self._forward_pre, with_kwargs=True),
            model.register_forward_hook(self._forward_post, always_call=True),
        ]
        if optimizer is not None:
            self._handles += [
                optimizer.register_step_pre_hook(self._step_pre),
                optimizer.register_step_post_hook(self._step_post),
            ]
        self._removed = False

    # -- forward ------------------------------------------------------------------------------
    def _forward_pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if _get_ident() != self._thread:
            return
        self._depth += 1
        if self._depth > 1:
            return
        if self._backward_open:  # a backward whose end was not seen (it raised), or a span
            self._close_backward()
        if self._forward is not None:
            self._forward.__enter__()
        self.forwards += 1
        counter = self._samples if module.training and _grad_enabled() else self._eval_samples
        if counter is not None:
            if self._batch_size is not None:
                n = self._batch_size(args, kwargs)
            elif args and isinstance(args[0], torch.Tensor) and args[0].dim():
                n = args[0].shape[0]
            else:
                n = _first_dim(args, kwargs)
            if n:
                self.run.count(counter, n)  # inside the forward phase: never a safe point

    def _forward_post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if _get_ident() != self._thread:
            return
        self._depth = max(self._depth - 1, 0)
        if self._depth:
            return
        if self._forward is not None:
            self._forward.__exit__(None, None, None)
        if self._backward is None or not _grad_enabled():
            return
        if isinstance(output, torch.Tensor):
            grad_fn = output.grad_fn
            if grad_fn is None:
                return
            grad_fns = [grad_fn]
        else:
            grad_fns = _grad_fns(output)
            if not grad_fns:
                return
        span = self._span
        if span is None:
            span = self._span = not _on_cpu(output)
        if span:
            if module.training:
                self._backward.__enter__()
                self._backward_open = True
                self.backwards += 1
        else:
            for fn in grad_fns:
                fn.register_prehook(self._backward_starts_hook)

    # -- backward -----------------------------------------------------------------------------
    def _backward_starts(self, grad_outputs: Any) -> None:
        if self._backward_open or self._removed or _get_ident() != self._thread:
            return None
        assert self._backward is not None
        self._backward.__enter__()
        self._backward_open = True
        self.backwards += 1
        self._queue_callback(self._backward_ends_hook)
        return None

    def _backward_ends(self) -> None:
        if _get_ident() == self._thread:
            self._close_backward()
        # else: left by the next hook in this thread (optimizer step, next forward)

    def _close_backward(self) -> None:
        if self._backward_open:
            self._backward_open = False
            assert self._backward is not None
            self._backward.__exit__(None, None, None)

    # -- optimizer step -----------------------------------------------------------------------
    def _step_pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if _get_ident() != self._thread:
            return None
        if self._backward_open:
            self._close_backward()
        if self._step is not None:
            self._step.__enter__()
        return None

    def _step_post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if _get_ident() != self._thread:
            return
        self.steps += 1
        if self._steps is not None and not self._stop_at_steps:
            self.run.count(self._steps)  # inside the phase: not a safe point
        if self._step is not None:
            self._step.__exit__(None, None, None)
        if self._steps is not None and self._stop_at_steps:
            self.run.count(self._steps)  # outside it: a safe point (may raise BudgetExceeded)

    # -- removal ------------------------------------------------------------------------------
    def remove(self) -> None:
        """Take every hook off (idempotent). A backward phase still open (a span) is left, in
        the thread that instrumented the model."""
        if self._removed:
            return
        self._removed = True
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if threading.get_ident() == self._thread:
            self._close_backward()
        if _instrumented.get(self.model) is self:
            del _instrumented[self.model]

    @property
    def removed(self) -> bool:
        return self._removed

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def instrument(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    run: Tracker,
    *,
    forward: str | None = "forward",
    backward: str | None = "backward",
    optimizer_step: str | None = "optimizer_step",
    samples: str | None = "samples",
    eval_samples: str | None = "eval_samples",
    steps: str | None = "steps",
    batch_size: Callable[[tuple[Any, ...], dict[str, Any]], int | None] | None = None,
    backward_mode: BackwardMode = "auto",
    stop_at_steps: bool = True,
) -> Instrumentation:
    """Put `forward`, `backward` and `optimizer_step` phases (a name None leaves that phase
    out) on the training loop of `model` and `optimizer` (None: forwards only, e.g. for
    inference) under the started `run`, and count `samples`, `eval_samples` and `steps`.
    `batch_size(args, kwargs)` overrides how a forward's batch size is read. Returns the
    hooks' handle: `.remove()` takes them off. See the module's docstring for the rules."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"instrument() needs a torch.nn.Module (got {type(model).__name__})")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"instrument() needs a torch.optim.Optimizer or None (got {type(optimizer).__name__})")
    if not isinstance(run, Tracker):
        raise TypeError(f"instrument() needs a greenai Tracker, e.g. `with greenai.track(...) as run` (got {run!r})")
    previous = _instrumented.get(model)
    if previous is not None and not previous.removed:
        raise ValueError("this model is already instrumented; call .remove() on the first handle first")
    handle = Instrumentation(
        model,
        optimizer,
        run,
        forward=forward,
        backward=backward,
        optimizer_step=optimizer_step,
        samples=samples,
        eval_samples=eval_samples,
        steps=steps,
        batch_size=batch_size,
        backward_mode=backward_mode,
        stop_at_steps=stop_at_steps,
    )
    _instrumented[model] = handle
    return handle


def _first_dim(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    if args:
        first = args[0]
        if isinstance(first, torch.Tensor):
            return int(first.shape[0]) if first.dim() else None
        n = batch_size_of(args)
        if n is not None:
            return n
    return batch_size_of(kwargs) if kwargs else None


def _grad_fns(output: Any) -> list[Any]:
    """The distinct grad_fns of the (first few) tensors of a forward's output."""
    found: list[Any] = []
    stack = [output]
    while stack and len(found) < MAX_OUTPUT_HOOKS:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            fn = item.grad_fn
            if fn is not None and all(fn is not f for f in found):
                found.append(fn)
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
    return found


def _on_cpu(output: Any) -> bool:
    """Whether the first tensor of the output lives on the CPU (autograd then runs its
    backward in the calling thread)."""
    stack = [output]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            return item.device.type == "cpu"
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
    return True
