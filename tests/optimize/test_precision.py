"""bf16/fp16 transforms and the training autocast helper, on tiny real models."""

from __future__ import annotations

import contextlib

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from greenai.errors import ConfigError, TransformSkipped
from greenai.hardware.cpu import CpuFeatures, detect_cpu_features
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.precision import (
    Bf16Autocast,
    Bf16Weights,
    Fp16Autocast,
    to_float32,
    training_autocast,
)

# A bf16-capable CPU, injected so the behaviour is tested on any machine (torch emulates
# bf16 where the instructions are missing; only speed differs).
BF16_CPU = CpuFeatures.from_flags(["avx512f", "avx512_bf16", "avx512_vnni"])


@pytest.fixture
def no_bf16_cpu(tmp_path) -> CpuFeatures:
    """A fake /proc/cpuinfo of an AVX2 machine (no bf16), read by the real parser."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Old Xeon\nflags\t\t: fpu sse sse2 avx avx2 fma f16c\n\n")
    return detect_cpu_features(cpuinfo, use_torch=False)


class MultiOut(nn.Module):
    """Returns a dict holding a tensor, a tuple and an integer tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.lin = nn.Linear(8, 4)

    def forward(self, ids: torch.Tensor, scale: torch.Tensor) -> dict:
        h = self.lin(self.emb(ids).mean(1)) * scale
        return {"logits": h, "pair": (h.sum(1), h.argmax(1)), "n": 3}


def task_for(model: nn.Module, *batch: torch.Tensor) -> OptimizeTask:
    return OptimizeTask(model=model.eval(), evaluate=lambda m: 1.0, inputs=[tuple(batch)])


@pytest.fixture
def encoder_task() -> OptimizeTask:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    return task_for(layer, torch.randn(2, 6, 32))


@pytest.mark.parametrize("transform", [Bf16Autocast(BF16_CPU), Bf16Weights(BF16_CPU)])
def test_bf16_outputs_float32_and_close(encoder_task, transform):
    candidate = transform(Candidate.baseline(encoder_task), encoder_task)
    x = encoder_task.inputs[0][0]
    with torch.inference_mode():
        out, ref = candidate.model(x), encoder_task.model(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max().item() < 0.15  # bf16 keeps ~3 significant digits
    assert next(encoder_task.model.parameters()).dtype == torch.float32  # input untouched


def test_bf16_weights_really_bf16_and_structured_outputs():
    torch.manual_seed(0)
    task = task_for(MultiOut(), torch.randint(0, 10, (3, 5)), torch.tensor(2.0))
    autocast = Bf16Autocast(BF16_CPU)(Candidate.baseline(task), task)
    weights = Bf16Weights(BF16_CPU)(Candidate.baseline(task), task)
    for candidate in (autocast, weights):
        with torch.inference_mode():
            out = candidate.model(*task.inputs[0])
        assert out["logits"].dtype == torch.float32
        assert out["pair"][0].dtype == torch.float32
        assert out["pair"][1].dtype == torch.int64 and out["n"] == 3
    assert all(p.dtype == torch.float32 for p in autocast.model.parameters())  # cast per op
    assert all(p.dtype == torch.bfloat16 for p in weights.model.parameters())
    assert (autocast.name, weights.name) == ("bf16-autocast", "bf16")


def test_skips_on_a_cpu_without_bf16(encoder_task, no_bf16_cpu):
    assert not no_bf16_cpu.bf16
    for transform in (Bf16Autocast(no_bf16_cpu), Bf16Weights(no_bf16_cpu)):
        with pytest.raises(TransformSkipped, match="no native bf16"):
            transform(Candidate.baseline(encoder_task), encoder_task)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_fp16_autocast_skips_on_cpu(encoder_task):
    with pytest.raises(TransformSkipped, match="fp16 autocast with loss scaling is for CUDA"):
        Fp16Autocast()(Candidate.baseline(encoder_task), encoder_task)


def test_training_autocast_cpu_bf16_step():
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    context, scaler = training_autocast("cpu", BF16_CPU)
    assert scaler is None
    with context:
        out = model(torch.randn(4, 8))
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    loss.backward()
    assert model.weight.grad is not None and model.weight.grad.dtype == torch.float32


def test_training_autocast_falls_back_and_rejects_bad_devices(no_bf16_cpu):
    context, scaler = training_autocast("cpu", no_bf16_cpu)
    assert isinstance(context, contextlib.nullcontext) and scaler is None
    with pytest.raises(ConfigError, match="unsupported device"):
        training_autocast("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            training_autocast("cuda:0")


def test_to_float32_leaves_integers_alone():
    out = to_float32({"a": torch.ones(2, dtype=torch.bfloat16), "b": [torch.arange(3)]})
    assert out["a"].dtype == torch.float32 and out["b"][0].dtype == torch.int64
