"""Dynamic int8 quantization: int8 weights, activations quantized on the fly per batch.

Method: Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018); PyTorch dynamic quantization. Applies to
nn.Linear (and LSTM/GRU, through torch.ao only). Two backends:

- "torch.ao": `torch.ao.quantization.quantize_dynamic` with the CPU's engine (fbgemm/x86
  on x86 with VNNI int8 kernels, qnnpack on ARM). Deprecated upstream but fast in eager mode.
- "torchao": `torchao.quantization.quantize_(model, Int8DynamicActivationInt8WeightConfig)`
  (int8 tensor subclass, per-row or per-tensor weights), the maintained API.

"auto" picks torch.ao on x86 with an fbgemm/x86 engine, because it measured faster on
this project's AMD EPYC (avx512_vnni; torch 2.13, torchao 0.18; 1 thread, eager, median of
30 interleaved rounds, inference_mode): MLP 768->3072->768 batch 32: fp32 4.6 ms,
torchao 2.7 ms, torch.ao 0.70 ms; TransformerEncoderLayer(256, 4 heads, ff 1024) 8x64
tokens: fp32 9.4 ms, torchao 6.6 ms, torch.ao 5.0 ms. Elsewhere (ARM, or torch.ao
removed) "auto" picks torchao; no ARM figures were measured.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from greenai.errors import ConfigError, TransformSkipped
from greenai.hardware.cpu import CpuFeatures, FeaturesSource, features_of
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.int8.common import (
    RNN_LAYERS,
    library_versions,
    quantized_engine,
    quantized_module_names,
    quiet_torch_ao,
    quiet_torchao_import,
    torch_ao_available,
    torchao_available,
    untested_versions,
)
from greenai.optimize.transforms.precision import smoke_test

Backend = Literal["auto", "torchao", "torch.ao"]


class NoTransformerFastPath(nn.Module):
    """Runs the wrapped module with PyTorch's fused Transformer fast path off.

    The fast path of nn.TransformerEncoder(Layer) reads `linear1.weight` as a tensor, which
    torch.ao's dynamic Linear exposes as a method, so it would crash. The switch is
    process-global; it is restored after each call.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        previous = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return self.module(*args, **kwargs)
        finally:
            torch.backends.mha.set_fastpath_enabled(previous)


def choose_dynamic_backend(features: CpuFeatures, requested: Backend = "auto") -> tuple[str, str]:
    """(backend, why) for dynamic int8 on this CPU; raises TransformSkipped if unavailable."""
    have_ao, have_torchao = torch_ao_available(), torchao_available()
    if requested == "torch.ao":
        if not have_ao:
            raise TransformSkipped("torch.ao.quantization is not available in this torch")
        return "torch.ao", "requested"
    if requested == "torchao":
        if not have_torchao:
            raise TransformSkipped("torchao is not installed (pip install 'torchao')")
        return "torchao", "requested"
    fbgemm = {"x86", "fbgemm"} & set(features.quantized_engines)
    if have_ao and features.is_x86 and fbgemm:
        return "torch.ao", (
            "auto: torch.ao's fbgemm int8 kernels ran faster than torchao's "
            "eager int8 path on x86 with VNNI in our benchmark"
        )
    if have_torchao:
        return "torchao", "auto: torchao is the maintained int8 API (no fbgemm engine here)"
    if have_ao:
        return "torch.ao", "auto: torchao is not installed"
    raise TransformSkipped("neither torchao nor torch.ao.quantization is available")


def _torch_ao_dynamic(model: nn.Module, types: set[type[nn.Module]], per_channel: bool, engine: str) -> nn.Module:
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
    )
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    spec: dict[Any, Any] = {}
    for kind in types:
        # per-channel dynamic weights are supported for Linear; RNNs stay per-tensor
        spec[kind] = per_channel_dynamic_qconfig if per_channel and kind is nn.Linear else default_dynamic_qconfig
    with quiet_torch_ao(), quantized_engine(engine):
        return ao_quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def _torchao_dynamic(model: nn.Module, per_channel: bool) -> nn.Module:
    with quiet_torchao_import():
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            quantize_,
        )
        from torchao.quantization.granularity import PerRow, PerTensor

    config = Int8DynamicActivationInt8WeightConfig(
        granularity=PerRow() if per_channel else PerTensor(), set_inductor_config=False
    )
    quantize_(model, config)  # replaces Linear weights in place; default filter: nn.Linear
    return model


class DynamicInt8:
    """Dynamic int8 for Linear (and LSTM/GRU), per-tensor or per-channel weights."""

    def __init__(self, per_channel: bool = False, backend: Backend = "auto", features: FeaturesSource = None) -> None:
        if backend not in ("auto", "torchao", "torch.ao"):
            raise ConfigError(f"DynamicInt8 backend must be 'auto', 'torchao' or 'torch.ao', not {backend!r}")
        self.per_channel = per_channel
        self.backend = backend
        self._features = features
        self.name = "int8-dynamic-perchannel" if per_channel else "int8-dynamic"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        features = features_of(self._features)
        backend, why = choose_dynamic_backend(features, self.backend)
        model = candidate.model_copy().eval()
        if quantized_module_names(model):
            raise TransformSkipped(f"{self.name}: the model is already int8-quantized")
        kinds = {type(m) for m in model.modules()}
        has_linear = any(issubclass(k, nn.Linear) for k in kinds)
        rnn_types = {k for k in RNN_LAYERS if k in kinds}
        if not has_linear and not rnn_types:
            raise TransformSkipped(f"{self.name}: no nn.Linear, LSTM or GRU layers to quantize")
        try:
            engine = features.quantized_engine()
        except ValueError as e:
            raise TransformSkipped(f"{self.name}: {e}") from e
        ran = backend
        try:
            if backend == "torchao":
                if has_linear:
                    model = _torchao_dynamic(model, self.per_channel)
                if rnn_types:  # torchao has no LSTM/GRU kernels: fall back for those
                    if not torch_ao_available():
                        raise TransformSkipped(f"{self.name}: LSTM/GRU need torch.ao, missing")
                    model = _torch_ao_dynamic(model, rnn_types, False, engine)
                    ran = "torchao+torch.ao(rnn)"
            else:
                model = _torch_ao_dynamic(
                    model, ({nn.Linear} if has_linear else set()) | rnn_types, self.per_channel, engine
                )
        except TransformSkipped:
            raise
        except Exception as e:  # library refuses this model: skip it, keep the search going
            raise TransformSkipped(f"{self.name} ({backend}) failed: {type(e).__name__}: {e}") from e
        layers = quantized_module_names(model)
        if not layers:
            raise TransformSkipped(f"{self.name}: {backend} quantized no layer of this model")
        if backend == "torch.ao" and any(
            isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerEncoder)) for m in model.modules()
        ):
            model = NoTransformerFastPath(model)
        smoke_test(model, task, self.name)
        granularity = "per-channel" if self.per_channel else "per-tensor"
        note = f"dynamic int8 ({granularity} weights) via {ran}, engine {engine}; backend {why}"
        odd = untested_versions()
        if odd:
            note += f"; {odd}"
        return candidate.derive(
            self.name, model, note=note, int8_backend=ran, quantized_layers=layers, library_versions=library_versions()
        )
