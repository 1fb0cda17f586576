"""How much of an optimizer's state, or of any tensors, is denormal: a cause of training
steps getting slower (used by benchmarks/denormals.py and benchmarks/forecast_accuracy.py).

A unit whose gradient is exactly zero from some step on (a dead ReLU) has Adam's first moment
multiplied by beta1 = 0.9 every step; a few hundred steps later it is below 1.18e-38, the
smallest normal float32, and x86 takes a microcode assist on every operation with such an
operand (Intel 64 and IA-32 Architectures Optimization Reference Manual, on denormals), many
times a normal operation's cost. `torch.set_flush_denormal(True)` at the start of a program
avoids it (it is per thread: OpenMP's workers inherit it only when created after it).
Saturated gates do the same to an LSTM's backward (13-20x slower once its gates saturate), whose
intermediates no tensor left after the step holds. Measured in benchmarks/denormals.py and
docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def tensors_denormal_share(tensors: Iterable[Any]) -> float:
    """Share of the elements of the floating-point tensors among `tensors` that are denormal
    (0 < |x| < torch.finfo(dtype).tiny); scalars (0-d), None and other values are skipped, and
    0.0 if nothing is left."""
    denormal = total = 0
    for value in tensors:
        if not (isinstance(value, torch.Tensor) and value.is_floating_point()) or value.dim() == 0:
            continue  # step counters, missing gradients and other scalars
        magnitude = value.detach().abs()
        denormal += int(((magnitude > 0) & (magnitude < torch.finfo(value.dtype).tiny)).sum())
        total += magnitude.numel()
    return denormal / total if total else 0.0


def denormal_share(optimizer: Any) -> float:
    """Share of the floating-point elements in `optimizer.state` that are denormal
    (0 < |x| < torch.finfo(dtype).tiny); 0.0 for an optimizer with no state yet."""
    return tensors_denormal_share(value for state in optimizer.state.values() for value in state.values())
