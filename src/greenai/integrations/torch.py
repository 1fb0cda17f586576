"""Phases on a plain PyTorch training loop, put there by greenai instead of `with run.phase(...)`.

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

- `forward`: the model's forward, replaced on the instance (`model.forward`, as accelerate
  does) by one that enters the phase, counts, calls the forward it had, and leaves the phase
  even if it raises. Not a module hook: a module with any forward hook takes the slow path of
  `nn.Module.__call__`. A model called inside its own forward is one phase. `remove()` puts
  the forward back; a forward the user put over greenai's after `instrument()` stays, and
  greenai's under it then passes calls through. A copy of the model (`copy.deepcopy`, pickle,
  `torch.save(model)`, a DataParallel replica) carries none of greenai's attributes (the model's
  `__getstate__` and replication leave them out): it is plain, computes with its own
  parameters and records nothing.
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
inside the forward phase and never a budget safe point (`run.tally`, also with `forward=None`);
each optimizer step adds 1 to `steps` after its phase is left.
That count is where the tracker's rules put a safe point (a `run.count` outside any phase,
in the run's thread, after the optimizer step: README "Forecast and budgets"), so a `stop`
budget raises `BudgetExceeded` out of `optimizer.step()`, the parameters updated, after
`on_budget`; hooks registered on the optimizer after greenai's are then skipped for that one
step. `stop_at_steps=False` counts the step inside its phase instead: never a safe point.
A count is skipped when its name is None.

Cost: every boundary is the tracker's own phase append (a phase object made once, reused),
plus a thread check; the backward's hooks on the CPU add PyTorch's own cost of calling Python
from autograd (about 14 us a step in a training loop here; none with `backward_mode="span"`).
docs/benchmarks.md has each mechanism's measured cost and the throughput cost.
Phases and counts come only from the thread that called `instrument()` (a worker thread's
forward is not counted twice). Each process instruments its own model. `nn.DataParallel` over
several GPUs runs replicas of the model, made without greenai's forward (each computes with its
own parameters), in worker threads: instrument the DataParallel wrapper to see its forwards.
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
    """What `instrument()` put on a model and its optimizer; `remove()` takes it all off (also
    on leaving `with instrument(...):`). `forwards`, `backwards` and `steps` count what it saw."""

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
        self._live_thread: int | None = self._thread  # None once removed: every hook then does nothing
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
        self._handles: list[Any] = []
        if optimizer is not None:
            self._handles += [
                optimizer.register_step_pre_hook(self._step_pre),
                optimizer.register_step_post_hook(self._step_post),
            ]
        # greenai's attributes on the instance, in front of what it had: the forward (so
        # nn.Module.__call__ keeps its fast path); DataParallel's replication, whose replicas copy
        # the instance's __dict__ and must get the forward the model had (greenai's would run the
        # original: its parameters, its device); and __getstate__, so that a copy (deepcopy,
        # pickle, torch.save(model)) carries none of them. The forward goes last: nothing can
        # fail after it is in place.
        self._overrides: dict[str, tuple[_Override, bool]] = {}  # name -> (greenai's, the instance had its own)
        self._put("__getstate__", self._call_getstate, getattr(model, "__getstate__", None))
        self._put("_replicate_for_data_parallel", self._call_replicate, model._replicate_for_data_parallel)
        self._wrapper = self._put("forward", self._call_forward, model.forward)

    def _put(self, name: str, call: Callable[..., Any], inner: Callable[..., Any] | None) -> _Override:
        override = _Override(inner, call)
        self._overrides[name] = (override, name in self.model.__dict__)
        self.model.__dict__[name] = override
        return override

    def _without_greenai(self, state: dict[str, Any]) -> dict[str, Any]:
        """`state` (a copy of the model's __dict__) with greenai's attributes taken out: what the
        instance had under them comes back."""
        for name, (override, had_own) in self._overrides.items():
            if state.get(name) is override:
                if had_own:
                    state[name] = override.__wrapped__
                else:
                    del state[name]
        return state

    # -- forward ------------------------------------------------------------------------------
    def _call_forward(self, inner: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _get_ident() != self._live_thread or self._depth:  # another thread, removed, or nested
            return inner(*args, **kwargs)
        if self._backward_open:  # a backward whose end was not seen (it raised), or a span
            self._close_backward()
        phase = self._forward
        if phase is not None:
            phase.__enter__()
        self.forwards += 1
        grad = _grad_enabled()
        counter = self._samples if grad and self.model.training else self._eval_samples
        self._depth = 1
        try:
            if counter is not None:
                if self._batch_size is not None:
                    n = self._batch_size(args, kwargs)
                elif args and isinstance(args[0], torch.Tensor) and args[0].dim():
                    n = args[0].shape[0]
                else:
                    n = _first_dim(args, kwargs)
                if n:
                    self.run.tally(counter, n)  # inside the forward: never a safe point
            output = inner(*args, **kwargs)
        finally:
            self._depth = 0
            if phase is not None:
                phase.__exit__(None, None, None)
        if grad and self._backward is not None:
            self._backward_after(output)
        return output

    def _backward_after(self, output: Any) -> None:
        """Where the backward of a training forward's `output` will begin (hooks) or begins
        now (span)."""
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
            if self.model.training:
                assert self._backward is not None
                self._backward.__enter__()
                self._backward_open = True
                self.backwards += 1
        else:
            for fn in grad_fns:
                fn.register_prehook(self._backward_starts_hook)

    # -- backward -----------------------------------------------------------------------------
    def _backward_starts(self, grad_outputs: Any) -> None:
        if self._backward_open or _get_ident() != self._live_thread:
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

    def _call_replicate(self, inner: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        replica = inner(*args, **kwargs)
        self._without_greenai(replica.__dict__)
        return replica

    def _call_getstate(self, inner: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        state = inner(*args, **kwargs) if inner is not None else self.model.__dict__
        return self._without_greenai(dict(state)) if isinstance(state, dict) else state

    # -- removal ------------------------------------------------------------------------------
    def remove(self) -> None:
        """Take everything off (idempotent): the optimizer's hooks, and the model's forward
        back to what it was. If the user has since put a forward of their own over greenai's,
        theirs stays and greenai's, under it, passes every call straight through. A backward
        phase still open (a span) is left, in the thread that instrumented the model."""
        if self._live_thread is None:
            return
        self._live_thread = None
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        model = self.model
        self._without_greenai(model.__dict__)
        if threading.get_ident() == self._thread:
            self._close_backward()
        if _instrumented.get(model) is self:
            del _instrumented[model]

    @property
    def removed(self) -> bool:
        return self._live_thread is None

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class _Override:
    """One of greenai's attributes on an instrumented model's instance, in front of the method
    it had (`__wrapped__`, which `inspect.signature` follows): calls `call(inner, args, kwargs)`."""

    __slots__ = ("__wrapped__", "_call")

    def __init__(self, inner: Callable[..., Any] | None, call: Callable[..., Any]) -> None:
        self.__wrapped__ = inner
        self._call = call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self.__wrapped__, args, kwargs)


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
