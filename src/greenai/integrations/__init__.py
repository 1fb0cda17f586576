"""greenai inside the frameworks people train with: plain PyTorch, PyTorch Lightning, Hugging Face
Transformers and MLflow.

Each integration is a module of its own, imported only when you import it, and each needs an
optional extra; `import greenai.integrations` imports none of the frameworks:

    greenai.integrations.torch         instrument(model, optimizer, run): forward, backward and
                                       optimizer_step phases, samples and steps   [torch]
    greenai.integrations.lightning     GreenAICallback, a Callback of both Lightning
                                       packages (lightning, pytorch-lightning)    [lightning]
    greenai.integrations.transformers  GreenAICallback, a TrainerCallback         [transformers]
    greenai.integrations.mlflow        log_run(result): metrics, params, tags,
                                       the report as an artifact                  [mlflow]

The probes below say whether an integration can be imported here, without importing its
framework. Importing an integration whose framework is missing raises
`IntegrationUnavailableError` (an ImportError) naming the extra to install.
See docs/integrations.md.
"""

from __future__ import annotations

import importlib.util

from greenai.errors import IntegrationUnavailableError

# integration -> (the extra that installs it, the modules it imports ("a|b": either one), the
# library's name, how else to install it)
REQUIREMENTS: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "torch": ("torch", ("torch",), "torch", ""),
    "lightning": (
        "lightning",
        ("torch", "lightning|pytorch_lightning"),
        "PyTorch Lightning (lightning or pytorch-lightning)",
        "pip install lightning",
    ),
    "transformers": ("transformers", ("torch", "transformers", "accelerate"), "Hugging Face Transformers", ""),
    "mlflow": ("mlflow", ("mlflow",), "MLflow", ""),
}


def _available(integration: str) -> bool:
    try:
        return all(
            any(importlib.util.find_spec(m) is not None for m in either.split("|"))
            for either in REQUIREMENTS[integration][1]
        )
    except (ImportError, ValueError):  # a broken or half-installed package
        return False


def is_torch_available() -> bool:
    """Whether `greenai.integrations.torch` can be imported (torch is installed)."""
    return _available("torch")


def is_lightning_available() -> bool:
    """Whether `greenai.integrations.lightning` can be imported (torch, and lightning or
    pytorch-lightning)."""
    return _available("lightning")


def is_transformers_available() -> bool:
    """Whether `greenai.integrations.transformers` can be imported (transformers, accelerate, torch)."""
    return _available("transformers")


def is_mlflow_available() -> bool:
    """Whether `greenai.integrations.mlflow` can be imported (mlflow or mlflow-skinny)."""
    return _available("mlflow")


def unavailable(integration: str, error: ImportError) -> IntegrationUnavailableError:
    """The error an integration raises when importing its framework failed: names the
    library, the extra that installs it and what was missing."""
    extra, _, library, other = REQUIREMENTS[integration]
    install = f"pip install 'greenai[{extra}]'" + (f" or {other}" if other else "")
    missing = f"{error.name} is missing" if error.name else str(error)
    return IntegrationUnavailableError(f"greenai.integrations.{integration} needs {library}: {install} ({missing})")


__all__ = [
    "IntegrationUnavailableError",
    "is_lightning_available",
    "is_mlflow_available",
    "is_torch_available",
    "is_transformers_available",
]
