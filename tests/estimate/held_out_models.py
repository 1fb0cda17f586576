"""Models kept aside from the estimator's zoo (models.py), to judge it on models it was not
shaped on (issue 17, section 2). Nothing in calibration, op counting or prediction was chosen by
looking at these models' errors before they were measured; a change to the estimator is judged
on them (benchmarks/estimate_accuracy.py --set held-out, benchmarks/replay_profiles.py).

``HELD_OUT[name](batch_size) -> (model, example_input)``, in the zoo's form, and
``REGIMES[name]``: the regime each stands for, where the zoo's estimate was worst:

- large dense (parameters far beyond the caches, trained with Adam):
  - wide_mlp: 1024-4096-4096-16 MLP, GELU, 21 M parameters (one 64 MiB weight)
  - deep_mlp: 512 -> 8 x 1536 -> 16 MLP, SiLU, 17 M parameters in 9.4 MiB weights
- embedding-dominated (one large table):
  - embed_table: nn.Embedding(400_000, 40) (64 MiB), mean over 16 tokens, small tower
  - embed_bag: nn.EmbeddingBag(250_000, 64, mode="sum") (64 MiB), 24 ids a bag, small tower
- grouped convolutions:
  - resnext: ResNeXt-style bottleneck blocks (3x3 convolutions of 32 groups) on 3x32x32
  - grouped_cnn: a plain stack of 3x3 convolutions of 4 and 8 groups, batch norm, on 3x24x24
- small attention encoders (nn.TransformerEncoderLayer: the fused fast path in inference):
  - tiny_encoder: d_model 64, 4 heads, 2 layers, seq 32
  - encoder256: d_model 256, 8 heads, 1 layer, seq 48, GELU, norm first

Inputs come from a fixed-seed generator; weights use torch's default initialization (the global
RNG), as in models.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["HELD_OUT", "REGIMES"]

LARGE_DENSE, EMBEDDING, GROUPED_CONV, ATTENTION = "large dense", "embedding table", "grouped conv", "attention encoder"


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(1)


class WideMLP(nn.Module):
    def __init__(self, d_in: int = 1024, hidden: int = 4096, out: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class DeepMLP(nn.Module):
    def __init__(self, d_in: int = 512, hidden: int = 1536, depth: int = 8, out: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(d_in, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class EmbedTable(nn.Module):
    """A large lookup table, averaged over a sequence, and a small tower (a dense gradient over
    the whole table, and Adam over all of it, every step)."""

    def __init__(self, vocab: int = 400_000, dim: int = 40) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab, dim)
        self.tower = nn.Sequential(nn.Linear(dim, 64), nn.Tanh(), nn.Linear(64, 1))

    def forward(self, ids: Tensor) -> Tensor:
        return self.tower(self.table(ids).mean(dim=1))


class EmbedBag(nn.Module):
    def __init__(self, vocab: int = 250_000, dim: int = 64) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="sum")
        self.tower = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, ids: Tensor) -> Tensor:
        return self.tower(self.bag(ids))


class Bottleneck(nn.Module):
    """ResNeXt block: 1x1 reduce, 3x3 grouped (cardinality 32), 1x1 expand, residual."""

    def __init__(self, c: int, width: int, groups: int = 32, stride: int = 1) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.grouped = nn.Sequential(
            nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.expand = nn.Sequential(nn.Conv2d(width, c, 1, bias=False), nn.BatchNorm2d(c))
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.expand(self.grouped(self.reduce(x))) + self.pool(x))


class ResNeXt(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.blocks = nn.Sequential(Bottleneck(64, 128), Bottleneck(64, 128, stride=2), Bottleneck(64, 256))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class GroupedCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        for c_in, c_out, groups, stride in ((32, 64, 4, 1), (64, 64, 8, 2), (64, 128, 4, 1), (128, 128, 8, 2)):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride, 1, groups=groups, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class Encoder(nn.Module):
    def __init__(
        self,
        vocab: int,
        d_model: int,
        heads: int,
        ff: int,
        layers: int,
        seq: int,
        activation: str = "relu",
        norm_first: bool = False,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(1, seq, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 3)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        return self.head(self.encoder(x)[:, 0])


def _ids(batch: int, seq: int, vocab: int) -> Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=_gen())


HELD_OUT: dict[str, Callable[[int], tuple[nn.Module, Tensor]]] = {
    "wide_mlp": lambda b: (WideMLP(), torch.randn(b, 1024, generator=_gen())),
    "deep_mlp": lambda b: (DeepMLP(), torch.randn(b, 512, generator=_gen())),
    "embed_table": lambda b: (EmbedTable(), _ids(b, 16, 400_000)),
    "embed_bag": lambda b: (EmbedBag(), _ids(b, 24, 250_000)),
    "resnext": lambda b: (ResNeXt(), torch.randn(b, 3, 32, 32, generator=_gen())),
    "grouped_cnn": lambda b: (GroupedCNN(), torch.randn(b, 3, 24, 24, generator=_gen())),
    "tiny_encoder": lambda b: (Encoder(500, 64, 4, 128, 2, 32), _ids(b, 32, 500)),
    "encoder256": lambda b: (Encoder(2000, 256, 8, 512, 1, 48, "gelu", True), _ids(b, 48, 2000)),
}

REGIMES: dict[str, str] = {
    "wide_mlp": LARGE_DENSE,
    "deep_mlp": LARGE_DENSE,
    "embed_table": EMBEDDING,
    "embed_bag": EMBEDDING,
    "resnext": GROUPED_CONV,
    "grouped_cnn": GROUPED_CONV,
    "tiny_encoder": ATTENTION,
    "encoder256": ATTENTION,
}
