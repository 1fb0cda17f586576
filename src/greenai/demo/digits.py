"""Train a small CNN on scikit-learn's bundled digits (1,797 8x8 images) under the tracker,
with phases for data loading, forward, backward, optimizer step and evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from greenai.tracking.tracker import Tracker

TEST_FRACTION = 0.25


@dataclass(frozen=True)
class DigitsData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_data(seed: int = 0) -> DigitsData:
    """Digits scaled to [0, 1], shaped (N, 1, 8, 8), split 75/25 with a fixed seed."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(x) * TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return DigitsData(x[train], y[train], x[test], y[test])


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


@dataclass(frozen=True)
class TrainOutcome:
    model: nn.Module
    test_accuracy: float
    train_samples: int
    epochs: int


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        correct = (model(x).argmax(dim=1) == y).sum().item()
    model.train()
    return correct / len(y)


@dataclass(frozen=True)
class Recipe:
    """How to train: the model, batch size, learning rate, precision and threads.

    `stop_at_accuracy` ends training at the first epoch whose test accuracy reaches it
    (evaluation runs every epoch either way, as in the baseline)."""

    make_model: Callable[[], nn.Module] = make_cnn
    batch_size: int = 32
    lr: float = 2e-3
    bf16: bool = False
    threads: int | None = None
    stop_at_accuracy: float | None = None


def train_digits(
    run: Tracker,
    epochs: int = 12,
    batch_size: int = 32,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
    recipe: Recipe | None = None,
) -> TrainOutcome:
    """Train under `run`, marking phases; `on_epoch(epoch, test_accuracy)` reports progress.
    `recipe` (default: the demo's CNN, Adam 2e-3, fp32) overrides `batch_size`."""
    recipe = recipe or Recipe(batch_size=batch_size)
    previous_threads = torch.get_num_threads()
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    try:
        return _train(run, epochs, seed, on_epoch, recipe)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    run: Tracker, epochs: int, seed: int, on_epoch: Callable[[int, float], None] | None, recipe: Recipe
) -> TrainOutcome:
    torch.manual_seed(seed)
    with run.phase("data_loading"):
        data = load_digits_data(seed)
    model = recipe.make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    loss_fn = nn.CrossEntropyLoss()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if recipe.bf16 else contextlib.nullcontext()
    n, batch_size = len(data.x_train), recipe.batch_size
    test_acc, samples = 0.0, 0
    for epoch in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            with run.phase("data_loading"):
                idx = order[start : start + batch_size]
                xb, yb = data.x_train[idx], data.y_train[idx]
            with run.phase("forward"), autocast:
                loss = loss_fn(model(xb).float(), yb)
            with run.phase("backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with run.phase("optimizer_step"):
                optimizer.step()
            run.count("samples", len(idx))
            run.count("steps")
            samples += len(idx)
        with run.phase("evaluation"), autocast:
            test_acc = accuracy(model, data.x_test, data.y_test)
        if on_epoch is not None:
            on_epoch(epoch, test_acc)
        if recipe.stop_at_accuracy is not None and test_acc >= recipe.stop_at_accuracy:
            return TrainOutcome(model, test_acc, samples, epoch + 1)
    return TrainOutcome(model, test_acc, samples, epochs)
