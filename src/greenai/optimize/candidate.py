"""What an optimization search works on: the user's task, and candidates made from it.

A `Transform` takes a `Candidate` and returns a new one (never mutating its input), or
raises `TransformSkipped` with a reason. Transforms compose left to right: the name of a
composed candidate is its transforms joined by `+` (e.g. `prune-structured-30+int8-dynamic`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

Batch = Any  # a tensor, or a tuple of tensors passed positionally to the model


def as_args(batch: Batch) -> tuple:
    """The batch as positional arguments for `model(*args)`."""
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def call_model(model: nn.Module, batch: Batch) -> Any:
    """Run `model` on one batch, as every candidate is run: `model(*as_args(batch))`."""
    return model(*as_args(batch))


def batch_size(batch: Batch) -> int:
    """Samples in a batch: the first dimension of its first tensor."""
    return int(as_args(batch)[0].shape[0])


@dataclass
class OptimizeTask:
    """What the user gives a search.

    - `model`: the float32 reference model (left untouched).
    - `evaluate(model) -> float`: quality, higher is better (accuracy, or fidelity such as
      the minimum cosine similarity to the reference outputs).
    - `inputs`: inference batches the energy is measured on (the unit of work is a sample:
      the first dimension of each batch's first tensor).
    - `calibration`: batches for static quantization (defaults to the first `inputs`).
    - `loss(model, batch)` and `train_batches`: a scalar training loss for one training
      batch (inputs and targets); gradient-based pruning and distillation use them.
    - `finetune(model, steps)`: trains `model` in place for `steps` optimizer steps on the
      user's data; transforms that need retraining (pruning, QAT, lighter architectures,
      distillation) skip themselves when it is None.
    """

    model: nn.Module
    evaluate: Callable[[nn.Module], float]
    inputs: Sequence[Batch]
    calibration: Sequence[Batch] | None = None
    finetune: Callable[[nn.Module, int], None] | None = None
    quality_name: str = "accuracy"
    finetune_steps: int = 200
    loss: Callable[[nn.Module, Batch], torch.Tensor] | None = None
    train_batches: Sequence[Batch] | None = None

    def calibration_batches(self, limit: int = 8) -> list[Batch]:
        batches = self.calibration if self.calibration is not None else self.inputs
        return list(batches[:limit])


@dataclass(frozen=True)
class Candidate:
    """One way to run the task's model.

    `model` is called as `model(*batch)`; a transform that changes how it runs (autocast,
    padding trim) wraps the module, so evaluation and measurement need no special cases.
    `notes` carry what a user must know, e.g. that a transform only masks weights and saves
    no energy with dense kernels. `threads` is a runtime knob applied while measuring.
    """

    name: str
    model: nn.Module
    transforms: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def baseline(cls, task: OptimizeTask) -> Candidate:
        return cls("baseline", task.model)

    def derive(
        self,
        transform: str,
        model: nn.Module | None = None,
        *,
        note: str | None = None,
        threads: int | None = None,
        **extra: Any,
    ) -> Candidate:
        """A new candidate: this one with `transform` applied (the model already changed)."""
        transforms = (*self.transforms, transform)
        return replace(
            self,
            name="+".join(transforms),
            model=self.model if model is None else model,
            transforms=transforms,
            notes=self.notes + ((note,) if note else ()),
            threads=self.threads if threads is None else threads,
            extra={**self.extra, **extra},
        )

    def model_copy(self) -> nn.Module:
        """A deep copy of the model for a transform to change."""
        return copy.deepcopy(self.model)


@runtime_checkable
class Transform(Protocol):
    """`transform(candidate, task) -> Candidate`; raises TransformSkipped(reason)."""

    @property
    def name(self) -> str: ...  # read-only: a class attribute, a field or a property

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate: ...
