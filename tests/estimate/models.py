"""A small zoo of real, diverse models for op counting and for calibration benchmarks.

``ZOO[name](batch_size) -> (model, example_input)``. Each model is small enough that one
training step (forward, backward, Adam) takes roughly 5-50 ms on a 2-core CPU at
batch size 16 (0.04-0.9 GFLOP per step), yet each exercises a different op mix:

- mlp: 256-512-512-10 MLP, ReLU (matmul)
- cnn: 3x32x32 CNN, 3 convs, batch norm, max pool (conv)
- mobilenet: MobileNet-style depthwise-separable blocks, ReLU6 (depthwise conv)
- transformer: tokens -> nn.TransformerEncoder, d_model 128, 1 layer, seq 64
  (matmul, softmax, layer norm)
- lstm: tokens -> nn.LSTM(64, 128) -> last step -> linear (recurrent)
- embedding: nn.EmbeddingBag(20_000, 32, mean) -> small MLP (embedding, optimizer)
- gru: float sequences (seq 16) -> 2-layer nn.GRU(32, 64) (small matmuls, elementwise)
- audio1d: 0.5 s of 8 kHz raw audio -> 1D conv stack, group norm, GELU (conv)
- resnet: wide ResNet-style basic blocks on 3x16x16 (conv, batch norm, residual add)

Inputs come from a fixed-seed generator, so a builder called twice gives equal inputs.
Weights use torch's default initialization (the global RNG).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["ZOO"]


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _tokens(batch: int, seq: int, vocab: int) -> Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=_gen())


def _images(batch: int, channels: int, size: int) -> Tensor:
    return torch.randn(batch, channels, size, size, generator=_gen())


class MLP(nn.Module):
    def __init__(self, d_in: int = 256, hidden: int = 512, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class CNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(3, 16), nn.MaxPool2d(2), _conv_bn(16, 32), nn.MaxPool2d(2), _conv_bn(32, 64)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class DepthwiseSeparable(nn.Module):
    """MobileNet v1 block: 3x3 depthwise conv, then 1x1 pointwise conv, each BN + ReLU6."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU6()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn1(self.depthwise(x)))
        return self.act(self.bn2(self.pointwise(x)))


class MobileNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        self.blocks = nn.Sequential(
            DepthwiseSeparable(32, 64, 1),
            DepthwiseSeparable(64, 128, 2),
            DepthwiseSeparable(128, 128, 1),
            DepthwiseSeparable(128, 256, 2),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class TransformerClassifier(nn.Module):
    def __init__(self, vocab: int = 1000, d_model: int = 128, heads: int = 4, layers: int = 1, seq: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(1, seq, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 2)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        return self.head(self.encoder(x).mean(dim=1))


class LSTMClassifier(nn.Module):
    def __init__(self, vocab: int = 1000, d_embed: int = 64, hidden: int = 128, classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_embed)
        self.lstm = nn.LSTM(d_embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens: Tensor) -> Tensor:
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


class EmbeddingModel(nn.Module):
    """Recommendation-style: a big sparse table, a small dense tower."""

    def __init__(self, vocab: int = 20_000, dim: int = 32) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.tower = nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, ids: Tensor) -> Tensor:
        return self.tower(self.bag(ids))


class GRURegressor(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


class Audio1D(nn.Module):
    """Keyword-spotting style 1D conv net on raw audio (M5-like)."""

    def __init__(self, classes: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out, k, s in ((1, 32, 40, 8), (32, 32, 3, 1), (32, 64, 3, 1), (64, 64, 3, 1)):
            layers += [nn.Conv1d(c_in, c_out, k, s), nn.GroupNorm(4, c_out), nn.GELU(), nn.MaxPool1d(4 if k > 3 else 2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(64, classes)

    def forward(self, wave: Tensor) -> Tensor:
        return self.head(self.features(wave).mean(dim=-1))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class WideResNet(nn.Module):
    def __init__(self, width: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer2(self.layer1(self.stem(x))))


ZOO: dict[str, Callable[[int], tuple[nn.Module, Tensor]]] = {
    "mlp": lambda b: (MLP(), torch.randn(b, 256, generator=_gen())),
    "cnn": lambda b: (CNN(), _images(b, 3, 32)),
    "mobilenet": lambda b: (MobileNet(), _images(b, 3, 32)),
    "transformer": lambda b: (TransformerClassifier(), _tokens(b, 64, 1000)),
    "lstm": lambda b: (LSTMClassifier(), _tokens(b, 32, 1000)),
    "embedding": lambda b: (EmbeddingModel(), _tokens(b, 20, 20_000)),
    "gru": lambda b: (GRURegressor(), torch.randn(b, 16, 32, generator=_gen())),
    "audio1d": lambda b: (Audio1D(), torch.randn(b, 1, 4000, generator=_gen())),
    "resnet": lambda b: (WideResNet(), _images(b, 3, 16)),
}
