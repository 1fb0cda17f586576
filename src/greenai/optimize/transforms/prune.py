"""Pruning transforms: unstructured (masks) and structured (channels physically removed).

- `UnstructuredPrune`: one global threshold over the weights of all Conv/Linear layers,
  scored by magnitude, first-order Taylor or Optimal Brain Damage (see `importance`);
  masks applied with `torch.nn.utils.prune.custom_from_mask`, held through fine-tuning,
  then made permanent (`prune.remove`). The result is a dense model with zeros in it:
  dense kernels do the same work, so it is not expected to save energy (DESIGN.md,
  principle 6 — the measurement decides).
- `StructuredPrune`: removes whole output channels/neurons with torch-pruning (Fang et
  al. 2023, "DepGraph: Towards Any Structural Pruning"), which follows the dependencies
  between layers (a conv's output channels, the next batch norm, the next conv's input
  channels) so the model stays consistent. Smaller dense tensors mean less work.

Both work on a copy (the input candidate's model is never touched) and raise
`TransformSkipped` with a reason when they cannot apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from greenai.errors import ConfigError, GreenAIError, TransformSkipped
from greenai.optimize.candidate import Batch, Candidate, OptimizeTask, call_model
from greenai.optimize.model_stats import count_parameters, model_size_bytes
from greenai.optimize.transforms.importance import LossFn, hessian_scores, magnitude_scores, taylor_scores

__all__ = ["StructuredPrune", "UnstructuredPrune", "count_parameters", "model_size_bytes", "prunable_layers"]

UnstructuredImportance = Literal["magnitude", "taylor", "hessian"]
StructuredImportance = Literal["magnitude", "taylor"]
_PRUNABLE = (nn.Linear, nn.modules.conv._ConvNd)
Prunable = nn.Linear | nn.modules.conv._ConvNd  # the layers whose weight pruning masks


def _check_fraction(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ConfigError(f"{what} must be a fraction strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}: use one of {', '.join(allowed)}")
    return value


def _check_steps(steps: int | None) -> int | None:
    if steps is not None and (not isinstance(steps, int) or steps < 0):
        raise ConfigError(f"finetune_steps must be a non-negative integer or None, got {steps!r}")
    return steps


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}"


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((o for o in output if isinstance(o, torch.Tensor)), None)
    if isinstance(output, dict):
        return next((o for o in output.values() if isinstance(o, torch.Tensor)), None)
    return None


def _finetune(model: nn.Module, task: OptimizeTask, steps: int | None) -> str:
    """Fine-tune `model` in place with the task's loop; returns what was done, for the note."""
    steps = task.finetune_steps if steps is None else steps
    if task.finetune is None:
        return "not fine-tuned (the task has no finetune function), so quality may drop"
    if steps <= 0:
        return "not fine-tuned (0 steps requested)"
    try:
        task.finetune(model, steps)
    except GreenAIError:
        raise
    except Exception as e:  # the user's loop failed on this model: skip it, keep the search going
        raise TransformSkipped(f"fine-tuning the pruned model failed: {type(e).__name__}: {e}") from e
    return f"fine-tuned {steps} steps"


class _Gradients(NamedTuple):
    """What gradient-based importance is computed from: the task's loss and some training batches."""

    loss: LossFn
    batches: list[Batch]


def _gradient_inputs(task: OptimizeTask, importance: str, limit: int) -> _Gradients:
    if task.loss is None or not task.train_batches:
        raise TransformSkipped(f"{importance} importance needs gradients: the task gives no loss and train_batches")
    return _Gradients(task.loss, list(task.train_batches[:limit]))


def _weight(module: Prunable) -> nn.Parameter:
    weight = module.weight
    assert isinstance(weight, nn.Parameter)  # prunable_layers keeps plain parameters only
    return weight


