"""Online tuning: settings a running job changes between its own steps, judged in joules.

    from greenai.tune import OnlineTuner, ThreadsKnob, BatchSizeKnob, OptimizerImplKnob, Energy

    with OnlineTuner([ThreadsKnob(), BatchSizeKnob([32, 64])], Energy(), total_iterations=2000) as tuner:
        for _ in range(2000):
            with tuner.step() as step:
                train_step()

Knobs (threads, batch size, CPU frequency cap, RAPL power cap, GPU power limit and clocks,
optimizer implementation) live in `greenai.tune.knobs`; objectives in `greenai.tune.objectives`.
Names are imported lazily so `import greenai.tune` does not load torch.
"""

from __future__ import annotations

from typing import Any

from greenai._lazy import lazy_attribute

_LAZY = {
    "OnlineTuner": "greenai.tune.tuner",
    "TuningStep": "greenai.tune.tuner",
    "Knob": "greenai.tune.knobs.base",
    "KnobUnavailable": "greenai.tune.knobs.base",
    "ThreadsKnob": "greenai.tune.knobs.base",
    "BatchSizeKnob": "greenai.tune.knobs.base",
    "scale_lr_linearly": "greenai.tune.knobs.base",
    "CpuFreqCapKnob": "greenai.tune.knobs.cpu",
    "RaplPowerCapKnob": "greenai.tune.knobs.cpu",
    "GpuPowerLimitKnob": "greenai.tune.knobs.gpu",
    "GpuLockedClocksKnob": "greenai.tune.knobs.gpu",
    "OptimizerImplKnob": "greenai.tune.knobs.optimizer",
    "Objective": "greenai.tune.objectives",
    "Energy": "greenai.tune.objectives",
    "Time": "greenai.tune.objectives",
    "ZeusCost": "greenai.tune.objectives",
    "EnergyWithinSlowdown": "greenai.tune.objectives",
    "JoulesPerRequest": "greenai.tune.objectives",
    "keep_freed_memory": "greenai.tune.allocator",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)
