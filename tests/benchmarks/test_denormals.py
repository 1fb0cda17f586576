"""denormal_share: a dead unit's Adam state underflows to denormals, as it does in real runs."""

from __future__ import annotations

import pytest
import torch

from _denormals import denormal_share  # benchmarks/_denormals.py (conftest puts benchmarks/ on sys.path)


def _dead_unit_adam(steps: int) -> torch.optim.Adam:
    """One live and one dead weight: the dead one's gradient is 1 once, then exactly 0."""
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p], lr=1e-3)
    for i in range(steps):
        p.grad = torch.tensor([1.0, 1.0 if i == 0 else 0.0])
        opt.step()
    return opt


def test_a_dead_units_first_moment_becomes_denormal_after_hundreds_of_steps() -> None:
    assert denormal_share(torch.optim.Adam([torch.nn.Parameter(torch.ones(1))])) == 0.0  # no state
    assert denormal_share(_dead_unit_adam(100)) == 0.0
    # 0.1 x 0.9^n < 1.18e-38 from n ~ 820 on, and underflows to 0 after ~ 960
    assert denormal_share(_dead_unit_adam(900)) == pytest.approx(1 / 4)  # exp_avg of the dead unit


def test_flushing_denormals_keeps_the_state_normal() -> None:
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert denormal_share(_dead_unit_adam(900)) == 0.0
    finally:
        torch.set_flush_denormal(False)


def test_tensors_denormal_share_counts_elements_of_float_tensors_only() -> None:
    from _denormals import tensors_denormal_share

    tiny32 = torch.finfo(torch.float32).tiny
    a = torch.tensor([tiny32 / 4, -tiny32 / 8, 1.0, 0.0])  # 2 of 4 denormal (sign ignored; 0 is not)
    b = torch.tensor([torch.finfo(torch.float64).tiny / 2, tiny32 / 4], dtype=torch.float64)  # 1 of 2: per dtype
    skipped = [None, torch.tensor(tiny32 / 4), torch.tensor([1, 2, 3]), "not a tensor"]
    assert tensors_denormal_share([a, b, *skipped]) == pytest.approx(3 / 6)
    assert tensors_denormal_share(skipped) == 0.0
    assert tensors_denormal_share(iter([a])) == pytest.approx(2 / 4)  # any iterable, e.g. a generator
