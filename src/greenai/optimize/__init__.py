"""Cut energy: transforms judged by measured joules at a stated quality.

    from greenai.optimize import OptimizeTask, optimize, parse_pipeline
    study = optimize(task, [parse_pipeline("int8-dynamic"), parse_pipeline("prune-structured=0.3+int8-static")])

Names are imported lazily so `import greenai.optimize` does not load torch.
"""

from __future__ import annotations

from typing import Any

from greenai._lazy import lazy_attribute

_LAZY = {
    "optimize": "greenai.optimize.search",
    "Study": "greenai.optimize.search",
    "OptimizeTask": "greenai.optimize.candidate",
    "Candidate": "greenai.optimize.candidate",
    "parse_pipeline": "greenai.optimize.plans",
    "default_plan": "greenai.optimize.plans",
    "plot_study": "greenai.optimize.plot",
    "save_model": "greenai.optimize.saved",
    "load_model": "greenai.optimize.saved",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)
