"""Pruning transforms on tiny real models: global thresholds, gradient importances, Hutchinson
against the exact Hessian, structured pruning that really removes work, and skip reasons."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from greenai.errors import ConfigError, TransformSkipped
from greenai.estimation.counting import count_ops
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.model_stats import count_parameters, model_size_bytes
from greenai.optimize.transforms.importance import hessian_diagonal, obd_scores, taylor_scores
from greenai.optimize.transforms.prune import (
    StructuredPrune,
    UnstructuredPrune,
    classifier_layer,
    global_masks,
    prunable_layers,
)


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def mlp(width: int = 32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))


def cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


def sgd_finetune(data: tuple[torch.Tensor, torch.Tensor], log: list[int] | None = None, lr: float = 0.05):
    def finetune(model: nn.Module, steps: int) -> None:
        if log is not None:
            log.append(steps)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
        model.train()
        for _ in range(steps):
            opt.zero_grad()
            cross_entropy(model, data).backward()
            opt.step()

    return finetune


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def image_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def make_task(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], **kw) -> OptimizeTask:
    kw.setdefault("finetune", None)
    return OptimizeTask(model=model, evaluate=lambda m: 0.0, inputs=[data[0]], **kw)


def linear_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


# --- unstructured -------------------------------------------------------------------------


def test_global_threshold_gives_requested_sparsity_across_layers_not_per_layer():
    torch.manual_seed(0)
    model = mlp()
    with torch.no_grad():
        model[2].weight.mul_(0.01)  # the second layer's weights are all tiny
    original = linear_weights(model)
    task = make_task(model, (torch.randn(4, 64), torch.zeros(4, dtype=torch.long)))
    out = UnstructuredPrune(0.5, "magnitude")(Candidate.baseline(task), task)

    pruned = linear_weights(out.model)
    zeros = [int((w == 0).sum()) for w in pruned]
    total = sum(w.numel() for w in pruned)
    assert sum(zeros) == total // 2
    assert out.extra["sparsity"] == pytest.approx(0.5)
    # one threshold for all: the tiny layer is wiped out, the big one loses less than half
    assert zeros[1] == pruned[1].numel()
    assert zeros[0] / pruned[0].numel() < 0.5
    kept = torch.cat([o[p != 0].abs() for o, p in zip(original, pruned)])
    dropped = torch.cat([o[p == 0].abs() for o, p in zip(original, pruned)])
    assert dropped.max() <= kept.min()


def test_global_masks_prune_exactly_the_lowest_scores():
    scores = [torch.tensor([[5.0, 1.0], [3.0, 0.5]]), torch.tensor([2.0, 4.0, 0.1])]
    masks = global_masks(scores, 3 / 7)
    assert masks[0].tolist() == [[True, False], [True, False]]
    assert masks[1].tolist() == [True, True, False]


def probe_task(features: torch.Tensor, targets: torch.Tensor, weights: list[float]) -> OptimizeTask:
    """A linear model y = x·w with MSE loss; the exact Hessian is 2/n·XᵀX."""
    model = nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weights]))

    def mse(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(m(batch[0]).squeeze(1), batch[1])

    return OptimizeTask(
        model=model, evaluate=lambda m: 0.0, inputs=[features], loss=mse, train_batches=[(features, targets)]
    )


def kept_indices(candidate: Candidate) -> list[int]:
    return torch.nonzero(candidate.model.weight[0]).flatten().tolist()


def test_taylor_and_hessian_prefer_weights_with_gradient_and_curvature():
    # The two largest weights act on inputs that are always zero: no gradient, no
    # curvature. Magnitude keeps them; Taylor and OBD prune them.
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g)
    x[:, :2] = 0.0
    weights = [1.0, 0.9, 0.3, 0.2]
    task = probe_task(x, torch.randn(64, generator=g) * 3, weights)
    base = Candidate.baseline(task)
    assert kept_indices(UnstructuredPrune(0.5, "magnitude")(base, task)) == [0, 1]
    assert kept_indices(UnstructuredPrune(0.5, "taylor")(base, task)) == [2, 3]
    assert kept_indices(UnstructuredPrune(0.5, "hessian")(base, task)) == [2, 3]


def test_hessian_sees_curvature_where_taylor_sees_nothing_at_a_minimum():
    # At an exact fit the gradient is zero: Taylor cannot rank; OBD keeps the weights on
    # the high-variance inputs (large h_ii = 2·E[x_i²]) even though they are smaller.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(128, 4, generator=g) * torch.tensor([0.1, 0.1, 3.0, 3.0])
    weights = [1.0, 0.9, 0.3, 0.2]
    task = probe_task(x, x @ torch.tensor(weights), weights)
    scores = taylor_scores(task.model, [task.model.weight], task.loss, task.train_batches)
    assert float(scores[0].max()) < 1e-10
    assert kept_indices(UnstructuredPrune(0.5, "hessian", hessian_samples=8)(Candidate.baseline(task), task)) == [2, 3]


def test_hutchinson_estimate_matches_the_exact_hessian_diagonal():
    torch.manual_seed(0)
    a = torch.randn(6, 6)
    a = a @ a.T + torch.eye(6)  # a symmetric quadratic form with off-diagonal terms
    b = torch.randn(6)

    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(6))

    model = Quadratic()

    def loss(m: nn.Module, batch: object) -> torch.Tensor:
        return 0.5 * m.w @ a @ m.w + b @ m.w

    exact = torch.autograd.functional.hessian(lambda w: 0.5 * w @ a @ w + b @ w, model.w.detach()).diagonal()
    assert torch.allclose(exact, a.diagonal())
    estimate = hessian_diagonal(model, [model.w], loss, [None], samples=3000, seed=0)[0]
    assert torch.allclose(estimate, exact, rtol=0.1, atol=0.1 * float(exact.abs().max()))
    # with a diagonal Hessian, z_i² = 1 makes a single Rademacher sample exact
    d = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    one = hessian_diagonal(model, [model.w], lambda m, _: 0.5 * m.w @ d @ m.w, [None], samples=1)[0]
    assert torch.allclose(one, d.diagonal())
    assert obd_scores([torch.tensor([2.0])], [torch.tensor([-3.0])])[0].item() == pytest.approx(6.0)


def test_gradient_importance_leaves_model_mode_and_flags_alone(image_data):
    model = cnn().train()
    model[0].weight.requires_grad_(False)
    weights = [model[0].weight, model[3].weight]
    hessian_diagonal(model, weights, cross_entropy, [image_data], samples=1)
    assert model.training and not model[0].weight.requires_grad and model[3].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_masks_are_held_during_finetuning_then_made_permanent(image_data):
    log: list[int] = []
    task = make_task(cnn(), image_data, finetune=sgd_finetune(image_data, log), finetune_steps=7)
    out = UnstructuredPrune(0.6, "magnitude")(Candidate.baseline(task), task)
    assert log == [7]
    assert out.extra["sparsity"] == pytest.approx(0.6, abs=1e-3)
    for _, module in prunable_layers(out.model):
        assert isinstance(module.weight, nn.Parameter) and not hasattr(module, "weight_mask")
        assert not module._forward_pre_hooks
    UnstructuredPrune(0.6, "magnitude", finetune_steps=2)(Candidate.baseline(task), task)
    assert log == [7, 2]


def test_note_says_masks_save_no_energy_and_input_is_untouched(image_data):
    model = cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    task = make_task(
        model,
        image_data,
        loss=cross_entropy,
        train_batches=[image_data],
        finetune=sgd_finetune(image_data),
        finetune_steps=3,
    )
    base = Candidate.baseline(task)
    for transform in (
        UnstructuredPrune(0.5, "taylor"),
        UnstructuredPrune(0.5, "hessian"),
        StructuredPrune(0.5, "taylor"),
    ):
        out = transform(base, task)
        assert out.model is not model and out.name == transform.name
        assert out.model(image_data[0]).shape == (16, 10)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_pre_hooks for m in model.modules())

    note = UnstructuredPrune(0.5)(base, task).notes[-1]
    assert "only zeroes weights" in note and "dense" in note and "no energy saving" in note
    assert "fine-tuned 3 steps" in note


def test_names_and_no_finetune_note(image_data):
    task = make_task(cnn(), image_data)
    assert UnstructuredPrune(0.5, "magnitude").name == "prune-unstructured-magnitude-50"
    assert UnstructuredPrune(0.125, "hessian").name == "prune-unstructured-hessian-12.5"
    assert StructuredPrune(0.3).name == "prune-structured-magnitude-30"
    out = UnstructuredPrune(0.7)(Candidate.baseline(task), task)
    assert "not fine-tuned" in out.notes[-1]
    assert out.transforms == ("prune-unstructured-magnitude-70",)


def test_gradient_importances_skip_without_a_loss(image_data):
    task = make_task(cnn(), image_data)
    base = Candidate.baseline(task)
    for transform in (
        UnstructuredPrune(0.5, "taylor"),
        UnstructuredPrune(0.5, "hessian"),
        StructuredPrune(0.5, "taylor"),
    ):
        with pytest.raises(TransformSkipped, match="loss and train_batches"):
            transform(base, task)


def test_bad_arguments_are_config_errors():
    for bad in (0, 1, 1.5, -0.1, "half"):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            UnstructuredPrune(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="between 0 and 1"):
            StructuredPrune(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown importance"):
        UnstructuredPrune(0.5, "random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown importance"):
        StructuredPrune(0.5, "hessian")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="finetune_steps"):
        UnstructuredPrune(0.5, finetune_steps=-1)


def test_failing_finetune_and_unprunable_models_are_skipped(image_data):
    def broken(model: nn.Module, steps: int) -> None:
        raise RuntimeError("CUDA out of memory")

    task = make_task(cnn(), image_data, finetune=broken)
    with pytest.raises(TransformSkipped, match="fine-tuning the pruned model failed: RuntimeError"):
        UnstructuredPrune(0.5)(Candidate.baseline(task), task)
    emb = make_task(nn.Embedding(10, 4), (torch.tensor([[1, 2]]), torch.tensor([0])))
    with pytest.raises(TransformSkipped, match="no Conv or Linear"):
        UnstructuredPrune(0.5)(Candidate.baseline(emb), emb)


def test_prunable_layers_leave_out_tied_and_attention_projections():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.hidden = nn.Linear(16, 16)
            self.head = nn.Linear(16, 10, bias=False)
            self.head.weight = self.emb.weight

    assert [name for name, _ in prunable_layers(Tied())] == ["hidden"]


def test_digits_mlp_gradient_importances_beat_magnitude_and_finetuning_recovers():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    data = (x, y)
    torch.manual_seed(0)
    model = mlp()

    def adam(m: nn.Module, steps: int) -> None:
        opt = torch.optim.Adam(m.parameters(), lr=0.01)
        for _ in range(steps):
            opt.zero_grad()
            cross_entropy(m, data).backward()
            opt.step()

    def accuracy(m: nn.Module) -> float:
        with torch.no_grad():
            return float((m(x).argmax(1) == y).float().mean())

    adam(model, 150)
    base_acc = accuracy(model)
    assert base_acc > 0.95
    task = OptimizeTask(
        model=model,
        evaluate=accuracy,
        inputs=[x],
        finetune=adam,
        finetune_steps=0,
        loss=cross_entropy,
        train_batches=[data],
    )
    base = Candidate.baseline(task)
    untuned = {
        imp: accuracy(UnstructuredPrune(0.8, imp)(base, task).model)  # type: ignore[arg-type]
        for imp in ("magnitude", "taylor", "hessian")
    }
    assert untuned["taylor"] > untuned["magnitude"] and untuned["hessian"] > untuned["magnitude"]
    tuned = UnstructuredPrune(0.7, "magnitude", finetune_steps=40)(base, task)
    assert tuned.extra["sparsity"] == pytest.approx(0.7, abs=1e-3)
    assert accuracy(tuned.model) > base_acc - 0.05
    assert accuracy(model) == base_acc


# --- structured ---------------------------------------------------------------------------


def test_structured_pruning_removes_channels_and_flops_keeps_output_shape(image_data):
    task = make_task(cnn(), image_data, finetune=sgd_finetune(image_data), finetune_steps=3)
    out = StructuredPrune(0.5)(Candidate.baseline(task), task)
    pruned = out.model
    assert pruned[0].out_channels == 4 and pruned[1].num_features == 4 and pruned[3].in_channels == 4
    assert pruned[3].out_channels == 8 and pruned[7].out_features == 16
    assert pruned[9].out_features == 10  # the classifier is left whole
    assert pruned(image_data[0]).shape == (16, 10)
    total, _ = count_parameters(pruned)
    assert out.extra["params_before"] == count_parameters(task.model)[0] == 2138
    assert out.extra["params_after"] == total < out.extra["params_before"] / 2
    flops_before = count_ops(task.model, image_data[0]).flops
    flops_after = count_ops(pruned, image_data[0]).flops
    assert flops_after < 0.5 * flops_before
    assert model_size_bytes(pruned) < model_size_bytes(task.model)
    assert "physically removed" in out.notes[-1] and "fine-tuned 3 steps" in out.notes[-1]


def test_structured_pruning_of_a_fully_convolutional_model_keeps_its_output_channels():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 3, 5, 5)
    assert classifier_layer(model, model(x)) is model[2]
    task = make_task(model, (x, torch.zeros(2)))
    out = StructuredPrune(0.5)(Candidate.baseline(task), task)
    assert out.model[0].out_channels == 4 and out.model(x).shape == (2, 4, 5, 5)


def test_structured_pruning_skips_what_it_cannot_prune(image_data):
    x = torch.randn(2, 4)

    class Labelled(nn.Module):  # an output torch-pruning cannot trace
        def __init__(self) -> None:
            super().__init__()
            self.a, self.o = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
            return self.o(self.a(x).relu()), "label"

    class Scaled(Labelled):  # a buffer torch-pruning does not shrink
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.ones(8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return self.o(self.a(x).relu() * self.scale)

    cases = [
        (Labelled(), "torch-pruning cannot prune this model: AttributeError"),
        (Scaled(), "the pruned model fails on the task's input"),
        (nn.Linear(4, 3), "no channel it could remove"),
    ]
    for model, reason in cases:
        task = make_task(model, (x, torch.zeros(2)))
        with pytest.raises(TransformSkipped, match=reason):
            StructuredPrune(0.5)(Candidate.baseline(task), task)


# --- model stats --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_count_parameters_sees_masks_and_quantized_weights():
    from torch.nn.utils import prune

    model = mlp(8)
    assert count_parameters(model) == (64 * 8 + 8 + 8 * 10 + 10,) * 2
    prune.custom_from_mask(model[0], "weight", torch.zeros(8, 64))
    assert count_parameters(model) == (610, 610 - 512)
    prune.remove(model[0], "weight")
    assert count_parameters(model) == (610, 98)

    float_model = mlp(8)
    quantized = torch.ao.quantization.quantize_dynamic(float_model, {nn.Linear}, dtype=torch.qint8)
    assert count_parameters(quantized)[0] == 610
    assert model_size_bytes(quantized) < model_size_bytes(float_model)
