"""The estimator's entry point: factories, whole-run steps, pricing, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from greenai.config import Config
from greenai.estimation.api import estimate, load_factory, planned_steps
from greenai.estimation.counting import EstimateError
from greenai.units import J_PER_KWH


def mlp() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4)), torch.randn(16, 32)


def test_planned_steps_from_epochs_and_dataset():
    assert planned_steps(100, None, None, 32) == 100
    assert planned_steps(None, 3, 1000, 32) == 3 * math.ceil(1000 / 32)
    assert planned_steps(None, None, None, 32) is None
    with pytest.raises(EstimateError):
        planned_steps(None, 3, None, 32)


def test_estimate_whole_run_is_steps_times_step_and_is_priced():
    model, x = mlp()
    cfg = Config(intensity="200", pue=1.5, price_per_kwh=0.3).validate()
    result = estimate(model, x, steps=1000, use_defaults=True, config=cfg)
    step, run = result.training_step, result.run
    assert step is not None and run is not None and result.run_priced is not None
    assert run.steps == 1000 and run.samples == 16_000
    assert run.energy_j == pytest.approx(1000 * step.energy_j)
    assert run.time_s == pytest.approx(1000 * step.time_s)
    assert run.energy_low_j <= run.energy_j <= run.energy_high_j
    assert result.run_priced.carbon_g == pytest.approx(run.energy_j * 1.5 / J_PER_KWH * 200)
    assert result.run_priced.cost == pytest.approx(run.energy_j * 1.5 / J_PER_KWH * 0.3)
    assert "default coefficients" in step.provenance
    # a training step does more than one forward of the same batch
    assert step.energy_j > result.inference.energy_j
    assert result.training_counts.flops > 2.5 * result.inference_counts.flops


def test_load_factory_from_file_and_module(tmp_path, monkeypatch):
    (tmp_path / "zoo_fac.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def build():\n    return nn.Linear(8, 2), torch.randn(4, 8)\n"
        "def broken():\n    raise RuntimeError('no weights here')\n"
        "def wrong():\n    return 42\n"
    )
    model, x = load_factory(f"{tmp_path / 'zoo_fac.py'}:build")
    assert isinstance(model, nn.Linear) and x.shape == (4, 8)
    monkeypatch.chdir(tmp_path)
    model, _ = load_factory("zoo_fac:build")
    assert isinstance(model, nn.Linear)
    with pytest.raises(EstimateError, match="no weights here"):
        load_factory("zoo_fac:broken")
    with pytest.raises(EstimateError, match="must return"):
        load_factory("zoo_fac:wrong")
    with pytest.raises(EstimateError, match="no callable"):
        load_factory("zoo_fac:missing")
    with pytest.raises(EstimateError, match="cannot import"):
        load_factory("no_such_module_xyz:build")
    with pytest.raises(EstimateError, match="MODULE:FACTORY"):
        load_factory("zoo_fac")


def test_model_that_does_not_run_on_its_input():
    with pytest.raises(EstimateError, match="does not run on the example input"):
        estimate(nn.Linear(8, 2), torch.randn(4, 9), use_defaults=True)
