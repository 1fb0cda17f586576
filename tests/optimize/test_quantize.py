"""Int8 transforms on tiny real models: closeness to float, real int8 modules, fallback."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from greenai.errors import ConfigError, TransformSkipped
from greenai.hardware.cpu import CpuFeatures
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.model_stats import model_size_bytes
from greenai.optimize.transforms.int8.common import (
    quantized_module_names,
    torchao_available,
)
from greenai.optimize.transforms.int8.dynamic import DynamicInt8, choose_dynamic_backend
from greenai.optimize.transforms.int8.qat import QuantAwareTraining
from greenai.optimize.transforms.int8.static import FxRecipe, StaticInt8

X86_VNNI = CpuFeatures.from_flags(["avx2", "avx512f", "avx512_vnni", "avx512_bf16"])
X86_OLD = CpuFeatures.from_flags(["avx2", "fma"])
ARM = CpuFeatures.from_flags(["asimd", "asimddp", "bf16"], arch="aarch64", quantized_engines=("qnnpack",))
needs_torchao = pytest.mark.skipif(not torchao_available(), reason="torchao not installed")


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(16, 64)
        self.b = nn.Linear(64, 64)
        self.c = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


class TinyLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.a(x)
        return -self.a(x)


def fidelity_task(model: nn.Module, x: torch.Tensor, **kw) -> OptimizeTask:
    """Quality = minimum cosine similarity of outputs to the float model's."""
    model.eval()
    with torch.no_grad():
        reference = model(x)

    def evaluate(m: nn.Module) -> float:
        with torch.no_grad():
            return nn.functional.cosine_similarity(m(x), reference, dim=1).min().item()

    return OptimizeTask(model=model, evaluate=evaluate, inputs=[x], **kw)


@pytest.fixture(scope="module")
def mlp_task() -> OptimizeTask:
    torch.manual_seed(0)
    return fidelity_task(MLP(), torch.randn(32, 16))


