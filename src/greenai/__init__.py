"""greenai: measure, predict and cut the energy, carbon and cost of AI training and inference.

The public surface is small and imported lazily so `import greenai` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenai._lazy import lazy_attribute
from greenai._version import __version__

__all__ = [
    "track",
    "Tracker",
    "RunResult",
    "Budget",
    "BudgetExceeded",
    "estimate",
    "report",
    "load_config",
    "Config",
    "GreenAIError",
    "__version__",
]

if TYPE_CHECKING:
    from greenai.config import Config, load_config
    from greenai.errors import BudgetExceeded, GreenAIError
    from greenai.estimation.api import estimate
    from greenai.reports.api import report
    from greenai.tracking.budget import Budget
    from greenai.tracking.result import RunResult
    from greenai.tracking.tracker import Tracker, track

_LAZY = {
    "track": "greenai.tracking.tracker",
    "Tracker": "greenai.tracking.tracker",
    "RunResult": "greenai.tracking.result",
    "Budget": "greenai.tracking.budget",
    "BudgetExceeded": "greenai.errors",
    "estimate": "greenai.estimation.api",  # the package is `estimation`: see tests/test_public_names.py
    "report": "greenai.reports.api",  # the package is `reports` so `import greenai.reports` never shadows this
    "load_config": "greenai.config",
    "Config": "greenai.config",
    "GreenAIError": "greenai.errors",
}


def __getattr__(name: str) -> Any:
    if name in ("track", "Tracker"):
        # registers the joiner of distributed jobs with the tracker (tracking/joining.py)
        import importlib

        importlib.import_module("greenai.distributed")
    return lazy_attribute(__name__, _LAZY, name)
