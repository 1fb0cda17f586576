"""Saved models load back and compute the same outputs, whichever format they needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from greenai.errors import GreenAIError
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.saved import load_model, save_model
from greenai.optimize.transforms.int8.static import StaticInt8


def _task() -> OptimizeTask:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    x = torch.rand(64, 1, 8, 8)
    reference = model(x).argmax(1)
    return OptimizeTask(
        model,
        lambda m: float((m(x).argmax(1) == reference).float().mean()),
        inputs=[(x[i : i + 16],) for i in range(0, 64, 16)],
    )


def test_a_plain_module_is_pickled(tmp_path: Path) -> None:
    task = _task()
    path = save_model(tmp_path / "m.pt", task.model, {"name": "baseline"})
    model, facts = load_model(path)
    assert isinstance(model, nn.Sequential) and facts == {"name": "baseline"}
    x = task.inputs[0][0]
    assert torch.equal(model(x), task.model(x))


def test_a_static_int8_module_falls_back_to_torchscript(tmp_path: Path) -> None:
    task = _task()
    quantized = StaticInt8()(Candidate.baseline(task), task).model
    x = task.inputs[0][0]
    with pytest.raises(GreenAIError, match="neither pickled nor traced"):
        save_model(tmp_path / "no-example.pt", quantized, {})
    path = save_model(tmp_path / "q.pt", quantized, {"name": "int8-static"}, example=(x,))
    model, facts = load_model(path)
    assert isinstance(model, torch.jit.ScriptModule) and facts["name"] == "int8-static"
    assert torch.allclose(model(x), quantized(x))


def test_a_file_that_is_not_a_saved_model_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(GreenAIError, match="not written by greenai optimize"):
        load_model(other)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(GreenAIError, match="not a readable greenai model"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(GreenAIError, match="no saved model"):
        load_model(tmp_path / "missing.pt")
