"""Knobs: settings a running job can change between iterations, behind one interface.

A knob offers candidate `values()`, reports its `current()` value, `apply(value)`s one and
`restore()`s what it found. `available()` returns None when the knob can be used here, or
a one-line reason when it cannot (no such hardware, no privileges); the tuner skips such
knobs and says why. A knob that loses its privileges mid-run raises `KnobUnavailable`.

This module holds the protocol and the knobs that need no privileges (thread count, batch
size); hardware knobs live in `tune.knobs.cpu` (cpufreq, RAPL) and `tune.knobs.gpu` (NVML).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from greenai.errors import ConfigError, KnobUnavailable
from greenai.hardware.cpu import usable_threads


@runtime_checkable
class Knob(Protocol):
    """A setting the tuner may change while the job runs."""

    name: str  # unique within a tuner; units in the name (e.g. "gpu0_power_limit_w")

    def values(self) -> Sequence[Any]:
        """The candidate settings (non-empty, JSON-serialisable)."""

    def current(self) -> Any:
        """The setting in effect now."""

    def apply(self, value: Any) -> None:
        """Put `value` in effect (ConfigError if it is not valid for this knob; KnobUnavailable
        if the OS or driver refuses)."""

    def restore(self) -> None:
        """Put back the setting found before the first `apply` (idempotent)."""

    def available(self) -> str | None:
        """None if the knob can be used here, else the reason it cannot."""


def candidates(name: str, values: Sequence[Any], valid: Callable[[Any], bool], expected: str) -> tuple[Any, ...]:
    """Validated candidate list: non-empty, distinct values that are `valid`, in the given
    order; a ConfigError naming the knob and what it `expected` otherwise."""
    out: list[Any] = []
    for v in values:
        if not valid(v):
            raise ConfigError(f"{name}: candidate values must be {expected} (got {v!r})")
        if v not in out:
            out.append(v)
    if not out:
        raise ConfigError(f"{name}: needs at least one candidate value")
    return tuple(out)


def positive_ints(name: str, values: Sequence[Any]) -> tuple[int, ...]:
    """Validated candidate list: non-empty, distinct positive integers, in the given order."""
    return candidates(
        name, values, lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "positive integers"
    )


class ThreadsKnob:
    """PyTorch's intra-op thread count (`torch.set_num_threads`).

    Default candidates: powers of two up to the usable CPUs, and the usable CPUs themselves
    (`hardware.cpu.usable_threads`: the affinity mask and the cgroup CPU quota, a fractional
    quota rounded up).
    """

    def __init__(self, values: Sequence[int] | None = None, name: str = "threads") -> None:
        self.name = name
        if values is None:
            n = usable_threads()
            values = sorted({2**k for k in range(n.bit_length()) if 2**k <= n} | {n})
        self._values = positive_ints(name, values)
        self._original: int | None = None

    def values(self) -> tuple[int, ...]:
        return self._values

    def current(self) -> int:
        return int(_torch().get_num_threads())

    def apply(self, value: int) -> None:
        positive_ints(self.name, [value])
        torch = _torch()
        if self._original is None:
            self._original = int(torch.get_num_threads())
        torch.set_num_threads(int(value))

    def restore(self) -> None:
        if self._original is not None:
            _torch().set_num_threads(self._original)
            self._original = None

    def available(self) -> str | None:
        try:
            _torch()
        except KnobUnavailable as e:
            return str(e)
        return None


BatchSizeCallback = Callable[[int, int], None]


class BatchSizeKnob:
    """The batch size the training loop reads from `knob.value` at each step.

    Changing it changes the work per step, so the tuner's cost must be per unit of work
    (set `step.work` to the batch size). `on_change(old, new)` runs after each change: the
    place to rescale the learning rate (see `scale_lr_linearly`).
    """

    def __init__(
        self,
        values: Sequence[int],
        initial: int | None = None,
        on_change: BatchSizeCallback | None = None,
        name: str = "batch_size",
    ) -> None:
        self.name = name
        self._values = positive_ints(name, values)
        self.value = positive_ints(name, [initial])[0] if initial is not None else self._values[0]
        self._initial = self.value
        self._on_change = on_change

    def values(self) -> tuple[int, ...]:
        return self._values

    def current(self) -> int:
        return self.value

    def apply(self, value: int) -> None:
        new = positive_ints(self.name, [value])[0]
        old, self.value = self.value, new
        if self._on_change is not None and new != old:
            self._on_change(old, new)

    def restore(self) -> None:
        self.apply(self._initial)

    def available(self) -> str | None:
        return None


def scale_lr_linearly(optimizer: Any, base_batch_size: int) -> BatchSizeCallback:
    """An `on_change` callback applying the linear scaling rule: lr = base_lr x batch / base_batch
    (Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017, sec. 2.1).
    Each param group's base lr is its lr when this is called."""
    base_batch = positive_ints("base_batch_size", [base_batch_size])[0]
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    def on_change(old: int, new: int) -> None:
        for group, base_lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base_lr * new / base_batch

    return on_change


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise KnobUnavailable("threads: PyTorch is not installed") from e
    return torch
