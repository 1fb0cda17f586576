"""How much of an optimizer's state is denormal: a cause of training steps getting slower.

A unit whose gradient is exactly zero from some step on (a dead ReLU) has Adam's first moment
multiplied by beta1 = 0.9 every step; a few hundred steps later it is below 1.18e-38, the
smallest normal float32, and x86 takes a microcode assist on every operation with such an
operand (Intel 64 and IA-32 Architectures Optimization Reference Manual, on denormals), many
times a normal operation's cost. `torch.set_flush_denormal(True)` at the start of a program
avoids it (it is per thread: OpenMP's workers inherit it only when created after it).
Measured in benchmarks/denormal_adam.py and docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Any

import torch


def denormal_share(optimizer: Any) -> float:
    """Share of the floating-point elements in `optimizer.state` that are denormal
    (0 < |x| < torch.finfo(dtype).tiny); 0.0 for an optimizer with no state yet."""
    denormal = total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if not (isinstance(value, torch.Tensor) and value.is_floating_point()) or value.dim() == 0:
                continue  # step counters and other scalars
            magnitude = value.detach().abs()
            denormal += int(((magnitude > 0) & (magnitude < torch.finfo(value.dtype).tiny)).sum())
            total += magnitude.numel()
    return denormal / total if total else 0.0
