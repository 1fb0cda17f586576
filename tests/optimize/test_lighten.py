"""Lighter architectures: depthwise-separable and grouped+shuffle convs on real torch models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from greenai.demo.digits import DigitsData
from greenai.errors import ConfigError, TransformSkipped
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.transforms.lighten import (
    NEEDS_FINETUNE,
    ChannelShuffle,
    DepthwiseSeparable,
    DepthwiseSeparableConv2d,
    GroupedShuffle,
    GroupedShuffleConv2d,
    count_macs,
    count_params,
    grouped_from_conv,
    separable_from_conv,
    shuffle_permutation,
)


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 10),
    )


def train(model: nn.Module, data: DigitsData, steps: int, lr: float = 3e-3, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(data.x_train), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def accuracy(model: nn.Module, data: DigitsData) -> float:
    with torch.no_grad():
        return float((model(data.x_test).argmax(1) == data.y_test).float().mean())


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained_cnn(digits: DigitsData) -> nn.Module:
    torch.manual_seed(0)
    model = make_cnn()
    train(model, digits, steps=200)
    assert accuracy(model, digits) > 0.9
    return model


def digits_task(model: nn.Module, data: DigitsData, with_finetune: bool = True) -> OptimizeTask:
    return OptimizeTask(
        model=model,
        evaluate=lambda m: accuracy(m, data),
        inputs=[data.x_test[:64]],
        finetune=(lambda m, steps: train(m, data, steps, seed=1)) if with_finetune else None,
        finetune_steps=100,
    )


def test_depthwise_separable_keeps_shape_cuts_params_and_macs_and_retrains(trained_cnn, digits):
    task = digits_task(trained_cnn, digits)
    reference = copy.deepcopy(trained_cnn.state_dict())
    result = DepthwiseSeparable()(Candidate.baseline(task), task)

    assert result.name == "depthwise-separable"
    # the first conv (1 input channel) is below min_channels; the other two are replaced
    assert result.extra["layers_replaced"] == 2
    assert sum(isinstance(m, DepthwiseSeparableConv2d) for m in result.model.modules()) == 2
    assert isinstance(result.model[0], nn.Conv2d)
    x = digits.x_test[:5]
    assert result.model(x).shape == trained_cnn(x).shape
    params_after = count_params(result.model)
    assert params_after == result.extra["params_after"] < result.extra["params_before"] == count_params(trained_cnn)
    macs = count_macs(result.model, task.inputs[0])
    assert macs == result.extra["macs_after"] < result.extra["macs_before"] == count_macs(trained_cnn, task.inputs[0])
    # conv2: 9*8*16 -> 9*8 + 8*16 weights; conv3: 9*16*16 -> 9*16 + 16*16 (biases kept)
    saved = (9 * 8 * 16 - (9 * 8 + 8 * 16)) + (9 * 16 * 16 - (9 * 16 + 16 * 16))
    assert result.extra["params_before"] - params_after == saved
    assert result.extra["mac_reduction"] > 0.5
    assert accuracy(result.model, digits) > 0.85
    # the input model is untouched
    assert all(torch.equal(v, trained_cnn.state_dict()[k]) for k, v in reference.items())
    assert sum(isinstance(m, DepthwiseSeparableConv2d) for m in trained_cnn.modules()) == 0


def test_separable_init_is_exact_for_a_separable_kernel_and_keeps_geometry():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=2, dilation=2)
    pointwise, depthwise = torch.randn(12, 8), torch.randn(8, 3, 3)
    with torch.no_grad():
        conv.weight.copy_(pointwise[:, :, None, None] * depthwise[None])
    pair = separable_from_conv(conv)
    assert pair.depthwise.groups == 8 and pair.depthwise.stride == (2, 2)
    assert pair.depthwise.padding == (2, 2) and pair.depthwise.dilation == (2, 2)
    assert pair.pointwise.kernel_size == (1, 1)
    x = torch.randn(2, 8, 11, 11)
    torch.testing.assert_close(pair(x), conv(x), atol=1e-4, rtol=1e-4)


def test_separable_init_beats_random_on_a_general_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(4, 8, 6, 6)
    fitted = (separable_from_conv(conv)(x) - conv(x)).pow(2).mean()
    random_pair = DepthwiseSeparableConv2d(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.Conv2d(8, 8, 1))
    assert fitted < (random_pair(x) - conv(x)).pow(2).mean()


class Block(nn.Module):
    """Not a Sequential: convs held as attributes and in a ModuleList, one shared."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(8, 8, 3, padding=1)
        self.branches = nn.ModuleList([nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 1)])
        self.again = self.stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        return self.branches[1](self.branches[0](x)) + self.again(x)


