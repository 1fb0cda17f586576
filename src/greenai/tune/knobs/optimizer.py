"""The optimizer's implementation as a knob: PyTorch's for-loop, foreach or fused kernels.

PyTorch's Adam, AdamW, SGD and Adagrad each run the same update three ways (see "Algorithms"
in the torch.optim documentation): a Python loop of operators per parameter ("for-loop", the
default on CPU), multi-tensor operators over all parameters ("foreach"), or one fused kernel
("fused"). The update is the same arithmetic; what differs is dispatch and memory passes.
Each parameter group's ``foreach`` and ``fused`` flags are read at every ``step()``, so the
implementation can change between steps with the optimizer's state kept.

Why it matters for energy: the for-loop runs about ten operators per parameter tensor, each a
full pass over memory, and some are value-dependent (``sqrt`` of an all-zero second moment,
as in embedding rows no batch has touched yet, ran 12-19x slower than on random values on an
Intel Xeon VM; ``benchmarks/optimizer_impl.py``). The fused kernel does one pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from greenai.errors import ConfigError
from greenai.tune.knobs.base import KnobUnavailable, candidates

IMPLEMENTATIONS = ("for-loop", "foreach", "fused")


class OptimizerImplKnob:
    """Switches a ``torch.optim`` optimizer between ``IMPLEMENTATIONS`` between steps.

    Default candidates: every implementation this optimizer runs for its parameters' devices
    and dtypes, found by stepping a throwaway optimizer of the same class and settings on a
    parameter of each (device, dtype) with that flag (torch checks some of them only at the
    first step). ``restore()`` puts back each group's flags as found."""

    def __init__(self, optimizer: Any, values: Sequence[str] | None = None, name: str = "optimizer_impl") -> None:
        self.name = name
        self.optimizer = optimizer
        self._original: list[tuple[Any, Any]] | None = None
        self._original_amp: Any = None
        self._unavailable = self._check_optimizer()
        self._detected = values is None
        if values is None:
            values = [v for v in IMPLEMENTATIONS if self._unavailable is None and self._refusal(v) is None]
            values = values or ["for-loop"]
        self._values = _implementations(name, values)

    def values(self) -> tuple[str, ...]:
        return self._values

    def current(self) -> str:
        group = next((g for g in self.optimizer.param_groups if g["params"]), self.optimizer.param_groups[0])
        if group.get("fused"):
            return "fused"
        if group.get("foreach") is None:
            # torch's default (torch.optim.optimizer._default_to_fused_or_foreach): foreach when
            # every parameter is off the CPU and the optimizer is not differentiable
            off_cpu = bool(group["params"]) and all(p.device.type != "cpu" for p in group["params"])
            return "foreach" if off_cpu and not group.get("differentiable") else "for-loop"
        return "foreach" if group["foreach"] else "for-loop"

    def apply(self, value: str) -> None:
        impl = _implementations(self.name, [value])[0]
        if self._unavailable:
            raise KnobUnavailable(self._unavailable)
        refusal = self._refusal(impl)
        if refusal is not None:
            raise KnobUnavailable(refusal)
        if self._original is None:
            self._original = [(g.get("foreach"), g.get("fused")) for g in self.optimizer.param_groups]
            self._original_amp = getattr(self.optimizer, "_step_supports_amp_scaling", None)
        for group in self.optimizer.param_groups:
            group["foreach"] = impl == "foreach"
            group["fused"] = impl == "fused"
            _place_steps(self.optimizer, group)
        if self._original_amp is not None:
            # GradScaler hands grad_scale/found_inf to step() only when this is set (fused only)
            self.optimizer._step_supports_amp_scaling = impl == "fused"

    def restore(self) -> None:
        if self._original is None:
            return
        # groups added since (add_param_group) keep their own flags
        for group, (foreach, fused) in zip(self.optimizer.param_groups, self._original):
            group["foreach"], group["fused"] = foreach, fused
            _place_steps(self.optimizer, group)
        if self._original_amp is not None:
            self.optimizer._step_supports_amp_scaling = self._original_amp
        self._original = None

    def available(self) -> str | None:
        if self._unavailable:
            return self._unavailable
        if self._detected and len(self._values) < 2:
            return f"{self.name}: only {self._values[0]} is available for these parameters"
        return None

    def _check_optimizer(self) -> str | None:
        groups = getattr(self.optimizer, "param_groups", None)
        if not groups or not any(group["params"] for group in groups):
            raise ConfigError(
                f"{self.name}: needs a torch.optim optimizer with parameters, got {type(self.optimizer).__name__}"
            )
        if "fused" not in getattr(self.optimizer, "defaults", {}):
            return (
                f"{self.name}: {type(self.optimizer).__name__} has no foreach/fused "
                "implementations to choose from (Adam, AdamW, SGD and Adagrad have)"
            )
        return None

    def _refusal(self, impl: str) -> str | None:
        """None if this optimizer runs `impl` for its parameters, else torch's reason."""
        if self._unavailable or impl == "for-loop":
            return self._unavailable
        import torch

        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        accepted = inspect.signature(type(self.optimizer).__init__).parameters
        defaults = {k: v for k, v in self.optimizer.defaults.items() if k in accepted and k not in ("foreach", "fused")}
        for device, dtype in {(p.device, p.dtype) for p in params}:
            probe = torch.zeros(1, device=device, dtype=dtype, requires_grad=True)
            probe.grad = torch.zeros_like(probe)
            try:
                type(self.optimizer)([probe], **defaults, **{impl: True}).step()
            except (RuntimeError, ValueError, TypeError, AssertionError) as e:
                return f"{self.name}: torch refuses {impl} for {dtype} on {device}: {e}"
        return None


def _place_steps(optimizer: Any, group: dict[str, Any]) -> None:
    """Put each parameter's step count where the group's implementation reads it: the fused
    and capturable forms on the parameter's device in float32, the others on the CPU
    (torch.optim.adam._init_group creates them so; switching does not move them)."""
    import torch

    on_device = bool(group.get("fused") or group.get("capturable"))
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for p in group["params"]:
        state = optimizer.state.get(p)
        step = state.get("step") if state else None
        if not isinstance(step, torch.Tensor):
            continue
        device, dtype = (p.device, torch.float32) if on_device else (torch.device("cpu"), scalar)
        if step.device != device or step.dtype != dtype:
            state["step"] = step.to(device=device, dtype=dtype)


def _implementations(name: str, values: Sequence[Any]) -> tuple[str, ...]:
    return candidates(name, values, lambda v: v in IMPLEMENTATIONS, f"one of {', '.join(IMPLEMENTATIONS)}")
