"""Quantization-aware training: fine-tune with fake int8 quantization, then convert.

Method: Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018): fake-quantize weights and activations in
the forward pass, pass gradients straight through (Bengio et al. 2013), so the weights
adapt to int8 rounding. Uses torch.ao's FX flow (`prepare_qat_fx`, `convert_fx`) with the
same engine and recipe as static int8 (see quantize_static.py for why FX).
"""

from __future__ import annotations

from greenai.errors import ConfigError, TransformSkipped
from greenai.hardware.cpu import FeaturesSource, features_of
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.int8.common import (
    example_inputs,
    library_versions,
    quantized_module_names,
    torch_ao_available,
)
from greenai.optimize.transforms.int8.static import (
    FxRecipe,
    fx_convert,
    fx_prepare,
    quantizable_layer_names,
)
from greenai.optimize.transforms.precision import smoke_test


class QuantAwareTraining:
    """QAT int8: `task.finetune(model, steps)` on the fake-quantized model, then convert."""

    def __init__(self, steps: int | None = None, per_channel: bool = True, features: FeaturesSource = None) -> None:
        if steps is not None and steps < 1:
            raise ConfigError(f"QAT steps must be >= 1, not {steps}")
        self.steps = steps
        self.per_channel = per_channel
        self._features = features
        self.name = "int8-qat"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        if task.finetune is None:
            raise TransformSkipped(
                f"{self.name}: quantization-aware training needs task.finetune (a training loop); none was given"
            )
        if not torch_ao_available():
            raise TransformSkipped(f"{self.name}: torch.ao.quantization FX is not available")
        recipe = FxRecipe.for_cpu(features_of(self._features), self.per_channel, qat=True)
        model = candidate.model_copy()
        if quantized_module_names(model):
            raise TransformSkipped(f"{self.name}: the model is already int8-quantized")
        if not quantizable_layer_names(model):
            raise TransformSkipped(f"{self.name}: no Linear or Conv layers to quantize")
        prepared = fx_prepare(model, recipe, example_inputs(task))
        steps = self.steps if self.steps is not None else task.finetune_steps
        prepared.train()
        task.finetune(prepared, steps)
        quantized = fx_convert(prepared, recipe)
        if not quantized_module_names(quantized):
            raise TransformSkipped(f"{self.name}: no layer ended up quantized")
        smoke_test(quantized, task, self.name)
        granularity = "per-channel" if self.per_channel else "per-tensor"
        return candidate.derive(
            self.name,
            quantized,
            note=f"QAT int8 (FX, {granularity} weights, engine {recipe.engine}) after {steps} fine-tuning steps",
            quantized_layers=quantized_module_names(quantized),
            qat_steps=steps,
            int8_backend="torch.ao.fx",
            library_versions=library_versions(),
        )
