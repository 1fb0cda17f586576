"""Transfer learning with a real pretrained encoder: MiniLM-L6 (frozen, or with its last
layer unfrozen at a smaller learning rate) and a linear head on topic labels."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from greenai.errors import ConfigError
from greenai.optimize.transforms.transfer import (
    EpochMetrics,
    accuracy_on,
    count_params,
    fine_tune,
    is_under,
    optional_phase,
    shuffled_batches,
    unfreeze,
)

if TYPE_CHECKING:
    from greenai.tracking.tracker import Tracker


# --- demonstration (b): MiniLM sentence embeddings -> topic classifier ---------------------


class SentenceClassifier(nn.Module):
    """`forward(input_ids, attention_mask) -> logits`: a sentence encoder and a linear head."""

    def __init__(self, encoder: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(input_ids, attention_mask))


@dataclass(frozen=True)
class MiniLMTransferResult:
    model: SentenceClassifier
    test_accuracy: float
    train_sentences: int
    test_sentences: int
    trainable_params: int
    total_params: int
    unfrozen_last_layer: bool
    history: list[EpochMetrics]


def _last_layer_prefix(classifier: SentenceClassifier) -> str:
    """Name of the encoder's last transformer block (BERT: encoder.layer.<n-1>)."""
    blocks = [name for name, module in classifier.named_modules() if isinstance(module, nn.ModuleList)]
    if not blocks:
        raise ConfigError("the encoder has no list of transformer layers to unfreeze")
    layers = classifier.get_submodule(blocks[-1])
    assert isinstance(layers, nn.ModuleList)  # blocks holds ModuleList names only
    return f"{blocks[-1]}.{len(layers) - 1}"


def minilm_transfer(
    n_train: int = 160,
    n_test: int = 80,
    epochs: int = 30,
    lr: float = 1e-2,
    unfreeze_last: bool = False,
    last_layer_lr: float = 2e-5,
    batch_size: int = 16,
    seed: int = 0,
    loaded: tuple[nn.Module, Any] | None = None,
    run: Tracker | None = None,
) -> MiniLMTransferResult:
    """Topic classification (sentences.TOPICS) on the pretrained MiniLM encoder.

    Frozen encoder: the sentence embeddings are computed once (inference, padding trimmed)
    and only the linear head is trained on them: the cheapest transfer. With
    `unfreeze_last`, the last transformer layer is trained too at `last_layer_lr` (much
    smaller than the head's, as in ULMFiT), which needs the encoder in every step.
    `loaded` reuses a `(MiniLMEncoder, tokenizer)` pair from `minilm.load_minilm()`.
    Train and test sentences come from one seeded draw; test sentences whose text also
    occurs in training are dropped.
    """

    from greenai.demo.minilm import embed, load_minilm, tokenize_batches
    from greenai.demo.sentences import TOPICS, make_sentences
    from greenai.optimize.transforms.padding import trim_batch

    encoder, tokenizer = loaded if loaded is not None else load_minilm()
    encoder = copy.deepcopy(encoder) if unfreeze_last else encoder
    drawn = make_sentences(n_train + n_test, seed)
    train, seen = drawn[:n_train], {s.text for s in drawn[:n_train]}
    test = [s for s in drawn[n_train:] if s.text not in seen]

    def batches(items: list[Any]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        encoded = tokenize_batches(tokenizer, [s.text for s in items], batch_size)
        targets = torch.tensor([s.label for s in items]).split(batch_size)
        return [(*trim_batch(ids, mask), y) for (ids, mask), y in zip(encoded, targets)]

    train_batches, test_batches = batches(train), batches(test)
    torch.manual_seed(seed)
    dim = int(embed(encoder, [train_batches[0][:2]]).shape[1])
    classifier = SentenceClassifier(encoder, nn.Linear(dim, len(TOPICS)))
    y_test = torch.cat([b[2] for b in test_batches])
    loss_fn = nn.CrossEntropyLoss()

    if not unfreeze_last:  # the encoder only runs in inference mode: nothing to freeze
        with optional_phase(run, "forward"):
            x_train = embed(encoder, [b[:2] for b in train_batches])
            x_test = embed(encoder, [b[:2] for b in test_batches])
        y_train = torch.cat([b[2] for b in train_batches])
        if run is not None:
            run.count("encoded_sentences", len(x_train) + len(x_test))
        feature_batches = shuffled_batches(x_train, y_train, batch_size, seed)
        result = fine_tune(
            classifier.head,
            None,
            feature_batches,
            loss_fn,
            epochs,
            lr,
            freeze=None,
            on_epoch=accuracy_on(x_test, y_test),
            run=run,
        )
        trainable = count_params(classifier.head)
    else:
        last = _last_layer_prefix(classifier)
        unfreeze(classifier, [last, "head"])  # the copy may come from a frozen encoder
        frozen = [n for n, _ in classifier.named_parameters() if not (is_under(n, last) or is_under(n, "head"))]

        def score(epoch: int, model: nn.Module) -> float:
            model.eval()
            logits = embed(model, [b[:2] for b in test_batches])
            return float((logits.argmax(dim=1) == y_test).float().mean())

        result = fine_tune(
            classifier,
            "head",
            train_batches,
            loss_fn,
            epochs,
            lr,
            freeze=frozen,
            on_epoch=score,
            body_lr=last_layer_lr,
            run=run,
        )
        trainable = result.trainable_params
    classifier.eval()
    return MiniLMTransferResult(
        classifier,
        float(result.final_score or 0.0),
        len(train),
        len(test),
        trainable,
        count_params(classifier),
        unfreeze_last,
        result.epochs,
    )
