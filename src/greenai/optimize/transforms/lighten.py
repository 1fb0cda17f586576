"""Lighter architectures: factor the convolutions of a trained CNN, then retrain it.

Two transforms replace every ``nn.Conv2d`` with a kernel larger than 1x1, ``groups == 1``
and at least ``min_channels`` input channels, wherever it sits in the module tree:

- ``DepthwiseSeparable`` (Howard et al. 2017, "MobileNets"): a k x k depthwise conv
  (one filter per input channel) followed by a 1x1 pointwise conv. Parameters and MACs
  fall from ``k²·Cin·Cout`` to ``k²·Cin + Cin·Cout``. The new pair starts as the best
  such factorisation of the original kernel: for each input channel i, the slice
  ``W[:, i]`` (Cout x k²) is replaced by its rank-1 SVD truncation (Eckart-Young), so
  ``W[o, i] ≈ P[o, i]·D[i]``. MobileNets put BatchNorm + ReLU between the two convs;
  we keep the pair linear so that it approximates the original layer before retraining.
- ``GroupedShuffle`` (Zhang et al. 2018, "ShuffleNet"): a grouped conv (``groups = g``)
  followed by a channel shuffle, so the next layer sees channels from every group.
  Parameters and MACs fall by g. The grouped conv starts from the original weights each
  output channel keeps for its group of inputs, ordered so that after the shuffle every
  channel is where the following layer expects it.

Both retrain the model with ``task.finetune`` (required) and report the parameter and
MAC reduction in the candidate's ``extra``. MACs are counted with
``torch.utils.flop_counter.FlopCounterMode`` on ``task.inputs[0]`` (1 MAC = 2 FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from greenai.errors import ConfigError, TransformSkipped
from greenai.optimize.candidate import Batch, Candidate, OptimizeTask, call_model
from greenai.optimize.model_stats import count_params

NEEDS_FINETUNE = "needs retraining: give a finetune function"


def conv2d_pair(size: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's kernel size, stride or dilation as the pair it is (torch types them
    ``tuple[int, ...]`` on every ``_ConvNd``; ``nn.Conv2d(...)`` takes a pair)."""
    first, second = size
    return first, second


class Conv2dGeometry(TypedDict):
    """Where a Conv2d's kernel goes over its input, as ``nn.Conv2d(...)`` takes it."""

    stride: tuple[int, int]
    padding: str | tuple[int, int]
    dilation: tuple[int, int]


def conv2d_geometry(conv: nn.Conv2d) -> Conv2dGeometry:
    """`conv`'s stride, padding and dilation, for a new Conv2d that slides the same way."""
    padding = conv.padding if isinstance(conv.padding, str) else conv2d_pair(conv.padding)
    return {"stride": conv2d_pair(conv.stride), "padding": padding, "dilation": conv2d_pair(conv.dilation)}


# ----------------------------------------------------------------------------- counting


