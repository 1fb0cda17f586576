"""Knowledge distillation: the loss against a hand computation, students, and the transform."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from greenai.demo.digits import DigitsData
from greenai.errors import ConfigError, TransformSkipped
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.distill import (
    Distill,
    build_student,
    distillation_loss,
    embedding_match_loss,
    halve_width,
    soft_target_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def make_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def small_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


@pytest.fixture(scope="module")
def teacher(digits: DigitsData) -> nn.Module:
    torch.manual_seed(0)
    model = make_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(len(digits.x_train), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(digits.x_train[idx]), digits.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def agreement(student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((student(x).argmax(1) == teacher(x).argmax(1)).float().mean())


def make_task(model: nn.Module, digits: DigitsData, with_batches: bool = True) -> OptimizeTask:
    batches = [(digits.x_train[i : i + 64], digits.y_train[i : i + 64]) for i in range(0, len(digits.x_train), 64)]
    return OptimizeTask(
        model=model,
        evaluate=lambda m: 0.0,
        inputs=[digits.x_test[:64]],
        train_batches=batches if with_batches else None,
    )


# ----------------------------------------------------------------------------- loss


def test_kd_loss_equals_hand_computation():
    s, t, y, temp, alpha = [1.0, 2.0, 0.5], [0.2, 1.5, 3.0], 2, 2.0, 0.7

    def softmax(z: list[float]) -> list[float]:
        e = [math.exp(v) for v in z]
        return [v / sum(e) for v in e]

    p_s, p_t = softmax([v / temp for v in s]), softmax([v / temp for v in t])
    kl = sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))
    ce = -math.log(softmax(s)[y])
    expected = alpha * temp**2 * kl + (1 - alpha) * ce

    st, tt = torch.tensor([s]), torch.tensor([t])
    got = distillation_loss(st, tt, torch.tensor([y]), temperature=temp, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # no targets: the soft term alone; identical logits: zero
    assert distillation_loss(st, tt, temperature=temp, alpha=alpha).item() == pytest.approx(temp**2 * kl, rel=1e-6)
    assert soft_target_loss(tt, tt, temp).item() == pytest.approx(0.0, abs=1e-7)


def test_embedding_loss_equals_hand_computation():
    s, t = [3.0, 4.0], [4.0, 3.0]
    mse = ((3 - 4) ** 2 + (4 - 3) ** 2) / 2
    cos = (3 * 4 + 4 * 3) / (5 * 5)
    got = embedding_match_loss(torch.tensor([s]), torch.tensor([t]))
    assert got.item() == pytest.approx(mse + 1 - cos, rel=1e-6)
    y = torch.tensor([[3.0, 3.0]])
    mixed = distillation_loss(torch.tensor([s]), torch.tensor([t]), y, alpha=0.25, kind="embedding")
    assert mixed.item() == pytest.approx(0.25 * (mse + 1 - cos) + 0.75 * (0 + 1) / 2, rel=1e-6)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="logits, embedding"):
        Distill(small_mlp, kind="regression")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="alpha"):
        Distill(small_mlp, alpha=1.5)
    with pytest.raises(ConfigError, match="temperature"):
        Distill(small_mlp, temperature=0)
    with pytest.raises(ConfigError, match="one"):
        build_student(lambda a, b: nn.Linear(1, 1), nn.Linear(1, 1))


# ----------------------------------------------------------------------------- transform


def test_distilled_student_matches_teacher_far_better_than_untrained(teacher, digits):
    reference = copy.deepcopy(teacher.state_dict())
    task = make_task(teacher, digits)
    torch.manual_seed(1)
    untrained = agreement(small_mlp(), teacher, digits.x_test)
    torch.manual_seed(1)
    transform = Distill(small_mlp, steps=300, lr=1e-2)
    assert transform.name == "distill-small-mlp"
    result = transform(Candidate.baseline(task), task)

    distilled = agreement(result.model, teacher, digits.x_test)
    assert untrained < 0.3 and distilled > 0.85
    assert result.name == "distill-small-mlp"
    assert result.extra["params_after"] < result.extra["params_before"]
    assert result.extra["macs_after"] < result.extra["macs_before"]
    assert result.extra["distill_fidelity"] == pytest.approx(agreement(result.model, teacher, digits.x_test[:64]))
    assert not result.model.training
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in reference.items())
    assert not teacher.training


def test_distill_halve_width_out_of_the_box(teacher, digits):
    task = make_task(teacher, digits)
    torch.manual_seed(0)
    result = Distill(halve_width, steps=150, lr=5e-3)(Candidate.baseline(task), task)
    assert result.name == "distill-halve-width"
    assert [m.out_features for m in result.model if isinstance(m, nn.Linear)] == [32, 16, 10]
    assert agreement(result.model, teacher, digits.x_test) > 0.9


def test_embedding_distillation_without_targets():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4)).eval()
    student = nn.Linear(8, 4)
    x = torch.randn(256, 8)
    task = OptimizeTask(
        model=teacher, evaluate=lambda m: 0.0, inputs=[x[:64]], train_batches=[x[i : i + 32] for i in range(0, 256, 32)]
    )

    def mse(model: nn.Module) -> float:
        with torch.no_grad():
            return float((model(x) - teacher(x)).pow(2).mean())

    result = Distill(student, steps=200, lr=1e-2, kind="embedding", name="distill-linear")(
        Candidate.baseline(task), task
    )
    assert result.name == "distill-linear"
    assert mse(result.model) < 0.5 * mse(student)  # the given student module is only copied
    assert result.extra["distill_fidelity"] > 0.8
    with pytest.raises(TransformSkipped, match="not class logits"):
        regression = nn.Linear(8, 1)
        task.model = regression
        Distill(nn.Linear(8, 1))(Candidate.baseline(task), task)


def test_skips_on_shape_mismatch_and_missing_batches(teacher, digits):
    task = make_task(teacher, digits)
    five_classes = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    with pytest.raises(TransformSkipped, match=r"student output shape \(64, 5\) differs"):
        Distill(five_classes)(Candidate.baseline(task), task)
    no_batches = make_task(teacher, digits, with_batches=False)
    with pytest.raises(TransformSkipped, match="train_batches"):
        Distill(small_mlp)(Candidate.baseline(no_batches), no_batches)


def test_one_argument_factory_receives_a_copy_of_the_teacher(teacher):
    seen: list[nn.Module] = []

    def from_teacher(model: nn.Module) -> nn.Module:
        seen.append(model)
        return model

    student = build_student(from_teacher, teacher)
    assert seen and seen[0] is not teacher and student is seen[0]
    assert isinstance(build_student(small_mlp, teacher), nn.Sequential)
    assert isinstance(build_student(nn.Identity, teacher), nn.Identity)  # a class is a factory


# ----------------------------------------------------------------------------- halve_width


def test_halve_width_on_a_cnn_with_batchnorm_and_flatten():
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    ).eval()
    narrow = halve_width(cnn).eval()
    assert [narrow[0].out_channels, narrow[3].in_channels, narrow[3].out_channels] == [8, 8, 16]
    assert narrow[1].num_features == 8 and narrow[1].running_mean.shape == (8,)
    assert (narrow[7].in_features, narrow[7].out_features) == (16 * 4 * 4, 32)
    assert (narrow[9].in_features, narrow[9].out_features) == (32, 10)
    x = torch.randn(3, 1, 8, 8)
    assert narrow(x).shape == cnn(x).shape == (3, 10)
    # kept filters are the largest by L1 norm, copied from the teacher
    top = cnn[0].weight.abs().sum(dim=(1, 2, 3)).topk(8).indices.sort().values
    assert torch.equal(narrow[0].weight, cnn[0].weight[top])
    assert isinstance(cnn[0], nn.Conv2d) and cnn[0].out_channels == 16  # teacher untouched


def test_halve_width_on_an_mlp_with_layernorm():
    mlp = nn.Sequential(nn.Linear(10, 40), nn.LayerNorm(40), nn.GELU(), nn.Linear(40, 3))
    narrow = halve_width(mlp)
    assert narrow[0].out_features == 20 and narrow[1].normalized_shape == (20,)
    assert narrow(torch.randn(2, 10)).shape == (2, 3)


def test_halve_width_refuses_what_it_cannot_narrow():
    with pytest.raises(TransformSkipped, match="nn.Sequential"):
        halve_width(nn.Linear(4, 4))
    with pytest.raises(TransformSkipped, match="hidden"):
        halve_width(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(TransformSkipped, match="grouped"):
        halve_width(nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 8, 3)))
    with pytest.raises(TransformSkipped, match="Embedding"):
        halve_width(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 2)))
    with pytest.raises(TransformSkipped, match="Flatten"):
        halve_width(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(6, 2)))
