"""Size facts about a model: parameter counts (total and nonzero) and serialized bytes.

These are proxies, reported beside measured energy, never instead of it (DESIGN.md,
principle 6): a model with half its weights zeroed is not half as costly to run.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import torch
from torch import nn


def _module_weights(module: nn.Module) -> Iterator[tuple[torch.Tensor, object]]:
    """(tensor, identity) for the weights a module itself holds, as the forward sees them.

    `identity` is the stored parameter, so a parameter shared by modules is seen once.

    - A module pruned with `torch.nn.utils.prune` holds `weight_orig` (a parameter) and
      `weight_mask`; the forward uses `weight` = orig * mask, so that is what is counted.
    - A quantized module (`torch.ao.nn.quantized` Linear/Conv, dynamic or static) keeps
      its weight and bias packed; `_weight_bias()` unpacks them (dequantized to count
      zeros).
    """
    packed = getattr(module, "_weight_bias", None)
    if callable(packed):
        for tensor in packed():
            if tensor is not None:
                yield (tensor.dequantize() if tensor.is_quantized else tensor), tensor
        return
    for name, param in module._parameters.items():
        if param is None:
            continue
        base = name.removesuffix("_orig")
        if base != name and hasattr(module, base + "_mask"):
            yield getattr(module, base), param
        else:
            yield param, param


def count_params(model: nn.Module, trainable: bool | None = None) -> int:
    """Parameter elements as `model.parameters()` yields them (shared ones once): all
    (None), only trainable (True) or only frozen (False)."""
    return sum(p.numel() for p in model.parameters() if trainable is None or p.requires_grad == trainable)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, nonzero) number of weights, shared parameters counted once.

    Works for plain, pruned (mask not yet made permanent) and quantized modules.
    """
    seen: dict[int, object] = {}  # holds the objects too, so an id cannot be reused
    total = nonzero = 0
    packed: list[str] = []  # quantized modules: their children hold the same packed weights
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in packed):
            continue
        if callable(getattr(module, "_weight_bias", None)):
            packed.append(name)
        for tensor, identity in _module_weights(module):
            if id(identity) in seen:
                continue
            seen[id(identity)] = identity
            total += tensor.numel()
            nonzero += int(torch.count_nonzero(tensor.detach()))
    return total, nonzero


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of `model.state_dict()` as written by `torch.save` (into memory).

    This is the on-disk size of the weights, including quantized packed parameters; it
    does not shrink when weights are merely zeroed (dense tensors store the zeros).
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
