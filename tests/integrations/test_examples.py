"""Every example under examples/ runs, at small sizes, as a user would run it (its own process,
offline), and leaves its runs in the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integrations.helpers import paths, stored_runs

from greenai.integrations import (
    is_lightning_available,
    is_mlflow_available,
    is_torch_available,
    is_transformers_available,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(tmp_path: Path, script: str, *args: str, simulate: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(GREENAI_LEDGER=str(tmp_path / "ledger.db"), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    if simulate:
        env["GREENAI_SIMULATE"] = "1"  # deterministic power: a budget fires at a known energy
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_each_integration_has_an_example_tested_here() -> None:
    ours = {"torch_instrument.py", "lightning_digits.py", "transformers_digits.py", "mlflow_digits.py"}
    assert ours <= {p.name for p in EXAMPLES.glob("*.py")}
    source = Path(__file__).read_text()
    for script in ours:
        assert source.count(f'"{script}"') >= 2, f"{script} is not run by a test here"


@pytest.mark.skipif(not is_torch_available(), reason="needs greenai[demo]")
def test_torch_instrument(tmp_path) -> None:
    out = run_example(tmp_path, "torch_instrument.py", "--epochs", "1", "--limit", "64")
    assert "hooks saw 3 forwards, 2 backwards, 2 optimizer steps" in out  # 2 training batches + 1 evaluation
    (run,) = stored_runs(tmp_path)
    assert run.start.name == "digits-instrumented" and run.status == "completed"
    assert {"forward", "backward", "optimizer_step", "evaluation/forward"} <= paths(run)
    assert run.snapshot.counters["samples"] == 64 and run.snapshot.counters["steps"] == 2


@pytest.mark.skipif(not is_lightning_available(), reason="needs greenai[demo,lightning]")
def test_lightning_digits(tmp_path) -> None:
    out = run_example(tmp_path, "lightning_digits.py", "--epochs", "1", "--limit", "64")
    assert "fit: completed, 2 steps" in out and "greenai/energy_j" in out
    runs = {r.start.name: r for r in stored_runs(tmp_path)}
    assert set(runs) == {"digits-fit", "digits-test"}
    assert {"train", "validation", "sanity_check"} <= paths(runs["digits-fit"])
    assert "test" in paths(runs["digits-test"])


@pytest.mark.skipif(not is_lightning_available(), reason="needs greenai[demo,lightning]")
def test_lightning_digits_with_a_budget(tmp_path) -> None:
    out = run_example(
        tmp_path, "lightning_digits.py", "--epochs", "200", "--limit", "64", "--budget-j", "5", simulate=True
    )
    assert "fit: interrupted" in out and "stopped: budget exceeded (stop)" in out
    assert "greenai-budget-stop-step=" in out
    runs = {r.start.name: r for r in stored_runs(tmp_path)}
    assert runs["digits-fit"].status == "interrupted" and runs["digits-test"].status == "completed"


@pytest.mark.skipif(not is_transformers_available(), reason="needs greenai[demo,transformers]")
def test_transformers_digits(tmp_path) -> None:
    out = run_example(tmp_path, "transformers_digits.py", "--epochs", "1", "--limit", "64")
    assert "training: completed, 2 steps" in out and "per token" in out
    # greenai's figures reach the Trainer's logs (per step and per token only from a log that
    # came after a sampler reading: 2 steps may all come before one)
    assert "in trainer.state.log_history: greenai_carbon_g, greenai_energy_j" in out
    (run,) = stored_runs(tmp_path)
    assert run.start.name == "digits-bert" and {"train_step", "evaluation"} <= paths(run)
    assert run.snapshot.counters["samples"] == 64 and run.snapshot.counters["tokens"] > 64


@pytest.mark.skipif(not is_transformers_available(), reason="needs greenai[demo,transformers]")
def test_transformers_digits_with_a_budget(tmp_path) -> None:
    out = run_example(
        tmp_path, "transformers_digits.py", "--epochs", "200", "--limit", "64", "--budget-j", "5", simulate=True
    )
    assert "training: interrupted" in out and "checkpoint: checkpoint-" in out
    (run,) = stored_runs(tmp_path)
    assert run.status == "interrupted"


@pytest.mark.skipif(not is_mlflow_available() or not is_torch_available(), reason="needs greenai[demo,mlflow]")
def test_mlflow_digits(tmp_path) -> None:
    pytest.importorskip("plotly")
    out = run_example(tmp_path, "mlflow_digits.py", "--epochs", "1")
    assert "greenai.energy_j = " in out and "greenai.provenance=estimated" in out
    assert "artifact: greenai/greenai-report-" in out
    (run,) = stored_runs(tmp_path)
    assert run.start.name == "digits-mlflow" and run.status == "completed"
