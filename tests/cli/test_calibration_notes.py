"""`greenai calibrate` and `greenai estimate` print what the calibration profile says of
itself (e.g. that the machine was busy while it was calibrated), and an estimate's lower bound
reads as a figure, never "0.0 J"."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from tests.helpers import as_json, greenai
from typer.testing import CliRunner

from greenai.cli.main import app
from greenai.estimation import calibrate as calibration
from greenai.estimation import profile as profiles
from greenai.estimation.profile import current_fingerprint, default_profile, save_profile

BUSY_NOTE = (
    "other processes kept 0.87 CPUs busy during calibration (a shared machine): its timings, and so its "
    "predictions, are less reliable; calibrate again when the machine is quiet"
)
FACTORY = """
import torch
from torch import nn

def build():
    return nn.Sequential(nn.Linear(8, 8)), torch.randn(4, 8)
"""


def busy_profile():
    return dataclasses.replace(
        default_profile(current_fingerprint("estimated")), notes=(BUSY_NOTE, "12 benchmarks in 5.0 s, fit 0.01 s")
    )


def test_calibrate_prints_the_profiles_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "calibrate", lambda **kwargs: busy_profile())
    monkeypatch.setattr(profiles, "calibration_dir", lambda: tmp_path)
    result = CliRunner().invoke(app, ["calibrate", "--budget", "5"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "calibration note: other processes kept 0.87 CPUs busy during calibration" in out
    assert "calibrate again when the machine is quiet" in out
    assert "calibration note: 12 benchmarks in 5.0 s" in out


def test_estimate_prints_the_notes_of_the_profile_it_used(tmp_path: Path) -> None:
    (tmp_path / "fac.py").write_text(FACTORY)
    path = save_profile(busy_profile(), tmp_path / "profile.json")
    proc = greenai("estimate", "fac:build", "--steps", "3", "--profile", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "calibration note: other processes kept 0.87 CPUs busy during calibration" in out
    assert "calibrate again when the machine is quiet" in out
    with_defaults = greenai("estimate", "fac:build", "--steps", "3", "--defaults", cwd=tmp_path)
    assert "calibration note" not in with_defaults.stdout  # no profile, no profile's notes


def test_an_estimates_lower_bound_is_never_zero(tmp_path: Path) -> None:
    """A tiny model's whole run used to print `energy 0.0 J [0.0 J .. 0.1 J]`."""
    (tmp_path / "fac.py").write_text(FACTORY)
    proc = greenai("estimate", "fac:build", "--steps", "2", "--defaults", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    whole = next(line for line in proc.stdout.splitlines() if line.startswith("Whole run"))
    low = re.search(r"energy \S+ \S+ \[(\S+) (\S+) \.\.", whole)
    assert low is not None, whole
    assert float(low.group(1)) > 0 and low.group(2) in {"J", "mJ", "µJ", "nJ"}, whole
    assert "0.0 J" not in proc.stdout and "[0.00 .." not in proc.stdout
    data = as_json(greenai("estimate", "fac:build", "--steps", "2", "--defaults", "--json", cwd=tmp_path))
    for part in (data["inference"], data["training_step"], data["run"]):
        assert 0 < part["energy_low_j"] < part["energy_j"]
