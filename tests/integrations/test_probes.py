"""Each integration is optional: `import greenai.integrations` imports no framework, the probes
say what is importable without importing it, and a missing framework is named with its extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import greenai.integrations as integrations
from greenai.errors import GreenAIError, IntegrationUnavailableError

FRAMEWORKS = ("torch", "pytorch_lightning", "lightning", "transformers", "accelerate", "mlflow")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_greenai_and_its_integrations_imports_no_framework() -> None:
    proc = run_python(
        "import sys, greenai, greenai.integrations as g\n"
        "g.is_torch_available(); g.is_lightning_available(); g.is_transformers_available(); g.is_mlflow_available()\n"
        f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "probe,modules",
    [
        (integrations.is_torch_available, ("torch",)),
        (integrations.is_lightning_available, ("torch", "pytorch_lightning")),
        (integrations.is_transformers_available, ("torch", "transformers", "accelerate")),
        (integrations.is_mlflow_available, ("mlflow",)),
    ],
)
def test_each_probe_says_whether_its_libraries_are_installed(probe, modules) -> None:
    assert probe() == all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.parametrize(
    "integration,blocked,extra",
    [
        ("torch", "torch", "torch"),
        ("lightning", "pytorch_lightning", "lightning"),
        ("transformers", "transformers", "transformers"),
        ("mlflow", "mlflow", "mlflow"),
    ],
)
def test_a_missing_framework_is_an_import_error_naming_the_extra(integration: str, blocked: str, extra: str) -> None:
    proc = run_python(
        "import sys\n"
        f"sys.modules[{blocked!r}] = None  # as if it were not installed\n"
        "from greenai.errors import IntegrationUnavailableError\n"
        "try:\n"
        f"    import greenai.integrations.{integration}\n"
        "except IntegrationUnavailableError as e:\n"
        "    print(isinstance(e, ImportError), e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True greenai.integrations.")
    assert f"pip install 'greenai[{extra}]'" in proc.stdout
    assert blocked in proc.stdout


def test_the_error_is_both_a_greenai_error_and_an_import_error() -> None:
    error = integrations.unavailable("mlflow", ImportError("No module named 'mlflow'", name="mlflow"))
    assert isinstance(error, IntegrationUnavailableError)
    assert isinstance(error, GreenAIError) and isinstance(error, ImportError)
    assert str(error) == "greenai.integrations.mlflow needs MLflow: pip install 'greenai[mlflow]' (mlflow is missing)"