def prunable_layers(model: nn.Module) -> list[tuple[str, Prunable]]:
    """(name, module) of the Conv/Linear layers whose weight unstructured pruning may mask.

    Left out: layers whose weight is not a plain parameter (already masked, or
    parametrized), weights shared with another module (tied embeddings: a mask on one
    user would not hold for the other), and the projections inside
    `nn.MultiheadAttention`, which reads `out_proj.weight` without calling `out_proj`, so
    a pruning hook would never refresh the masked weight.
    """
    uses: dict[int, int] = {}
    for module in model.modules():
        for param in module._parameters.values():
            if param is not None:
                uses[id(param)] = uses.get(id(param), 0) + 1
    inside_attention = {
        id(child)
        for m in model.modules()
        if isinstance(m, nn.MultiheadAttention)
        for child in m.modules()
        if child is not m
    }
    layers: list[tuple[str, Prunable]] = []
    for name, module in model.named_modules():
        if not isinstance(module, _PRUNABLE):
            continue
        weight = module._parameters.get("weight")
        if weight is None or id(module) in inside_attention or uses[id(weight)] > 1:
            continue
        layers.append((name, module))
    return layers


def global_masks(scores: Sequence[torch.Tensor], amount: float) -> list[torch.Tensor]:
    """Boolean keep-masks dropping the lowest `amount` fraction of scores, all tensors together.

    One threshold for the whole model (as `torch.nn.utils.prune.global_unstructured`), so
    layers with many unimportant weights lose more than others. Exactly
    round(amount · total) weights are pruned; ties are broken by position.
    """
    flat = torch.cat([s.detach().flatten().float() for s in scores])
    k = round(amount * flat.numel())
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(flat, stable=True)[:k]] = False
    masks, start = [], 0
    for s in scores:
        masks.append(keep[start : start + s.numel()].view_as(s))
        start += s.numel()
    return masks