def count_macs(model: nn.Module, batch: Batch) -> int:
    """Multiply-accumulates of one inference forward on `batch` (FLOPs / 2, as counted by
    torch's FlopCounterMode: matmuls and convolutions, groups taken into account)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            call_model(model, batch)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def reduction(before: int, after: int) -> float:
    """Fraction removed: 0.75 means `after` is a quarter of `before`."""
    return 1.0 - after / before if before else 0.0


# ----------------------------------------------------------------------------- layers


class DepthwiseSeparableConv2d(nn.Module):
    """k x k depthwise conv then 1x1 pointwise conv (Howard et al. 2017), kept linear."""

    def __init__(self, depthwise: nn.Conv2d, pointwise: nn.Conv2d) -> None:
        super().__init__()
        self.depthwise = depthwise
        self.pointwise = pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ChannelShuffle(nn.Module):
    """Channel shuffle (Zhang et al. 2018): view the channels as (groups, C/groups),
    transpose, flatten. Output channel ``a·groups + j`` is input channel ``j·C/groups + a``."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return x.reshape(n, self.groups, c // self.groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class GroupedShuffleConv2d(nn.Module):
    """Grouped conv followed by a channel shuffle (one ShuffleNet building block)."""

    def __init__(self, conv: nn.Conv2d, shuffle: ChannelShuffle) -> None:
        super().__init__()
        self.conv = conv
        self.shuffle = shuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def shuffle_permutation(channels: int, groups: int) -> torch.Tensor:
    """`perm[p]` = the channel a ChannelShuffle(groups) moves to position p."""
    return torch.arange(channels).reshape(groups, channels // groups).t().reshape(-1)


def separable_from_conv(conv: nn.Conv2d) -> DepthwiseSeparableConv2d:
    """The depthwise-separable pair closest to `conv` (per-input-channel rank-1 SVD)."""
    w = conv.weight.detach()
    c_out, c_in, kh, kw = w.shape
    kwargs: dict[str, Any] = {"device": w.device, "dtype": w.dtype}
    depthwise = nn.Conv2d(
        c_in,
        c_in,
        (kh, kw),
        groups=c_in,
        bias=False,
        padding_mode=conv.padding_mode,
        **conv2d_geometry(conv),
        **kwargs,
    )
    pointwise = nn.Conv2d(c_in, c_out, 1, bias=conv.bias is not None, **kwargs)
    slices = w.permute(1, 0, 2, 3).reshape(c_in, c_out, kh * kw).float()  # W[:, i] per i
    u, s, vh = torch.linalg.svd(slices, full_matrices=False)
    root = s[:, :1].sqrt()  # split the singular value evenly between the two factors
    point = u[:, :, 0] * root  # (c_in, c_out)
    depth = vh[:, 0, :] * root  # (c_in, k²)
    with torch.no_grad():
        depthwise.weight.copy_(depth.reshape(c_in, 1, kh, kw).to(w.dtype))
        pointwise.weight.copy_(point.t().reshape(c_out, c_in, 1, 1).to(w.dtype))
        if conv.bias is not None:
            assert pointwise.bias is not None  # made with a bias when conv has one
            pointwise.bias.copy_(conv.bias.detach())
    return DepthwiseSeparableConv2d(depthwise, pointwise)


def grouped_from_conv(conv: nn.Conv2d, groups: int) -> GroupedShuffleConv2d:
    """A grouped conv + channel shuffle started from `conv`'s within-group weights."""
    w = conv.weight.detach()
    c_out, c_in = w.shape[:2]
    if c_in % groups or c_out % groups:
        raise ConfigError(f"channels {c_in}->{c_out} do not divide into {groups} groups")
    grouped = nn.Conv2d(
        c_in,
        c_out,
        conv2d_pair(conv.kernel_size),
        groups=groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=w.device,
        dtype=w.dtype,
        **conv2d_geometry(conv),
    )
    # Grouped output channel q (group q // (c_out/g)) lands at shuffled position p with
    # perm[p] = q, so it must compute the original channel p from its group's inputs.
    perm = shuffle_permutation(c_out, groups).to(w.device)
    position = torch.empty_like(perm)
    position[perm] = torch.arange(c_out, device=w.device)
    in_per, out_per = c_in // groups, c_out // groups
    ordered = w[position]  # row q holds original channel position[q]
    blocks = [ordered[g * out_per : (g + 1) * out_per, g * in_per : (g + 1) * in_per] for g in range(groups)]
    with torch.no_grad():
        grouped.weight.copy_(torch.cat(blocks))
        if conv.bias is not None:
            assert grouped.bias is not None  # made with a bias when conv has one
            grouped.bias.copy_(conv.bias.detach()[position])
    return GroupedShuffleConv2d(grouped, ChannelShuffle(groups))


# ----------------------------------------------------------------------------- replacing


def _iter_convs(model: nn.Module, qualifies: Callable[[nn.Conv2d], bool]) -> Iterator[tuple[str, nn.Conv2d]]:
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.Conv2d) and qualifies(module):
            yield name, module


def replace_convs(
    model: nn.Module, qualifies: Callable[[nn.Conv2d], bool], build: Callable[[nn.Conv2d], nn.Module]
) -> tuple[nn.Module, int]:
    """Replace, in place, every conv `qualifies` accepts by `build(conv)`; return the model
    (new only if it is itself such a conv) and how many distinct convs were replaced.
    Works on any module tree: each conv is swapped on its parent by attribute name; a conv
    shared by several parents stays shared."""
    built: dict[int, nn.Module] = {}
    for name, conv in list(_iter_convs(model, qualifies)):
        if id(conv) not in built:
            built[id(conv)] = build(conv)
        if not name:
            return built[id(conv)], 1
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, built[id(conv)])
    return model, len(built)


