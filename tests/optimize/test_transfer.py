"""Transfer learning: freezing, head replacement, the fine-tuning recipe and the digits demo
(real torch, real scikit-learn digits; the tracker runs on a simulated meter)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from greenai.config import Config
from greenai.demo.transfer_digits import DigitsSetup, digits_transfer
from greenai.errors import ConfigError
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.optimize.transforms.transfer import (
    count_params,
    find_head,
    fine_tune,
    freeze,
    replace_head,
    unfreeze,
)
from greenai.tracking.tracker import Tracker

pytestmark = pytest.mark.usefixtures("one_thread")


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


class Named(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 5), nn.Tanh())
        self.classifier = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def batches(n_batches: int = 6, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n_batches):
        x = torch.randn(size, 6, generator=g)
        out.append((x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()))
    return out


def test_freeze_counts_each_spec():
    net = small_net()
    assert freeze(net, 1) == 6 * 8 + 8  # the first child with parameters
    assert count_params(net, trainable=False) == 56
    net = small_net()
    assert freeze(net, "all-but-head") == 56 + 72
    assert count_params(net, trainable=True) == 8 * 3 + 3
    net = small_net()
    assert freeze(net, ["2.weight"]) == 64
    assert not net[2].weight.requires_grad and net[2].bias.requires_grad
    assert unfreeze(net, ["2"]) == 72 and net[2].weight.requires_grad
    assert freeze(small_net(), None) == 0


@pytest.mark.parametrize("spec", [7, -1, ["nope"], "most", True])
def test_bad_freeze_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError):
        freeze(small_net(), spec)


def test_find_and_replace_head():
    net = small_net()
    assert find_head(net) == "4"
    new = replace_head(net, 5)
    assert net[4] is new and new.in_features == 8 and new.out_features == 5
    named = Named()
    assert find_head(named) == "classifier"
    replace_head(named, 7)
    assert named(torch.zeros(2, 4)).shape == (2, 7)
    with pytest.raises(ConfigError, match="not nn.Linear"):
        replace_head(named, 3, head="body")
    with pytest.raises(ConfigError, match="no sub-module"):
        find_head(named, "missing")


def test_fine_tune_keeps_frozen_params_and_decays_lr():
    net = small_net()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    result = fine_tune(net, "4", batches(), nn.CrossEntropyLoss(), epochs=4, lr=1e-2, freeze=2, schedule="cosine")
    after = dict(net.named_parameters())
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["4.weight"], after["4.weight"])
    assert result.trainable_params == 27 and result.frozen_params == 56 + 72
    lrs = [e.lr for e in result.epochs]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 1e-2 and lrs[-1] < 1e-4
    assert result.steps == 24 and result.samples == 24 * 16
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss


@pytest.mark.parametrize("schedule", ["linear", "step"])
def test_other_schedules_decay(schedule):
    result = fine_tune(small_net(), "4", batches(), nn.CrossEntropyLoss(), epochs=3, lr=1e-2, schedule=schedule)
    lrs = [e.lr for e in result.epochs]
    assert lrs[-1] < lrs[0] < 1e-2 or (schedule == "step" and lrs[-1] < lrs[0])


def test_new_head_module_and_body_lr_groups():
    net = small_net()
    head = nn.Linear(8, 3)
    seen = []
    result = fine_tune(
        net,
        head,
        batches(),
        nn.CrossEntropyLoss(),
        epochs=2,
        lr=1e-2,
        freeze=["0"],
        body_lr=1e-4,
        optimizer="adam",
        on_epoch=lambda epoch, model: seen.append(epoch) or 0.5,
        stop_at=0.4,
    )
    assert net[4] is head
    assert seen == [0] and result.reached_target and len(result.epochs) == 1
    assert result.trainable_params == 72 + 27


def test_fine_tune_rejects_nonsense():
    with pytest.raises(ConfigError, match="nothing to fine-tune"):
        fine_tune(small_net(), "4", batches(), nn.CrossEntropyLoss(), 1, 1e-2, freeze=3)
    with pytest.raises(ConfigError, match="schedule"):
        fine_tune(small_net(), "4", batches(), nn.CrossEntropyLoss(), 1, 1e-2, schedule="exp")
    with pytest.raises(ConfigError, match="needs a head"):
        fine_tune(small_net(), None, batches(), nn.CrossEntropyLoss(), 1, 1e-2)
    with pytest.raises(ConfigError, match="epochs"):
        fine_tune(small_net(), "4", batches(), nn.CrossEntropyLoss(), 0, 1e-2)


def test_frozen_dropout_runs_in_eval_mode():
    net = nn.Sequential(nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5)), nn.Linear(8, 3))
    modes = []
    fine_tune(
        net,
        "1",
        batches(2),
        nn.CrossEntropyLoss(),
        1,
        1e-2,
        on_epoch=lambda e, m: modes.append((m[0].training, m[1].training)),
    )
    assert modes == [(False, True)]


def test_digits_transfer_beats_scratch_with_fewer_trainable_params(tmp_path: Path):
    """Pretrain on 0-4, then 5-9 with ~100 images: transfer needs no more epochs than
    scratch and trains fewer parameters; the transfer arm is charged to a tracker."""
    setup = DigitsSetup(target_accuracy=0.85, max_epochs=15)
    cfg = Config(ledger=tmp_path / "l.db", intensity="100", sample_hz=20.0).validate()
    with Tracker("transfer", config=cfg, meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0)]) as run:
        result = digits_transfer(setup, run=run)
    t, s = result.transfer, result.scratch
    assert result.pretrain_accuracy > 0.9
    assert t.epochs_to_target is not None and s.epochs_to_target is not None
    assert t.test_accuracy >= 0.85 and s.test_accuracy >= 0.85
    assert t.epochs_to_target <= s.epochs_to_target
    assert t.trainable_params < s.trainable_params == t.total_params
    counters = run.result.snapshot.counters
    assert counters["samples"] == t.samples and counters["steps"] == t.steps
    assert run.result.phase_duration_s("backward") > 0
