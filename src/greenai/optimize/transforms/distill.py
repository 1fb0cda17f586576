"""Knowledge distillation: train a smaller student to imitate the candidate's model.

Loss (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network"), for
class logits s (student) and t (teacher) with temperature T and weight α::

    L = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y)

The T² keeps the soft-target gradients on the same scale as the hard-target ones when T
changes. Without targets y in the batch the loss is the soft term alone (α = 1).

For teachers whose output is not class logits (regression, sentence embeddings), use
``kind="embedding"``: the soft term becomes ``MSE(s, t) + mean(1 − cos(s, t))`` (MSE
matching of teacher embeddings as in Reimers & Gurevych 2020, "Making Monolingual
Sentence Embeddings Multilingual using Knowledge Distillation"; the cosine term keeps the
direction right when embeddings are small), and the hard term MSE(s, y) when the batch
carries float targets of the output's size.

The student is trained with Adam for ``steps`` steps over ``task.train_batches`` (cycled;
each batch is ``(inputs..., target)`` or inputs alone), with a cosine-decayed learning
rate (Loshchilov & Hutter 2017). The teacher runs in eval mode under ``no_grad``; its
outputs are computed once per training batch and reused when the batches cycle.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from greenai.errors import ConfigError, TransformSkipped
from greenai.optimize.candidate import Batch, Candidate, OptimizeTask, call_model
from greenai.optimize.model_stats import count_params
from greenai.optimize.transforms.lighten import conv2d_geometry, conv2d_pair, count_macs, reduction

Kind = Literal["logits", "embedding"]
KINDS: tuple[str, ...] = ("logits", "embedding")

StudentSpec = nn.Module | Callable[[], nn.Module] | Callable[[nn.Module], nn.Module]


# ----------------------------------------------------------------------------- loss


def soft_target_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T²·KL(softmax(t/T) ‖ softmax(s/T)), classes along dim 1, averaged over the other
    positions (batch, and sequence if any). Hinton et al. 2015."""
    log_p_s = F.log_softmax(student / temperature, dim=1)
    log_p_t = F.log_softmax(teacher / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()
    return temperature**2 * kl


def embedding_match_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE(s, t) + mean(1 − cos(s, t)), cosine along the last dimension."""
    cosine = (
        F.cosine_similarity(student, teacher, dim=-1)
        if student.dim() > 1
        else F.cosine_similarity(student.unsqueeze(0), teacher.unsqueeze(0), dim=-1)
    )
    return F.mse_loss(student, teacher) + (1.0 - cosine).mean()


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.7,
    kind: Kind = "logits",
) -> torch.Tensor:
    """α·soft + (1 − α)·hard; the soft term alone when `target` is None (see module doc)."""
    _check_kind(kind)
    if kind == "logits":
        soft = soft_target_loss(student, teacher, temperature)
        hard = None if target is None else F.cross_entropy(student, target)
    else:
        soft = embedding_match_loss(student, teacher)
        hard = None if target is None else F.mse_loss(student, target.reshape(student.shape).to(student.dtype))
    return soft if hard is None else alpha * soft + (1.0 - alpha) * hard


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"distillation kind must be one of {', '.join(KINDS)}; got {kind!r}")


# ----------------------------------------------------------------------------- batches


def split_batch(batch: Batch) -> tuple[tuple[Any, ...], torch.Tensor | None]:
    """A training batch `(inputs..., target)` -> (inputs, target); a lone tensor or a
    1-tuple has no target."""
    if isinstance(batch, (tuple, list)):
        if len(batch) >= 2:
            return tuple(batch[:-1]), batch[-1]
        return tuple(batch), None
    return (batch,), None


def _usable_target(kind: str, output: torch.Tensor, target: Any) -> torch.Tensor | None:
    """The target if the hard loss can use it, else None (distil on soft targets only)."""
    if not isinstance(target, torch.Tensor):
        return None
    if kind == "logits":
        if not target.is_floating_point() and target.shape == output.shape[:1] + output.shape[2:]:
            return target
        if target.is_floating_point() and target.shape == output.shape:  # class probabilities
            return target
        return None
    return target if target.is_floating_point() and target.numel() == output.numel() else None


# ----------------------------------------------------------------------------- students


def halve_width(model: nn.Module) -> nn.Module:
    """A narrower copy of a Sequential CNN/MLP: every hidden Conv2d/Linear keeps half its
    output channels/features (the final one keeps all), and the layers after it (BatchNorm,
    LayerNorm, the next Conv2d/Linear, a Flatten→Linear transition) shrink to match.

    The kept channels are those with the largest L1 weight norm (Li et al. 2017, "Pruning
    Filters for Efficient ConvNets"), copied from `model`, so the student starts close to
    the teacher. `model` is not changed. Raises TransformSkipped for anything else."""
    if not isinstance(model, nn.Sequential):
        raise TransformSkipped(f"halve_width needs an nn.Sequential, got {type(model).__name__}")
    layers = [copy.deepcopy(layer) for layer in model]
    width_at = [i for i, layer in enumerate(layers) if isinstance(layer, (nn.Conv2d, nn.Linear))]
    if len(width_at) < 2:
        raise TransformSkipped("halve_width needs at least one hidden Conv2d/Linear before the last")
    keep: torch.Tensor | None = None  # indices of the previous width layer's kept outputs
    spatial: int | None = None  # positions per channel folded by a Flatten (None: not flattened)
    previous: nn.Module | None = None  # the previous Conv2d/Linear
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            if isinstance(previous, nn.Conv2d) and isinstance(layer, nn.Linear) and spatial is None:
                raise TransformSkipped("halve_width needs a Flatten between a Conv2d and a Linear")
            if isinstance(previous, nn.Linear) and isinstance(layer, nn.Conv2d):
                raise TransformSkipped("halve_width cannot narrow a Linear followed by a Conv2d")
            previous = layer
            layer, keep = _narrow(layer, keep, spatial, hidden=i != width_at[-1])
            layers[i] = layer
            spatial = None
        elif isinstance(layer, nn.Flatten):
            spatial = _flatten_spatial(layers, i, width_at, keep, model)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layers[i] = _narrow_batchnorm(layer, keep)
        elif isinstance(layer, nn.LayerNorm):
            layers[i] = _narrow_layernorm(layer, keep)
        elif any(True for _ in layer.parameters()) or any(True for _ in layer.buffers()):
            raise TransformSkipped(f"halve_width cannot narrow a {type(layer).__name__} layer")
    return nn.Sequential(*layers)


def _flatten_spatial(
    layers: list[nn.Module], i: int, width_at: list[int], keep: torch.Tensor | None, model: nn.Sequential
) -> int | None:
    """Positions per channel that the Flatten at `i` folds into features, from the next
    Linear's in_features and the channels of the previous conv."""
    prev = [j for j in width_at if j < i]
    nxt = [j for j in width_at if j > i]
    conv = model[prev[-1]] if prev else None
    if not isinstance(conv, nn.Conv2d):
        return None  # flattening the raw input or an MLP's features: nothing to rescale
    channels = conv.out_channels
    linear = model[nxt[0]] if nxt else None
    if not isinstance(linear, nn.Linear) or linear.in_features % channels:
        raise TransformSkipped(
            "halve_width cannot follow a Flatten that is not followed by a "
            "Linear whose in_features divide by the conv channels"
        )
    layer = layers[i]
    assert isinstance(layer, nn.Flatten)  # halve_width calls this at a Flatten
    if layer.start_dim != 1 or layer.end_dim != -1:
        raise TransformSkipped("halve_width handles only Flatten(start_dim=1, end_dim=-1)")
    return linear.in_features // channels


def _narrow(
    layer: nn.Conv2d | nn.Linear, keep_in: torch.Tensor | None, spatial: int | None, hidden: bool
) -> tuple[nn.Module, torch.Tensor]:
    """Slice `layer`'s inputs to `keep_in` (expanded over `spatial` positions after a
    Flatten) and, if hidden, its outputs to the half with the largest L1 norm."""
    w = layer.weight.detach()
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        raise TransformSkipped("halve_width cannot narrow grouped convolutions")
    in_idx = None
    if keep_in is not None:
        in_idx = (
            keep_in
            if spatial is None
            else (keep_in[:, None] * spatial + torch.arange(spatial, device=w.device)).reshape(-1)
        )
        w = w[:, in_idx]
    n_out = w.shape[0]
    if hidden:
        out_idx = torch.sort(w.abs().reshape(n_out, -1).sum(dim=1).topk(max(1, n_out // 2)).indices).values
    else:
        out_idx = torch.arange(n_out, device=w.device)
    w = w[out_idx]
    bias = layer.bias is not None
    kwargs: dict[str, Any] = {"device": w.device, "dtype": w.dtype, "bias": bias}
    if isinstance(layer, nn.Conv2d):
        new: nn.Conv2d | nn.Linear = nn.Conv2d(
            w.shape[1],
            w.shape[0],
            conv2d_pair(layer.kernel_size),
            padding_mode=layer.padding_mode,
            **conv2d_geometry(layer),
            **kwargs,
        )
    else:
        new = nn.Linear(w.shape[1], w.shape[0], **kwargs)
    with torch.no_grad():
        new.weight.copy_(w)
        if layer.bias is not None:
            assert new.bias is not None  # made with a bias when layer has one
            new.bias.copy_(layer.bias.detach()[out_idx])
    return new, out_idx


def _narrow_batchnorm(layer: nn.modules.batchnorm._BatchNorm, keep: torch.Tensor | None) -> nn.Module:
    if keep is None:
        return layer
    new = copy.deepcopy(layer)
    new.num_features = len(keep)
    for name in ("weight", "bias"):
        if getattr(layer, name) is not None:
            setattr(new, name, nn.Parameter(getattr(layer, name).detach()[keep].clone()))
    for name in ("running_mean", "running_var"):
        if getattr(layer, name) is not None:
            new.register_buffer(name, getattr(layer, name)[keep].clone())
    return new


def _narrow_layernorm(layer: nn.LayerNorm, keep: torch.Tensor | None) -> nn.Module:
    if keep is None:
        return layer
    if len(layer.normalized_shape) != 1:
        raise TransformSkipped("halve_width handles only LayerNorm over the last dimension")
    new = copy.deepcopy(layer)
    new.normalized_shape = (len(keep),)
    for name in ("weight", "bias"):
        if getattr(layer, name) is not None:
            setattr(new, name, nn.Parameter(getattr(layer, name).detach()[keep].clone()))
    return new


def _required_positional(factory: Callable[..., Any]) -> int | None:
    """How many positional arguments `factory` requires (None if it cannot be inspected)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in signature.parameters.values() if p.kind in kinds and p.default is p.empty)


def build_student(student: StudentSpec, teacher: nn.Module) -> nn.Module:
    """A fresh student: a copy of a module, `student()` for a zero-argument factory, or
    `student(teacher_copy)` for a one-argument factory (such as `halve_width`)."""
    if isinstance(student, nn.Module):
        return copy.deepcopy(student)
    required = _required_positional(student)
    if required == 0:
        built = student()  # type: ignore[call-arg]
    elif required == 1:
        built = student(copy.deepcopy(teacher))  # type: ignore[call-arg]
    else:
        raise ConfigError(
            "a student factory takes no argument or one (the teacher); "
            f"{getattr(student, '__name__', student)!r} requires {required}"
        )
    if not isinstance(built, nn.Module):
        raise ConfigError(f"the student factory returned {type(built).__name__}, not an nn.Module")
    return built


# ----------------------------------------------------------------------------- transform


class Distill:
    """Distil the candidate's model into `student` (Hinton et al. 2015).

    `student` is a module (copied; its weights are the starting point), a zero-argument
    factory (``lambda: MyNet()`` or the class itself), or a one-argument factory that
    receives a copy of the teacher (``halve_width``). `kind` is ``"logits"`` for
    classifiers and ``"embedding"`` for regression/embedding outputs. The name is
    ``distill-<factory name>`` for a named factory (``distill-halve-width``), ``distill``
    otherwise, unless `name` is given.
    """

    def __init__(
        self,
        student: StudentSpec,
        steps: int = 300,
        temperature: float = 4.0,
        alpha: float = 0.7,
        lr: float = 1e-3,
        kind: Kind = "logits",
        name: str | None = None,
    ) -> None:
        _check_kind(kind)
        if steps < 1:
            raise ConfigError(f"distillation steps must be >= 1, got {steps}")
        if temperature <= 0:
            raise ConfigError(f"distillation temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"distillation alpha must be in [0, 1], got {alpha}")
        if lr <= 0:
            raise ConfigError(f"distillation lr must be > 0, got {lr}")
        if not isinstance(student, nn.Module) and not callable(student):
            raise ConfigError(f"student must be an nn.Module or a factory, got {type(student).__name__}")
        self.student = student
        self.steps, self.temperature, self.alpha, self.lr, self.kind = steps, temperature, alpha, lr, kind
        self.name = name or _default_name(student)

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        if not task.train_batches:
            raise TransformSkipped("distillation needs training batches: give train_batches")
        teacher = candidate.model
        student = build_student(self.student, teacher)
        _move_like(student, teacher)
        probe = task.inputs[0] if len(task.inputs) else split_batch(task.train_batches[0])[0]
        t_probe, s_probe = _outputs(teacher, probe), _outputs(student, probe)
        if t_probe.shape != s_probe.shape:
            raise TransformSkipped(
                f"student output shape {tuple(s_probe.shape)} differs from the teacher's {tuple(t_probe.shape)}"
            )
        if self.kind == "logits" and (t_probe.dim() < 2 or t_probe.shape[1] < 2):
            raise TransformSkipped(f"teacher output {tuple(t_probe.shape)} is not class logits; use kind='embedding'")
        final_loss = self._train(student, teacher, task.train_batches)
        student.eval()
        extra: dict[str, Any] = {
            "distill_steps": self.steps,
            "distill_final_loss": final_loss,
            "params_before": count_params(teacher),
            "params_after": count_params(student),
            "distill_fidelity": _fidelity(self.kind, _outputs(student, probe), t_probe),
        }
        extra["param_reduction"] = reduction(extra["params_before"], extra["params_after"])
        if len(task.inputs):
            macs_before, macs_after = count_macs(teacher, probe), count_macs(student, probe)
            extra.update(
                macs_before=macs_before, macs_after=macs_after, mac_reduction=reduction(macs_before, macs_after)
            )
        measure = "top-1 agreement" if self.kind == "logits" else "mean cosine"
        note = (
            f"student distilled for {self.steps} steps (T={self.temperature}, α={self.alpha}); "
            f"{measure} with the teacher {extra['distill_fidelity']:.3f}, "
            f"params -{extra['param_reduction']:.0%}"
        )
        return candidate.derive(self.name, student, note=note, **extra)

    def _train(self, student: nn.Module, teacher: nn.Module, batches: Sequence[Batch]) -> float:
        """Adam with cosine-decayed LR over `batches`, cycled; returns the last loss."""
        optimizer = torch.optim.Adam(student.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.steps)
        teacher_out: dict[int, torch.Tensor] = {}
        student.train()
        loss = torch.tensor(float("nan"))
        for step in range(self.steps):
            index = step % len(batches)
            inputs, target = split_batch(batches[index])
            if index not in teacher_out:
                teacher_out[index] = _outputs(teacher, inputs)
            output = call_model(student, inputs)
            target = _usable_target(self.kind, output, target)
            loss = distillation_loss(
                output, teacher_out[index], target, temperature=self.temperature, alpha=self.alpha, kind=self.kind
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        return float(loss.detach())


def _default_name(student: StudentSpec) -> str:
    label = getattr(student, "__name__", None) if not isinstance(student, nn.Module) else None
    if not label or label.startswith("<"):
        return "distill"
    return "distill-" + label.replace("_", "-").lower()


def _move_like(student: nn.Module, teacher: nn.Module) -> None:
    reference = next(teacher.parameters(), None)
    if reference is not None:
        student.to(reference.device)


def _outputs(model: nn.Module, batch: Batch) -> torch.Tensor:
    """`model`'s output on `batch` in eval mode without gradients (training flag restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = call_model(model, batch)
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise TransformSkipped(f"distillation needs a tensor output, the model returns {type(out).__name__}")
    return out


def _fidelity(kind: str, student: torch.Tensor, teacher: torch.Tensor) -> float:
    """Top-1 agreement for logits; mean cosine similarity for embeddings."""
    if kind == "logits":
        return float((student.argmax(dim=1) == teacher.argmax(dim=1)).float().mean())
    flat_s, flat_t = student.reshape(len(student), -1), teacher.reshape(len(teacher), -1)
    return float(F.cosine_similarity(flat_s, flat_t, dim=1).mean())
