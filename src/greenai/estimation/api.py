"""The estimator's public entry point: a model and an example input in, a priced
prediction out (inference per batch and per sample, a training step, a whole run)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.config import Config, load_config
from greenai.estimation.counting import EstimateError, count_ops
from greenai.estimation.ops import OpCounts
from greenai.estimation.predict import Prediction, RunPrediction, predict, whole_run
from greenai.estimation.profile import Profile, load_profile
from greenai.factories import call_factory
from greenai.units import carbon_g, cost, joules_to_kwh


@dataclass(frozen=True)
class Priced:
    """Carbon and cost of an energy band at the configured grid, PUE and price."""

    carbon_g: float
    carbon_low_g: float
    carbon_high_g: float
    cost: float | None  # None: no price configured
    currency: str
    intensity_g_per_kwh: float
    source: str


@dataclass(frozen=True)
class Estimate:
    inference_counts: OpCounts
    inference: Prediction  # one forward of the example batch
    training_counts: OpCounts | None
    training_step: Prediction | None
    run: RunPrediction | None  # the whole training run, if steps were given
    run_priced: Priced | None
    profile_note: str

    @property
    def inference_energy_per_sample_j(self) -> float:
        return self.inference.energy_j / max(self.inference.batch_size, 1)


def estimate(
    model: Any,
    example_input: Any,
    *,
    training: bool = True,
    loss_fn: Callable[[Any], Any] | None = None,
    optimizer: str | None = "adam",
    steps: int | None = None,
    epochs: float | None = None,
    dataset_size: int | None = None,
    profile: Profile | str | Path | None = None,
    use_defaults: bool = False,
    config: Config | None = None,
) -> Estimate:
    """Predict time and energy before running. `profile`: a Profile, a path to one, or None
    for this machine's (from `greenai calibrate`); with none and `use_defaults`, or when none
    exists, the rough default coefficients are used and the result says so."""
    prof, note = _resolve_profile(profile, use_defaults)
    inference_counts = count_ops(model, example_input, training=False)
    inference = predict(inference_counts, prof)
    training_counts = step = run = priced = None
    if training:
        training_counts = count_ops(model, example_input, training=True, loss_fn=loss_fn, optimizer=optimizer)
        step = predict(training_counts, prof)
        n_steps = planned_steps(steps, epochs, dataset_size, step.batch_size)
        if n_steps is not None:
            run = whole_run(step, n_steps)
            priced = price(run.energy_j, run.energy_low_j, run.energy_high_j, config or load_config())
    return Estimate(inference_counts, inference, training_counts, step, run, priced, note)


MAX_STEPS = 10**15


def planned_steps(steps: int | None, epochs: float | None, dataset_size: int | None, batch_size: int) -> int | None:
    """Steps of a run: given directly, or epochs x ceil(dataset size / batch size); at most
    MAX_STEPS (a bound on typos: 1e15 steps of a microsecond are 30 years)."""
    if steps is not None:
        if not 0 <= steps <= MAX_STEPS:
            raise EstimateError(f"steps must be >= 0 and <= {MAX_STEPS:g}, got {steps}")
        return steps
    if epochs is not None and not math.isfinite(epochs):
        raise EstimateError(f"epochs must be a finite number, got {epochs}")
    if epochs is None and dataset_size is None:
        return None
    if epochs is None or dataset_size is None:
        raise EstimateError("a whole-run estimate needs both epochs and dataset size (or steps)")
    if epochs < 0 or dataset_size < 0:
        raise EstimateError("epochs and dataset size must be >= 0")
    total = epochs * math.ceil(dataset_size / max(batch_size, 1))
    if not total <= MAX_STEPS:
        raise EstimateError(
            f"{epochs:g} epochs of {dataset_size} samples in batches of {batch_size} are {total:g} steps, "
            f"more than {MAX_STEPS:g}"
        )
    return math.ceil(total)


def price(energy_j: float, low_j: float, high_j: float, config: Config) -> Priced:
    """Carbon and cost at the grid intensity now (a trace is read at the current time)."""
    from greenai.carbon.resolve import configured_intensity

    source = configured_intensity(config.intensity)
    intensity = source.intensity_at(time.time())
    facility = config.pue
    return Priced(
        carbon_g=carbon_g(energy_j * facility, intensity),
        carbon_low_g=carbon_g(low_j * facility, intensity),
        carbon_high_g=carbon_g(high_j * facility, intensity),
        cost=None if config.price_per_kwh is None else cost(energy_j * facility, config.price_per_kwh),
        currency=config.currency,
        intensity_g_per_kwh=intensity,
        source=f"{source.describe()}; PUE {config.pue:g}; {joules_to_kwh(energy_j * facility):.4g} kWh",
    )


def _resolve_profile(profile: Profile | str | Path | None, use_defaults: bool) -> tuple[Profile | None, str]:
    if use_defaults:
        return None, "default coefficients (rough; run `greenai calibrate` for this machine)"
    if isinstance(profile, Profile):
        return profile, f"calibration profile of {profile.date}"
    loaded = load_profile(profile, missing_ok=profile is None)
    if loaded is None:
        return None, "no calibration profile for this machine: default coefficients (rough); run `greenai calibrate`"
    return loaded, f"calibration profile of {loaded.date}"


def load_factory(spec: str) -> tuple[Any, Any]:
    """Call `MODULE:FACTORY` (a dotted module or a .py file path) and return (model, input)."""
    made = call_factory(spec, EstimateError)
    if not (isinstance(made, tuple) and len(made) == 2):
        raise EstimateError(f"{spec}() must return (model, example_input), got {type(made).__name__}")
    return made
