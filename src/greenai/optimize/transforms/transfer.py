"""Transfer learning: reuse a pretrained model, train only a new head (and maybe a few layers).

Freezing the pretrained body means backward passes stop at the first trainable layer and
the optimizer touches few parameters, so each step costs less, and a good starting point
needs fewer steps (Yosinski et al., "How transferable are features in deep neural
networks?", NeurIPS 2014; Howard & Ruder, "ULMFiT", ACL 2018, for a smaller learning rate
on unfrozen body layers). `fine_tune` is the recipe; `transfer_digits.digits_transfer` and
`transfer_minilm.minilm_transfer` are two worked demonstrations on real data and a real
pretrained model.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from greenai.errors import ConfigError
from greenai.optimize.candidate import batch_size
from greenai.optimize.model_stats import count_params

if TYPE_CHECKING:
    from greenai.tracking.tracker import Tracker

FreezeSpec = Iterable[str] | Literal["all-but-head"] | int | None
Schedule = Literal["cosine", "linear", "step"]
Batches = Sequence[Any] | Callable[[int], Iterable[Any]]
HEAD_ATTRIBUTES = ("head", "classifier", "fc")


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def find_head(model: nn.Module, head: str | None = None) -> str:
    """The dotted name of the model's head: `head` if given (checked), else an attribute
    named head/classifier/fc, else the last child module that has parameters."""
    modules = dict(model.named_modules())
    if head is not None:
        if head not in modules or head == "":
            raise ConfigError(f"the model has no sub-module named {head!r}")
        return head
    for name in HEAD_ATTRIBUTES:
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    with_params = [name for name, child in model.named_children() if _has_params(child)]
    if not with_params:
        raise ConfigError(f"{type(model).__name__} has no child module with parameters to use as a head")
    return with_params[-1]


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, new)


def replace_head(model: nn.Module, out_features: int, head: str | None = None) -> nn.Linear:
    """Put a freshly initialised `nn.Linear(in_features, out_features)` in place of the
    model's linear head (in place; works for Sequential models and named heads). Returns
    the new head."""
    name = find_head(model, head)
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise ConfigError(
            f"the head {name!r} is a {type(old).__name__}, not nn.Linear: pass a new head module to fine_tune instead"
        )
    if out_features < 1:
        raise ConfigError(f"out_features must be at least 1, got {out_features}")
    new = nn.Linear(
        old.in_features, out_features, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype
    )
    _set_module(model, name, new)
    return new


def is_under(name: str, prefix: str) -> bool:
    """Whether the parameter or module `name` is `prefix` or inside it ("head.weight" is under "head")."""
    return name == prefix or name.startswith(prefix + ".")


def _selected(model: nn.Module, spec: FreezeSpec, head: str | None) -> list[tuple[str, nn.Parameter]]:
    params = list(model.named_parameters())
    if spec is None:
        return []
    if spec == "all-but-head":
        head_name = find_head(model, head)
        return [(n, p) for n, p in params if not is_under(n, head_name)]
    if isinstance(spec, (bool, str)):
        raise ConfigError(
            f"unknown freeze spec {spec!r}: use 'all-but-head', a number of "
            "leading child modules, or parameter-name prefixes"
        )
    if isinstance(spec, int):
        children = [name for name, child in model.named_children() if _has_params(child)]
        if not 0 <= spec <= len(children):
            raise ConfigError(
                f"cannot freeze {spec} leading child modules: the model has {len(children)} with parameters"
            )
        prefixes = children[:spec]
    else:
        prefixes = list(spec)
        unknown = [p for p in prefixes if not any(is_under(n, p) for n, _ in params)]
        if unknown:
            raise ConfigError(
                f"no parameters under {unknown}; the model's top-level modules "
                f"are {[n for n, _ in model.named_children()]}"
            )
    return [(n, p) for n, p in params if any(is_under(n, pre) for pre in prefixes)]


def freeze(model: nn.Module, spec: FreezeSpec, head: str | None = None) -> int:
    """Set `requires_grad=False` on the parameters that `spec` names and return how many
    parameter elements that is. `spec`: "all-but-head"; an int k, the first k child modules
    that have parameters (for make_cnn, 3 = the three conv layers); or parameter-name
    prefixes ("0", "encoder.layer.0"). Parameters not named keep their flag."""
    chosen = _selected(model, spec, head)
    for _, param in chosen:
        param.requires_grad_(False)
    return sum(p.numel() for _, p in chosen)


def unfreeze(model: nn.Module, prefixes: Iterable[str]) -> int:
    """The reverse of `freeze` for parameter-name prefixes; returns the elements unfrozen."""
    chosen = _selected(model, list(prefixes), None)
    for _, param in chosen:
        param.requires_grad_(True)
    return sum(p.numel() for _, p in chosen)


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Schedule, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step decaying schedule: cosine annealing to 0 (Loshchilov & Hutter, SGDR,
    ICLR 2017), linear decay to 1 % of the start, or x0.1 steps at each third."""
    total_steps = max(total_steps, 1)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if schedule == "linear":
        return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.01, total_iters=total_steps)
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(total_steps // 3, 1), gamma=0.1)
    raise ConfigError(f"unknown schedule {schedule!r}: use cosine, linear or step")


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float  # mean over the epoch's batches
    lr: float  # the head's learning rate after the epoch's last step
    steps: int
    samples: int
    duration_s: float
    score: float | None = None  # what on_epoch returned (e.g. test accuracy)


@dataclass(frozen=True)
class FineTuneResult:
    epochs: list[EpochMetrics] = field(default_factory=list)
    trainable_params: int = 0
    frozen_params: int = 0
    reached_target: bool = False

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.epochs)

    @property
    def samples(self) -> int:
        return sum(e.samples for e in self.epochs)

    @property
    def final_score(self) -> float | None:
        return self.epochs[-1].score if self.epochs else None