def _close(candidate: Candidate, task: OptimizeTask, atol: float) -> torch.Tensor:
    x = task.inputs[0]
    with torch.inference_mode():
        out = candidate.model(x)
        ref = task.model(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max().item() < atol
    return out


# ---- dynamic -------------------------------------------------------------------------

BACKENDS = ["torch.ao", pytest.param("torchao", marks=needs_torchao)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_int8_is_close_real_and_smaller(mlp_task, backend, per_channel):
    transform = DynamicInt8(per_channel=per_channel, backend=backend)
    candidate = transform(Candidate.baseline(mlp_task), mlp_task)
    assert candidate.name == ("int8-dynamic-perchannel" if per_channel else "int8-dynamic")
    _close(candidate, mlp_task, atol=0.02)
    assert set(candidate.extra["quantized_layers"]) == {"a", "b", "c"}
    assert candidate.extra["int8_backend"] == backend
    assert backend in candidate.notes[-1]
    assert model_size_bytes(candidate.model) < 0.6 * model_size_bytes(mlp_task.model)
    assert type(mlp_task.model.a) is nn.Linear  # the input candidate is untouched


def test_dynamic_per_channel_weights_really_per_channel(mlp_task):
    tensor = DynamicInt8(per_channel=False, backend="torch.ao")(Candidate.baseline(mlp_task), mlp_task)
    channel = DynamicInt8(per_channel=True, backend="torch.ao")(Candidate.baseline(mlp_task), mlp_task)
    assert tensor.model.a.weight().qscheme() == torch.per_tensor_affine
    assert channel.model.a.weight().qscheme() == torch.per_channel_affine
    assert channel.model.a.weight().dtype == torch.qint8


def test_auto_backend_follows_the_cpu():
    assert choose_dynamic_backend(X86_VNNI)[0] == "torch.ao"
    if torchao_available():
        backend, why = choose_dynamic_backend(ARM)
        assert backend == "torchao" and "auto" in why
    with pytest.raises(ConfigError):
        DynamicInt8(backend="tensorrt")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_lstm_uses_torch_ao_where_torchao_cannot(backend):
    torch.manual_seed(0)
    task = fidelity_task(TinyLSTM(), torch.randn(4, 5, 8))
    candidate = DynamicInt8(backend=backend)(Candidate.baseline(task), task)
    _close(candidate, task, atol=0.05)
    assert "rnn" in candidate.extra["quantized_layers"]
    assert "torch.ao" in candidate.extra["int8_backend"]


def test_dynamic_transformer_layer_runs_with_torch_ao():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    task = fidelity_task(layer, torch.randn(2, 6, 32))
    candidate = DynamicInt8(backend="torch.ao")(Candidate.baseline(task), task)
    _close(candidate, task, atol=0.1)
    assert torch.backends.mha.get_fastpath_enabled()  # global switch restored


def test_dynamic_skips_models_without_linear_layers():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    task = fidelity_task(conv, torch.randn(2, 3, 8, 8))
    with pytest.raises(TransformSkipped, match="no nn.Linear"):
        DynamicInt8()(Candidate.baseline(task), task)


# ---- static --------------------------------------------------------------------------


def test_static_int8_close_and_really_int8(mlp_task):
    candidate = StaticInt8(fallback_layers=0)(Candidate.baseline(mlp_task), mlp_task)
    _close(candidate, mlp_task, atol=0.05)
    assert set(candidate.extra["quantized_layers"]) >= {"a", "b", "c"}
    assert candidate.extra["float_layers"] == []
    assert candidate.model.b.weight().dtype == torch.qint8
    # int8 weights; per-channel scales and graph metadata keep this tiny model above 1/4
    assert model_size_bytes(candidate.model) < 0.75 * model_size_bytes(mlp_task.model)


def test_per_channel_and_per_tensor_differ_in_observers_and_weights(mlp_task):
    channel, tensor = FxRecipe("x86", True, False), FxRecipe("x86", False, False)
    assert "PerChannel" in type(channel.qconfig().weight()).__name__
    assert "PerChannel" not in type(tensor.qconfig().weight()).__name__
    pc = StaticInt8(per_channel=True, fallback_layers=0)(Candidate.baseline(mlp_task), mlp_task)
    pt = StaticInt8(per_channel=False, fallback_layers=0)(Candidate.baseline(mlp_task), mlp_task)
    assert pc.model.a.weight().qscheme() == torch.per_channel_affine
    assert pt.model.a.weight().qscheme() == torch.per_tensor_affine
    assert pt.name == "int8-static-pertensor"


def test_activation_range_follows_vnni():
    assert FxRecipe.for_cpu(X86_VNNI, True).reduce_range is False
    assert FxRecipe.for_cpu(X86_OLD, True).reduce_range is True


def sensitive_task() -> OptimizeTask:
    """Input feature 0 spans +-1000 while the others are ~1: quantizing the input of the
    first layer `a` (per-tensor activations) wipes the small features out."""
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(64, 16)
    x[:, 0] *= 1000.0
    with torch.no_grad():
        model.a.weight[:, 0] *= 1e-3
    return fidelity_task(model, x)


def test_fallback_keeps_the_most_sensitive_layer_float():
    task = sensitive_task()
    plain = StaticInt8(fallback_layers=0)(Candidate.baseline(task), task)
    assert task.evaluate(task.model) - task.evaluate(plain.model) > 0.05  # it does hurt
    candidate = StaticInt8(max_quality_drop=0.01)(Candidate.baseline(task), task)
    assert candidate.extra["float_layers"] == ["a"]
    assert candidate.extra["sensitivity"][0][0] == "a"
    assert type(candidate.model.a) is nn.Linear  # stayed float
    assert candidate.model.b.weight().dtype == torch.qint8
    assert candidate.extra["quality_drop"] <= 0.01
    assert "kept float: a" in candidate.notes[-1]


def test_fixed_fallback_count():
    task = sensitive_task()
    candidate = StaticInt8(fallback_layers=2)(Candidate.baseline(task), task)
    assert len(candidate.extra["float_layers"]) == 2 and candidate.extra["float_layers"][0] == "a"
    with pytest.raises(ConfigError):
        StaticInt8(fallback_layers=-1)


def test_untraceable_model_is_skipped_with_reason():
    task = fidelity_task(Branchy(), torch.randn(4, 16))
    with pytest.raises(TransformSkipped, match="torch.fx cannot trace"):
        StaticInt8()(Candidate.baseline(task), task)


# ---- QAT -----------------------------------------------------------------------------


def test_qat_skips_without_finetune(mlp_task):
    with pytest.raises(TransformSkipped, match="finetune"):
        QuantAwareTraining()(Candidate.baseline(mlp_task), mlp_task)


def test_qat_finetunes_then_converts():
    torch.manual_seed(0)
    model, x = MLP(), torch.randn(32, 16)
    y = torch.randint(0, 4, (32,))
    calls: list[int] = []

    def finetune(m: nn.Module, steps: int) -> None:
        calls.append(steps)
        opt = torch.optim.SGD(m.parameters(), lr=0.01)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()

    task = fidelity_task(model, x, finetune=finetune, finetune_steps=50)
    candidate = QuantAwareTraining(steps=3)(Candidate.baseline(task), task)
    assert calls == [3]
    assert candidate.model.a.weight().dtype == torch.qint8
    with torch.inference_mode():
        out = candidate.model(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert task.evaluate(candidate.model) > 0.9  # 3 small steps stay near the float model


def test_quantized_names_see_through_candidates(mlp_task):
    candidate = DynamicInt8(backend="torch.ao")(Candidate.baseline(mlp_task), mlp_task)
    assert quantized_module_names(mlp_task.model) == []
    with pytest.raises(TransformSkipped, match="already int8"):
        StaticInt8()(candidate, mlp_task)
