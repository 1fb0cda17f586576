"""Int8 quantization transforms, one module each:

- `DynamicInt8` (quantize_dynamic.py): int8 weights, activations quantized per batch;
  torch.ao or torchao backend, picked from the CPU.
- `StaticInt8` (quantize_static.py): calibrated post-training int8 (FX graph mode) with
  per-layer fallback to float for the layers that hurt quality most.
- `QuantAwareTraining` (qat.py): fine-tune with fake quantization, then convert.

Lower float precision (bf16, fp16) lives in precision.py; CPU probing in cpu_features.py.
"""

from greenai.optimize.qat import QuantAwareTraining
from greenai.optimize.quantize_dynamic import DynamicInt8, choose_dynamic_backend
from greenai.optimize.quantize_static import StaticInt8, quantizable_layer_names

__all__ = [
    "DynamicInt8",
    "QuantAwareTraining",
    "StaticInt8",
    "choose_dynamic_backend",
    "quantizable_layer_names",
]
