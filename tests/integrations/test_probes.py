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


def installed(module: str) -> bool:
    """Whether `module` ("a|b": either one) can be found, importing nothing."""
    return any(importlib.util.find_spec(m) is not None for m in module.split("|"))


def blocking(modules: tuple[str, ...]) -> str:
    """Code that makes `modules` look uninstalled."""
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


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
        (integrations.is_lightning_available, ("torch", "lightning|pytorch_lightning")),
        (integrations.is_transformers_available, ("torch", "transformers", "accelerate")),
        (integrations.is_mlflow_available, ("mlflow",)),
    ],
)
def test_each_probe_says_whether_its_libraries_are_installed(probe, modules) -> None:
    assert probe() == all(installed(m) for m in modules)


@pytest.mark.parametrize(
    "integration,blocked,extra,missing",
    [
        ("torch", ("torch",), "torch", "torch"),
        ("lightning", ("lightning", "pytorch_lightning"), "lightning", "neither lightning nor pytorch_lightning"),
        ("transformers", ("transformers",), "transformers", "transformers"),
        ("mlflow", ("mlflow",), "mlflow", "mlflow"),
    ],
)
def test_a_missing_framework_is_an_import_error_naming_the_extra(
    integration: str, blocked: tuple[str, ...], extra: str, missing: str
) -> None:
    proc = run_python(
        blocking(blocked) + "from greenai.errors import IntegrationUnavailableError\n"
        "try:\n"
        f"    import greenai.integrations.{integration}\n"
        "except IntegrationUnavailableError as e:\n"
        "    print(isinstance(e, ImportError), e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True greenai.integrations.")
    assert f"pip install 'greenai[{extra}]'" in proc.stdout
    assert missing in proc.stdout


def test_lightning_is_missing_only_without_both_packages() -> None:
    proc = run_python(
        blocking(("lightning", "pytorch_lightning")) + "import greenai.integrations as g\n"
        "print(g.is_lightning_available())\n"
        "try:\n"
        "    import greenai.integrations.lightning\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "False",
        "greenai.integrations.lightning needs PyTorch Lightning (lightning or pytorch-lightning): "
        "pip install 'greenai[lightning]' or pip install lightning (neither lightning nor pytorch_lightning is installed)",
    ]


@pytest.mark.parametrize("only,other", [("lightning.pytorch", "pytorch_lightning"), ("pytorch_lightning", "lightning")])
def test_lightning_with_one_package_of_the_two(only: str, other: str) -> None:
    """Either package alone is enough: the probe says so and the callback is that package's."""
    if not (installed("torch") and installed(only.split(".")[0])):
        pytest.skip(f"needs torch and {only}")
    proc = run_python(
        blocking((other,)) + "import greenai.integrations as g\n"
        "from greenai.integrations.lightning import GreenAICallback\n"
        "print(g.is_lightning_available(), [c.__module__.split('.callbacks')[0] for c in GreenAICallback.__bases__])\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"True [{only!r}]"


def test_a_broken_lightning_package_leaves_the_other_one_working() -> None:
    """An installed package that fails on import with something other than ImportError (a
    version mismatch) is skipped with a warning, not fatal, when the other package works."""
    if not (installed("torch") and installed("pytorch_lightning")):
        pytest.skip("needs torch and pytorch_lightning")
    proc = run_python(
        "import sys\n"
        "class Broken:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lightning' or name.startswith('lightning.'):\n"
        "            raise RuntimeError('built against another torch')\n"
        "sys.meta_path.insert(0, Broken())\n"
        "from greenai.integrations.lightning import GreenAICallback\n"
        "print([c.__module__.split('.callbacks')[0] for c in GreenAICallback.__bases__])\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['pytorch_lightning']"
    assert "lightning.pytorch could not be imported (RuntimeError: built against another torch)" in proc.stderr


def test_the_error_is_both_a_greenai_error_and_an_import_error() -> None:
    error = integrations.unavailable("mlflow", ImportError("No module named 'mlflow'", name="mlflow"))
    assert isinstance(error, IntegrationUnavailableError)
    assert isinstance(error, GreenAIError) and isinstance(error, ImportError)
    assert str(error) == "greenai.integrations.mlflow needs MLflow: pip install 'greenai[mlflow]' (mlflow is missing)"


def test_a_callbacks_run_settings_default_the_eval_phases_and_refuse_settings_beside_run() -> None:
    """What both callbacks start their runs with (integrations/_common.run_settings): the
    framework's evaluation phase and the periodic ones unless the caller names eval_phases;
    settings beside a run of the user's own are refused, naming them."""
    from greenai.integrations._common import run_settings
    from greenai.tracking.progress import DEFAULT_PERIODIC_PHASES
    from greenai.tracking.tracker import Tracker

    assert run_settings(None, {}, "validation") == {"eval_phases": ("validation", *DEFAULT_PERIODIC_PHASES)}
    mine = run_settings(None, {"eval_phases": ("val",), "sample_hz": 5.0}, "validation")
    assert mine == {"eval_phases": ("val",), "sample_hz": 5.0}
    with pytest.raises(ValueError, match="with run= the Tracker is yours; sample_hz go to greenai.track"):
        run_settings(Tracker("t", store=False), {"sample_hz": 5.0}, "validation")
