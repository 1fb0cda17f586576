"""The demo's training recipes and the demo command."""

from __future__ import annotations

from pathlib import Path

import torch

from greenai.demo.digits import Recipe, make_cnn, train_digits
from greenai.tracking.tracker import Tracker
from tests.helpers import as_json, greenai


def test_a_recipe_stops_at_the_target_accuracy_and_restores_threads() -> None:
    threads = torch.get_num_threads()
    with Tracker("t", store=False) as run:
        out = train_digits(run, epochs=10, recipe=Recipe(stop_at_accuracy=0.5, threads=1, bf16=True))
    assert out.test_accuracy >= 0.5 and out.epochs < 10
    assert out.train_samples == out.epochs * 1348
    assert torch.get_num_threads() == threads
    counters = run.counters()
    assert counters["samples"] == out.train_samples


def test_a_recipe_trains_another_architecture() -> None:
    def tiny() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))

    with Tracker("t", store=False) as run:
        out = train_digits(run, epochs=2, recipe=Recipe(make_model=tiny, batch_size=64))
    assert isinstance(out.model[1], torch.nn.Linear)
    assert out.test_accuracy > 0.5
    assert sum(p.numel() for p in out.model.parameters()) < sum(p.numel() for p in make_cnn().parameters())


def test_demo_without_optimizing(tmp_path: Path) -> None:
    data = as_json(greenai("demo", "--epochs", "1", "--no-optimize", "--json", ledger=tmp_path / "l.db"))
    assert data["test_accuracy"] > 0.5 and data["optimize"] is None
    assert data["energy_j"] > 0
