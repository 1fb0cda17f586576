"""Trim padding: drop the trailing columns of a batch that no row attends to.

A fixed-padded batch (every sentence padded to 64 tokens) makes a transformer pay for
attention and feed-forward work on padding. For an encoder that masks padding keys and
pools over the attention mask, cutting columns where `attention_mask` is zero in every
row changes nothing but float rounding, and the work per layer shrinks in proportion (and
attention quadratically). Batches sorted by length make most of the padding trimmable;
this is the "dynamic padding" that Hugging Face's DataCollatorWithPadding applies per batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from greenai.errors import TransformSkipped
from greenai.optimize.candidate import Candidate, OptimizeTask


def trimmed_length(attention_mask: torch.Tensor) -> int:
    """1 + the index of the last column in which any row attends (0 for an all-zero mask)."""
    used = attention_mask.ne(0).any(dim=0).nonzero()
    return int(used[-1]) + 1 if len(used) else 0


def trim_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, *rest: Any) -> tuple[Any, ...]:
    """`(input_ids, attention_mask, *rest)` without the trailing columns no row attends to
    (at least one column is kept); further tensors shaped (batch, seq, ...) are cut too."""
    length = max(trimmed_length(attention_mask), 1)
    if length == attention_mask.shape[1]:
        return (input_ids, attention_mask, *rest)
    seq_shape = attention_mask.shape
    cut = tuple(
        r[:, :length] if isinstance(r, torch.Tensor) and r.dim() >= 2 and r.shape[:2] == seq_shape else r for r in rest
    )
    return (input_ids[:, :length], attention_mask[:, :length], *cut)


class PaddingTrimmed(nn.Module):
    """Wraps `inner(input_ids, attention_mask, *rest)`: cuts trailing all-padding columns of
    the ids, the mask and any further tensor with the same (batch, seq) leading shape."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *rest: Any) -> Any:
        return self.inner(*trim_batch(input_ids, attention_mask, *rest))


def _check_batch(batch: Any) -> str | None:
    """Why `batch` is not an (input_ids, attention_mask, ...) batch, or None if it is."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        return "the model's batches are not (input_ids, attention_mask) tuples"
    ids, mask = batch[0], batch[1]
    if not (isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor)):
        return "the first two items of a batch are not tensors"
    if ids.dim() != 2 or ids.shape != mask.shape:
        return (
            f"input_ids {tuple(ids.shape)} and attention_mask {tuple(mask.shape)} are "
            "not two (batch, sequence) tensors of the same shape"
        )
    if ids.is_floating_point() or mask.is_floating_point():
        return "input_ids and attention_mask must be integer tensors"
    if not bool(((mask == 0) | (mask == 1)).all()):
        return "the attention mask holds values other than 0 and 1"
    return None


class TrimPadding:
    """Transform `trim-padding`: wrap the model in `PaddingTrimmed`. Exact up to float
    rounding for encoders that mask padding; reports how many token columns it removes."""

    name = "trim-padding"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        if not task.inputs:
            raise TransformSkipped("the task has no input batches")
        reason = _check_batch(task.inputs[0])
        if reason is not None:
            raise TransformSkipped(reason)
        if isinstance(candidate.model, PaddingTrimmed) or self.name in candidate.transforms:
            raise TransformSkipped("padding is already trimmed")
        total = sum(int(b[1].numel()) for b in task.inputs)
        kept = sum(int(b[1].shape[0]) * max(trimmed_length(b[1]), 1) for b in task.inputs)
        if kept == total:
            raise TransformSkipped("the input batches have no trailing padding to trim")
        note = (
            f"trims padding per batch: {kept}/{total} token positions kept "
            f"({1 - kept / total:.0%} removed); exact only if the model masks padding"
        )
        return candidate.derive(
            self.name, PaddingTrimmed(candidate.model), note=note, padding_kept_fraction=kept / total
        )