def _set_modes(model: nn.Module) -> None:
    """Train mode, except sub-modules whose parameters are all frozen: those run in eval
    mode, so frozen dropout adds no noise and frozen BatchNorm keeps its statistics."""
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()


def optional_phase(run: Tracker | None, name: str) -> contextlib.AbstractContextManager[Any]:
    """`run.phase(name)`, or nothing without a run."""
    return run.phase(name) if run is not None else contextlib.nullcontext()


def fine_tune(
    model: nn.Module,
    head: str | nn.Module | None,
    train_batches: Batches,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    epochs: int,
    lr: float,
    freeze: FreezeSpec = "all-but-head",
    schedule: Schedule = "cosine",
    on_epoch: Callable[[int, nn.Module], float | None] | None = None,
    *,
    body_lr: float | None = None,
    optimizer: Literal["adam", "adamw"] = "adamw",
    weight_decay: float = 0.0,
    stop_at: float | None = None,
    run: Tracker | None = None,
) -> FineTuneResult:
    """Train `model` in place for up to `epochs` epochs and return per-epoch metrics.

    - `head`: the head's name, or a new head module that replaces the current head
      (found by `find_head`), or None (no head: `freeze="all-but-head"` is then an error).
    - `train_batches`: `(inputs..., target)` tuples, or `epoch -> batches` for reshuffling;
      the loss is `loss_fn(model(*inputs), target)`.
    - `freeze`: see `freeze()`; only parameters left trainable are optimised, the head with
      `lr`, other trainable layers with `body_lr` (default `lr`).
    - `on_epoch(epoch, model)` may return a score; with `stop_at`, training stops at the
      first epoch whose score reaches it.
    - `run`: a greenai Tracker; steps are marked forward/backward/optimizer_step and
      counted as `samples` and `steps`.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if lr <= 0 or (body_lr is not None and body_lr <= 0):
        raise ConfigError("learning rates must be positive")
    head_name: str | None = None
    if isinstance(head, nn.Module):
        head_name = find_head(model)
        _set_module(model, head_name, head)
    elif head is not None:
        head_name = find_head(model, head)
    elif freeze == "all-but-head":
        raise ConfigError("freeze='all-but-head' needs a head (its name or a new module)")
    _freeze(model, freeze, head_name)
    frozen = count_params(model, trainable=False)  # including any frozen before this call

    head_params = [p for p in model.get_submodule(head_name).parameters() if p.requires_grad] if head_name else []
    head_ids = {id(p) for p in head_params}
    body_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [
        g for g in ({"params": head_params, "lr": lr}, {"params": body_params, "lr": body_lr or lr}) if g["params"]
    ]
    if not groups:
        raise ConfigError("every parameter is frozen: nothing to fine-tune")
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(optimizer)
    if opt_cls is None:
        raise ConfigError(f"unknown optimizer {optimizer!r}: use adam or adamw")
    opt = opt_cls(groups, weight_decay=weight_decay)
    if callable(train_batches):
        steps_per_epoch = _count(train_batches)
    else:
        steps_per_epoch = len(train_batches)
        if steps_per_epoch == 0:
            raise ConfigError("no training batches")
    scheduler = make_scheduler(opt, schedule, epochs * steps_per_epoch)

    history: list[EpochMetrics] = []
    reached = False
    for epoch in range(epochs):
        _set_modes(model)
        started, losses, samples = time.perf_counter(), [], 0
        batches = train_batches(epoch) if callable(train_batches) else train_batches
        for batch in batches:
            *inputs, target = batch
            with optional_phase(run, "forward"):
                loss = loss_fn(model(*inputs), target)
            with optional_phase(run, "backward"):
                opt.zero_grad(set_to_none=True)
                loss.backward()
            with optional_phase(run, "optimizer_step"):
                opt.step()
                scheduler.step()
            n = batch_size(batch)
            samples += n
            losses.append(float(loss.detach()))
            if run is not None:
                run.count("samples", n)
                run.count("steps")
        score = on_epoch(epoch, model) if on_epoch is not None else None
        history.append(
            EpochMetrics(
                epoch,
                sum(losses) / max(len(losses), 1),
                opt.param_groups[0]["lr"],
                len(losses),
                samples,
                time.perf_counter() - started,
                score,
            )
        )
        if stop_at is not None and score is not None and score >= stop_at:
            reached = True
            break
    model.eval()
    return FineTuneResult(history, count_params(model, trainable=True), frozen, reached)


def _freeze(model: nn.Module, spec: FreezeSpec, head: str | None) -> int:
    return freeze(model, spec, head)


def _count(make_batches: Callable[[int], Iterable[Any]]) -> int:
    """Steps per epoch of a batch factory (calls it once for epoch 0)."""
    return sum(1 for _ in make_batches(0))


def shuffled_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int
) -> Callable[[int], list[tuple[torch.Tensor, torch.Tensor]]]:
    """An epoch -> batches factory: a fresh permutation per epoch, the same for a given
    (seed, epoch) so runs are repeatable."""

    def make(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        return [(x[idx], y[idx]) for idx in order.split(batch_size)]

    return make


def accuracy_on(x: torch.Tensor, y: torch.Tensor) -> Callable[[int, nn.Module], float]:
    def score(epoch: int, model: nn.Module) -> float:
        model.eval()
        with torch.inference_mode():
            return float((model(x).argmax(dim=1) == y).float().mean())

    return score
