"""The demo's training recipes and the demo command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers import as_json, greenai

from greenai.demo.digits import Recipe, make_cnn, train_digits
from greenai.tracking.tracker import Tracker


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


def test_demo_goes_on_to_optimize(tmp_path: Path) -> None:
    data = as_json(
        greenai(
            "demo",
            "--epochs",
            "3",
            "--repeats",
            "1",
            "--json",
            "--out-dir",
            str(tmp_path / "out"),
            ledger=tmp_path / "l.db",
            timeout=300,
        )
    )
    study = data["optimize"]
    names = {c["name"]: c for c in study["candidates"]}
    assert {
        "baseline",
        "int8-static",
        "prune-unstructured-magnitude-50",
        "prune-structured-magnitude-50",
        "depthwise-separable",
        "distill-halve-width",
        "bf16-autocast",
    } <= set(names)
    for c in study["candidates"]:
        assert c["status"] in {"measured", "skipped", "failed"}
        if c["status"] == "measured":
            assert c["energy_per_sample_j"] > 0 and c["provenance"] and c["quality"] is not None
        else:
            assert c["reason"]
    assert any("no energy saving should be expected" in n for n in names["prune-unstructured-magnitude-50"]["notes"])
    assert study["recommended"] in names
    assert names[study["recommended"]]["quality"] >= study["quality_bound"]
    from greenai.optimize.saved import load_model

    model, facts = load_model(Path(data["optimized_model"]))
    assert facts["name"] == study["recommended"]
    assert Path(data["plot"]).read_bytes()[:4] == b"\x89PNG"


def test_finetuning_leaves_the_model_in_eval_mode_even_when_a_step_fails() -> None:
    from greenai.demo.digits import load_digits_data
    from greenai.demo.digits_optimize import digits_finetune

    class BreaksOnSecondStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10), torch.nn.Dropout(0.1))
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("out of memory")
            return self.net(x)

    finetune = digits_finetune(load_digits_data())
    model = BreaksOnSecondStep().eval()
    with pytest.raises(RuntimeError, match="out of memory"):
        finetune(model, 5)
    assert not model.training and not model.net[2].training
    healthy = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    finetune(healthy, 3)
    assert not healthy.training


def test_the_demo_without_optimizing_ends_by_writing_its_report_and_printing_its_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = greenai("demo", "--epochs", "1", "--no-optimize", "--out-dir", str(out), ledger=tmp_path / "l.db")
    assert proc.returncode == 0, proc.stderr
    report = out / "digits-report.html"
    assert report.is_file()
    assert str(report) in " ".join(proc.stdout.split())  # Rich may wrap a long path
    html = report.read_text()
    assert "digits-demo" in html and "Power over time" in html
    data = as_json(
        greenai("demo", "--epochs", "1", "--no-optimize", "--json", "--out-dir", str(out), ledger=tmp_path / "l.db")
    )
    assert data["report"] == str(report)
    assert data["test_accuracy"] > 0.5 and data["optimize"] is None
    assert data["energy_j"] > 0
