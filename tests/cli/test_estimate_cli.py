"""`greenai estimate` as a user runs it, including its one-line errors."""

from __future__ import annotations

import json

from tests.helpers import as_json, assert_one_line_error, greenai

FACTORY = """
import torch
from torch import nn

def build():
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    return model, torch.randn(16, 1, 8, 8)

def mismatched():
    return nn.Linear(10, 2), torch.randn(4, 3)
"""


def test_estimate_json_with_whole_run(tmp_path):
    (tmp_path / "fac.py").write_text(FACTORY)
    data = as_json(
        greenai(
            "estimate",
            "fac:build",
            "--epochs",
            "2",
            "--dataset-size",
            "160",
            "--defaults",
            "--intensity",
            "FR",
            "--json",
            cwd=tmp_path,
        )
    )
    assert data["batch_size"] == 16 and data["parameters"] == 8 * 9 + 8 + 512 * 10 + 10
    assert data["run"]["steps"] == 20 and data["run"]["samples"] == 320
    assert data["run"]["energy_j"] > 0 and "default coefficients" in data["run"]["provenance"]
    assert data["run_priced"]["intensity_g_per_kwh"] > 0
    assert data["training_step"]["energy_j"] > data["inference"]["energy_j"]


def test_estimate_table(tmp_path):
    (tmp_path / "fac.py").write_text(FACTORY)
    proc = greenai("estimate", "fac.py:build", "--defaults", "--inference-only", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Per layer" in proc.stdout and "inference batch" in proc.stdout and "estimated" in proc.stdout


def test_estimate_bad_factory_and_bad_model(tmp_path):
    (tmp_path / "fac.py").write_text(FACTORY)
    assert_one_line_error(greenai("estimate", "nope_mod:build", cwd=tmp_path), 1, "cannot import")
    assert_one_line_error(
        greenai("estimate", "fac:mismatched", "--defaults", cwd=tmp_path), 1, "does not run on the example input"
    )


def test_stale_profile_is_refused(tmp_path):
    (tmp_path / "fac.py").write_text(FACTORY)
    import dataclasses

    from greenai.estimation.profile import current_fingerprint, default_profile, save_profile

    here = current_fingerprint()
    other = dataclasses.replace(here, cpu_model="Imaginary CPU 9000", logical_cpus=128)
    path = save_profile(dataclasses.replace(default_profile(other), default=False), tmp_path / "p.json")
    proc = greenai("estimate", "fac:build", "--profile", str(path), cwd=tmp_path)
    assert_one_line_error(proc, 1, "greenai calibrate")
    (tmp_path / "bad.json").write_text("{not json")
    assert_one_line_error(
        greenai("estimate", "fac:build", "--profile", str(tmp_path / "bad.json"), cwd=tmp_path), 1, "corrupt"
    )
    json.loads(path.read_text())  # the profile file itself is left as it was
