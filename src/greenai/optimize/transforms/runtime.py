"""Runtime knobs as search transforms: intra-op thread count and inference batch size.

They change how the model runs, not the model: quality is unchanged by construction
(up to floating-point reduction order), energy is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from greenai.errors import TransformSkipped
from greenai.hardware.cpu import usable_threads
from greenai.optimize.candidate import Batch, Candidate, OptimizeTask, as_args


@dataclass(frozen=True)
class Threads:
    """Run with `count` intra-op threads (torch.set_num_threads) while measured."""

    count: int

    @property
    def name(self) -> str:
        return f"threads-{self.count}"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        usable = usable_threads()
        if not 1 <= self.count <= usable:
            raise TransformSkipped(f"{self.count} threads asked, {usable} usable CPUs here")
        return candidate.derive(self.name, threads=self.count)


@dataclass(frozen=True)
class BatchSize:
    """Measure with the task's inputs re-cut into batches of `size` samples."""

    size: int

    @property
    def name(self) -> str:
        return f"batch-{self.size}"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        if self.size < 1:
            raise TransformSkipped("batch size must be >= 1")
        try:
            rebatch(task.inputs, self.size)
        except (RuntimeError, TypeError, ValueError) as e:
            raise TransformSkipped(f"the inputs cannot be re-batched (batches of different shapes?): {e}") from None
        return candidate.derive(self.name, batch_size=self.size)


def rebatch(inputs: Sequence[Batch], size: int) -> list[tuple[torch.Tensor, ...]]:
    """Concatenate the batches along the first dimension and cut them into `size` pieces."""
    columns = list(zip(*(as_args(b) for b in inputs)))
    joined = [torch.cat(column) for column in columns]
    total = joined[0].shape[0]
    return [tuple(t[i : i + size] for t in joined) for i in range(0, total, size)]
