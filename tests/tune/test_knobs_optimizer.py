"""The optimizer-implementation knob, on real torch.optim optimizers training real models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from greenai.errors import ConfigError
from greenai.tune.knobs.base import Knob, KnobUnavailable
from greenai.tune.knobs.optimizer import IMPLEMENTATIONS, OptimizerImplKnob
from greenai.tune.objectives import Time
from greenai.tune.tuner import OnlineTuner


def model_and_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(500, 8), nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
    ids = torch.randint(0, 500, (16, 4), generator=torch.Generator().manual_seed(1))
    return model, ids, torch.randn(16, 1, generator=torch.Generator().manual_seed(2))


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    opt.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.Adam(ps, lr=1e-2),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
        lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9),
        lambda ps: torch.optim.Adagrad(ps, lr=1e-2),
    ],
    ids=["adam", "adamw", "sgd", "adagrad"],
)
def test_switching_implementation_mid_training_keeps_the_same_updates(make) -> None:
    model, x, y = model_and_batch()
    twin = copy.deepcopy(model)
    opt, twin_opt = make(model.parameters()), make(twin.parameters())
    knob = OptimizerImplKnob(opt)
    assert isinstance(knob, Knob) and knob.available() is None
    assert knob.values() == IMPLEMENTATIONS and knob.current() == "for-loop"
    for impl in ("fused", "foreach", "for-loop", "fused"):
        knob.apply(impl)
        assert knob.current() == impl
        for _ in range(5):
            train_step(model, opt, x, y)
            train_step(twin, twin_opt, x, y)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)  # the same arithmetic, reordered at most
    knob.restore()
    assert [(g["foreach"], g["fused"]) for g in opt.param_groups] == [(None, None)]
    knob.restore()  # idempotent


def test_restore_puts_back_each_groups_flags() -> None:
    model, _, _ = model_and_batch()
    opt = torch.optim.Adam(
        [{"params": model[0].parameters(), "foreach": True}, {"params": model[2].parameters()}], lr=1e-3
    )
    knob = OptimizerImplKnob(opt)
    assert knob.current() == "foreach"  # the first group's
    knob.apply("fused")
    assert all(g["fused"] and not g["foreach"] for g in opt.param_groups)
    knob.restore()
    assert [(g["foreach"], g["fused"]) for g in opt.param_groups] == [(True, None), (None, None)]


def test_an_optimizer_without_implementations_is_skipped_with_the_reason() -> None:
    model, _, _ = model_and_batch()
    knob = OptimizerImplKnob(torch.optim.RMSprop(model.parameters()))
    assert knob.values() == ("for-loop",)
    assert "RMSprop has no foreach/fused implementations" in knob.available()
    with pytest.raises(KnobUnavailable, match="RMSprop"):
        knob.apply("fused")
    with pytest.raises(ConfigError, match="needs a torch.optim optimizer"):
        OptimizerImplKnob(object())


def test_an_implementation_torch_refuses_is_left_out_with_its_reason() -> None:
    model, _, _ = model_and_batch()
    opt = torch.optim.Adam(model.parameters(), differentiable=True)
    knob = OptimizerImplKnob(opt)
    # torch refuses fused with `differentiable` when built, foreach only at the first step
    assert knob.values() == ("for-loop",)
    assert "only for-loop is available" in knob.available()
    with pytest.raises(KnobUnavailable, match="torch refuses fused.*differentiable"):
        OptimizerImplKnob(opt, values=["for-loop", "fused"]).apply("fused")
    assert opt.param_groups[0]["fused"] is None  # nothing changed
    assert OptimizerImplKnob(opt, values=["for-loop"]).available() is None  # the user's choice
    with pytest.raises(ConfigError, match="must be one of for-loop, foreach, fused \\(got 'fast'\\)"):
        OptimizerImplKnob(opt, values=["fast"])
    # complex parameters: torch's fused kernels take floating point only (checked at step())
    complex_param = nn.Parameter(torch.randn(3, dtype=torch.complex64))
    assert OptimizerImplKnob(torch.optim.Adam([complex_param])).values() == ("for-loop", "foreach")


def test_a_grad_scaler_keeps_working_across_switches() -> None:
    model, x, y = model_and_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    scaler = torch.amp.GradScaler("cpu")
    knob = OptimizerImplKnob(opt)

    def scaled_step() -> None:
        opt.zero_grad()
        scaler.scale(nn.functional.mse_loss(model(x), y)).backward()
        scaler.step(opt)  # fails if the optimizer claims fused's scaling support while not fused
        scaler.update()

    for impl in ("for-loop", "foreach", "fused", "for-loop"):
        knob.apply(impl)
        scaled_step()
    knob.restore()
    assert knob.current() == "fused" and opt._step_supports_amp_scaling
    scaled_step()


def test_groups_added_after_the_first_switch_keep_their_flags() -> None:
    model, x, y = model_and_batch()
    opt = torch.optim.Adam(model[0].parameters(), lr=1e-2)
    knob = OptimizerImplKnob(opt)
    knob.apply("fused")
    opt.add_param_group({"params": list(model[2].parameters()) + list(model[4].parameters()), "foreach": True})
    train_step(model, opt, x, y)
    knob.restore()
    assert [(g["foreach"], g["fused"]) for g in opt.param_groups] == [(None, None), (True, None)]


def test_the_tuner_profiles_every_implementation_and_keeps_the_training_exact() -> None:
    model, x, y = model_and_batch()
    twin = copy.deepcopy(model)
    opt, twin_opt = torch.optim.Adam(model.parameters(), lr=1e-2), torch.optim.Adam(twin.parameters(), lr=1e-2)
    knob = OptimizerImplKnob(opt)
    total = 300
    with OnlineTuner([knob], Time(), total_iterations=total, iterations_per_trial=5, warmup_iterations=1) as tuner:
        for _ in range(total):
            with tuner.step():
                train_step(model, opt, x, y)
            train_step(twin, twin_opt, x, y)
        assert {dict(t.setting)["optimizer_impl"] for t in tuner.trials} == set(IMPLEMENTATIONS)
        assert knob.current() == dict(tuner.chosen.setting)["optimizer_impl"]
    assert knob.current() == "for-loop"  # restored when the tuner closes
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