def test_replacement_walks_any_module_tree():
    torch.manual_seed(0)
    model = Block()
    steps_seen: list[int] = []
    task = OptimizeTask(
        model=model,
        evaluate=lambda m: 0.0,
        inputs=[torch.randn(2, 8, 5, 5)],
        finetune=lambda m, steps: steps_seen.append(steps),
    )
    result = DepthwiseSeparable(finetune_steps=7)(Candidate.baseline(task), task)
    assert steps_seen == [7] and result.extra["finetune_steps"] == 7
    new = result.model
    assert isinstance(new.stem, DepthwiseSeparableConv2d) and new.again is new.stem
    assert isinstance(new.branches[0], DepthwiseSeparableConv2d)
    assert isinstance(new.branches[1], nn.Conv2d)  # 1x1: nothing to factor
    assert result.extra["layers_replaced"] == 2
    assert new(task.inputs[0]).shape == model(task.inputs[0]).shape
    assert isinstance(model.stem, nn.Conv2d)


def test_channel_shuffle_permutation():
    x = torch.arange(12.0).reshape(1, 12, 1, 1)
    out = ChannelShuffle(3)(x).flatten().long()
    assert out.tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert shuffle_permutation(12, 3).tolist() == out.tolist()


def test_grouped_shuffle_mixes_channels_across_groups():
    torch.manual_seed(0)
    stacked = nn.Sequential(
        grouped_from_conv(nn.Conv2d(16, 16, 3, padding=1), 4), grouped_from_conv(nn.Conv2d(16, 16, 3, padding=1), 4)
    )
    unshuffled = nn.Sequential(stacked[0].conv, stacked[1].conv)  # grouped convs alone
    x = torch.randn(1, 16, 5, 5)
    bumped = x.clone()
    bumped[:, :4] += 1.0  # change only the inputs of group 0
    changed = ((stacked(bumped) - stacked(x)).abs().sum(dim=(0, 2, 3)) > 1e-6).tolist()
    assert all(changed)  # every output channel of the 2nd layer now depends on group 0
    isolated = ((unshuffled(bumped) - unshuffled(x)).abs().sum(dim=(0, 2, 3)) > 1e-6).tolist()
    assert isolated == [True] * 4 + [False] * 12  # without the shuffle, groups stay apart


def test_grouped_init_places_channels_where_the_next_layer_expects_them():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, padding=1)
    block = grouped_from_conv(conv, 4)
    assert block.conv.groups == 4 and block.conv.weight.shape == (12, 2, 3, 3)
    # equal to the original conv with each output channel cut to one input group
    perm = shuffle_permutation(12, 4)
    masked = copy.deepcopy(conv)
    with torch.no_grad():
        for p in range(12):
            group = int(perm[p]) // 3
            keep = torch.zeros(8, dtype=torch.bool)
            keep[group * 2 : (group + 1) * 2] = True
            masked.weight[p, ~keep] = 0.0
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), masked(x), atol=1e-5, rtol=1e-5)


def test_grouped_shuffle_transform_divides_params(trained_cnn, digits):
    task = digits_task(trained_cnn, digits)
    task.finetune_steps = 20
    result = GroupedShuffle(groups=4)(Candidate.baseline(task), task)
    assert result.name == "grouped-shuffle-4"
    assert sum(isinstance(m, GroupedShuffleConv2d) for m in result.model.modules()) == 2
    saved = (9 * 8 * 16 * 3 // 4) + (9 * 16 * 16 * 3 // 4)
    assert result.extra["params_before"] - result.extra["params_after"] == saved
    assert result.extra["macs_after"] < result.extra["macs_before"]
    assert result.model(digits.x_test[:3]).shape == (3, 10)


def test_skip_reasons(trained_cnn, digits):
    no_finetune = digits_task(trained_cnn, digits, with_finetune=False)
    with pytest.raises(TransformSkipped, match=NEEDS_FINETUNE):
        DepthwiseSeparable()(Candidate.baseline(no_finetune), no_finetune)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    task = digits_task(mlp, digits)
    with pytest.raises(TransformSkipped, match="no Conv2d qualifies"):
        DepthwiseSeparable()(Candidate.baseline(task), task)
    odd = nn.Sequential(nn.Conv2d(9, 9, 3))
    task = OptimizeTask(model=odd, evaluate=lambda m: 0.0, inputs=[torch.randn(1, 9, 4, 4)], finetune=lambda m, s: None)
    with pytest.raises(TransformSkipped, match="divisible by 4"):
        GroupedShuffle(4)(Candidate.baseline(task), task)
    with pytest.raises(ConfigError):
        GroupedShuffle(groups=1)