@dataclass
class UnstructuredPrune:
    """Zero the `amount` fraction of Conv/Linear weights with the lowest importance.

    importance: "magnitude" |w|; "taylor" (w·g)² (needs task.loss and task.train_batches);
    "hessian" OBD ½·|h_ii|·w² with a Hutchinson Hessian diagonal (same needs). Gradients
    come from at most `importance_batches` training batches; "hessian" draws
    `hessian_samples` Rademacher vectors per batch. Fine-tunes `finetune_steps` (default
    task.finetune_steps) with the masks held, then makes them permanent.
    """

    amount: float
    importance: UnstructuredImportance = "magnitude"
    finetune_steps: int | None = None
    importance_batches: int = 8
    hessian_samples: int = 4
    seed: int = 0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.amount = _check_fraction(self.amount, "amount")
        _check_choice(self.importance, ("magnitude", "taylor", "hessian"), "importance")
        _check_steps(self.finetune_steps)
        if self.importance_batches < 1 or self.hessian_samples < 1:
            raise ConfigError("importance_batches and hessian_samples must be at least 1")
        self.name = f"prune-unstructured-{self.importance}-{_percent(self.amount)}"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        gradients = (
            None if self.importance == "magnitude" else _gradient_inputs(task, self.importance, self.importance_batches)
        )
        model = candidate.model_copy()
        layers = prunable_layers(model)
        if not layers:
            raise TransformSkipped("no Conv or Linear layer with a prunable weight")
        weights = [_weight(module) for _, module in layers]
        try:
            if gradients is None:
                scores = magnitude_scores(weights)
            elif self.importance == "taylor":
                scores = taylor_scores(model, weights, gradients.loss, gradients.batches)
            else:
                scores = hessian_scores(
                    model, weights, gradients.loss, gradients.batches, self.hessian_samples, self.seed
                )
        except RuntimeError as e:  # e.g. an op without double backward
            raise TransformSkipped(
                f"{self.importance} importance failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from e
        for (_, module), mask in zip(layers, global_masks(scores, self.amount)):
            torch_prune.custom_from_mask(module, "weight", mask.to(module.weight.dtype))
        tuned = _finetune(model, task, self.finetune_steps)
        for _, module in layers:
            torch_prune.remove(module, "weight")
        zeros = sum(int((module.weight == 0).sum()) for _, module in layers)
        total = sum(module.weight.numel() for _, module in layers)
        sparsity = zeros / total
        note = (
            f"unstructured pruning ({self.importance} importance) only zeroes weights "
            f"({sparsity:.0%} of the Conv/Linear weights) inside dense tensors: dense kernels "
            "still multiply by the zeros, so the model does the same work and no energy saving "
            f"should be expected (the measurement will show it); {tuned}"
        )
        return candidate.derive(self.name, model, note=note, sparsity=sparsity, pruned_layers=len(layers))


def classifier_layer(model: nn.Module, output: torch.Tensor) -> nn.Module | None:
    """The layer that makes the output width: the last Linear with out_features equal to
    the output's last dimension, else the last Conv with out_channels equal to dim 1."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == output.shape[-1]]
    if linears:
        return linears[-1]
    if output.dim() >= 2:
        convs = [
            m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd) and m.out_channels == output.shape[1]
        ]
        if convs:
            return convs[-1]
    return None


def _summary(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


@dataclass
class StructuredPrune:
    """Remove the `ratio` fraction of channels/neurons of each prunable layer (torch-pruning).

    importance: "magnitude" (L2 norm of each channel's weights, Li et al. 2017 "Pruning
    Filters for Efficient ConvNets" with p=2) or "taylor" (Σ|w·g| over each channel's weights, Molchanov
    et al. 2019; gradients of task.loss over at most `importance_batches` training
    batches). The final classifier is left whole, so the output shape is unchanged.
    """

    ratio: float
    importance: StructuredImportance = "magnitude"
    finetune_steps: int | None = None
    importance_batches: int = 8
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = _check_fraction(self.ratio, "ratio")
        _check_choice(self.importance, ("magnitude", "taylor"), "importance")
        _check_steps(self.finetune_steps)
        if self.importance_batches < 1:
            raise ConfigError("importance_batches must be at least 1")
        self.name = f"prune-structured-{self.importance}-{_percent(self.ratio)}"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        try:
            import torch_pruning as tp
        except ImportError as e:
            raise TransformSkipped("structured pruning needs torch-pruning (pip install torch-pruning)") from e
        gradients = _gradient_inputs(task, "taylor", self.importance_batches) if self.importance == "taylor" else None
        if not task.inputs:
            raise TransformSkipped("the task has no inputs to trace the model with")
        example = task.inputs[0]
        model = candidate.model_copy()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            reference = _first_tensor(call_model(model, example))
        if reference is None:
            raise TransformSkipped("the model output has no tensor to keep the shape of")
        keep = classifier_layer(model, reference)
        before, _ = count_parameters(model)
        try:
            pruner = tp.pruner.MetaPruner(
                model,
                example,
                importance=self._tp_importance(tp),
                pruning_ratio=self.ratio,
                ignored_layers=[keep] if keep is not None else [],
                forward_fn=call_model,
            )
            if gradients is not None:
                self._accumulate_grads(model, gradients)
            pruner.step()
        except GreenAIError:
            raise
        except Exception as e:  # torch-pruning could not trace or prune this model
            raise TransformSkipped(f"torch-pruning cannot prune this model: {_summary(e)}") from e
        finally:
            model.zero_grad(set_to_none=True)
        after, _ = count_parameters(model)
        if after >= before:
            raise TransformSkipped("torch-pruning found no channel it could remove")
        try:
            with torch.no_grad():
                output = _first_tensor(call_model(model, example))
        except Exception as e:
            raise TransformSkipped(f"the pruned model fails on the task's input: {_summary(e)}") from e
        if output is None or output.shape != reference.shape:
            raise TransformSkipped(
                f"pruning changed the output shape from {tuple(reference.shape)} "
                f"to {None if output is None else tuple(output.shape)}"
            )
        model.train(was_training)
        tuned = _finetune(model, task, self.finetune_steps)
        note = (
            f"structured pruning ({self.importance} importance) physically removed channels/"
            f"neurons: {before - after} of {before} parameters ({(before - after) / before:.0%}) "
            f"gone, so dense kernels do less work; {tuned}"
        )
        return candidate.derive(self.name, model, note=note, params_before=before, params_after=after)

    def _tp_importance(self, tp: Any) -> Any:
        if self.importance == "taylor":
            return tp.importance.TaylorImportance()
        return tp.importance.MagnitudeImportance(p=2)

    @staticmethod
    def _accumulate_grads(model: nn.Module, gradients: _Gradients) -> None:
        """Sum of the loss gradients over the batches in .grad, for TaylorImportance."""
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            for batch in gradients.batches:
                gradients.loss(model, batch).backward()
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.grad is None:
                weight.grad = torch.zeros_like(weight)  # not on the loss path: no importance