def _has_spatial_kernel(conv: nn.Conv2d) -> bool:
    return any(k > 1 for k in conv.kernel_size) and conv.groups == 1


class _ConvReplacement:
    """Shared flow: find qualifying convs, replace them in a copy, retrain, report."""

    name: str
    what: str  # for the skip reason

    def __init__(self, min_channels: int, finetune_steps: int | None) -> None:
        if min_channels < 1:
            raise ConfigError(f"min_channels must be >= 1, got {min_channels}")
        if finetune_steps is not None and finetune_steps < 0:
            raise ConfigError(f"finetune_steps must be >= 0, got {finetune_steps}")
        self.min_channels = min_channels
        self.finetune_steps = finetune_steps

    def qualifies(self, conv: nn.Conv2d) -> bool:
        return _has_spatial_kernel(conv) and conv.in_channels >= self.min_channels

    def build(self, conv: nn.Conv2d) -> nn.Module:
        raise NotImplementedError

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        if not any(True for _ in _iter_convs(candidate.model, self.qualifies)):
            raise TransformSkipped(f"no Conv2d qualifies: {self.what}")
        if task.finetune is None:
            raise TransformSkipped(NEEDS_FINETUNE)
        model = candidate.model_copy()
        was_training = model.training
        batch = task.inputs[0] if len(task.inputs) else None
        params_before = count_params(model)
        macs_before = count_macs(model, batch) if batch is not None else None
        model, replaced = replace_convs(model, self.qualifies, self.build)
        steps = task.finetune_steps if self.finetune_steps is None else self.finetune_steps
        task.finetune(model, steps)
        model.train(was_training)
        params_after = count_params(model)
        extra: dict[str, Any] = {
            "layers_replaced": replaced,
            "finetune_steps": steps,
            "params_before": params_before,
            "params_after": params_after,
            "param_reduction": reduction(params_before, params_after),
        }
        if batch is not None and macs_before is not None:
            macs_after = count_macs(model, batch)
            extra.update(
                macs_before=macs_before, macs_after=macs_after, mac_reduction=reduction(macs_before, macs_after)
            )
        note = f"{replaced} conv layer(s) replaced, retrained {steps} steps; params -{extra['param_reduction']:.0%}" + (
            f", MACs -{extra['mac_reduction']:.0%}" if "mac_reduction" in extra else ""
        )
        return candidate.derive(self.name, model, note=note, **extra)


class DepthwiseSeparable(_ConvReplacement):
    """Replace k x k convs by depthwise + pointwise pairs (MobileNets), SVD-initialised,
    then retrain with `task.finetune` for `finetune_steps` (default: the task's)."""

    name = "depthwise-separable"

    def __init__(self, min_channels: int = 8, finetune_steps: int | None = None) -> None:
        super().__init__(min_channels, finetune_steps)
        self.what = f"kernel > 1, groups == 1 and in_channels >= {min_channels}"

    def build(self, conv: nn.Conv2d) -> nn.Module:
        return separable_from_conv(conv)


class GroupedShuffle(_ConvReplacement):
    """Replace k x k convs by `groups`-grouped convs + channel shuffle (ShuffleNet) where
    both channel counts divide by `groups`, then retrain with `task.finetune`."""

    def __init__(self, groups: int = 4, min_channels: int = 8, finetune_steps: int | None = None) -> None:
        if groups < 2:
            raise ConfigError(f"groups must be >= 2, got {groups}")
        super().__init__(min_channels, finetune_steps)
        self.groups = groups
        self.name = f"grouped-shuffle-{groups}"
        self.what = f"kernel > 1, groups == 1, in_channels >= {min_channels} and in/out channels divisible by {groups}"

    def qualifies(self, conv: nn.Conv2d) -> bool:
        return super().qualifies(conv) and conv.in_channels % self.groups == 0 and conv.out_channels % self.groups == 0

    def build(self, conv: nn.Conv2d) -> nn.Module:
        return grouped_from_conv(conv, self.groups)
