"""Which operators start a Python-level call: nn.GRU's per-step operators are issued from C++
inside one call; operators written one by one in Python each start one."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from greenai.estimation.counting import count_ops
from greenai.estimation.ops import Pass


def _forward(counts):
    return [r for r in counts.records if r.pass_ is Pass.FORWARD]


@pytest.mark.parametrize("training", [False, True])
def test_ops_issued_inside_an_rnn_call_are_not_python_calls(training):
    gru = nn.GRU(8, 16, num_layers=2, batch_first=True)
    counts = count_ops(gru, torch.randn(3, 5, 8), training=training)

    forward = _forward(counts)
    assert len(forward) > 50  # per time step and layer: matmuls, gates, activations
    # one call to _VF.gru, and the initial hidden state (torch.zeros) made in Python
    assert sum(r.python_call for r in forward) <= 3
    assert not any(r.python_call for r in counts.records if r.pass_ is Pass.BACKWARD)
    assert sys.getprofile() is None  # the profile hook is removed


class _Pythonic(nn.Module):
    """Operators written one by one, some as operator syntax (no Python-level call event)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        y = y + 1
        for _ in range(3):
            y = torch.tanh(y)
        return torch.relu(y).sum()


def test_ops_written_in_python_each_start_a_call():
    counts = count_ops(_Pythonic(), torch.randn(4, 4))
    assert [r.op.split(".")[1] for r in counts.records] == ["mul", "add", "tanh", "tanh", "tanh", "relu", "sum"]
    assert all(r.python_call for r in counts.records)


def test_linear_in_training_is_one_python_call():
    """F.linear decomposes (under autograd) into a transpose view and addmm: one call."""
    counts = count_ops(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), torch.randn(2, 8), training=True)
    assert [(r.op, r.python_call) for r in _forward(counts)][:2] == [
        ("aten.addmm.default", True),
        ("aten.relu.default", True),
    ]
    assert all(r.python_call for r in counts.records if r.pass_ is Pass.OPTIMIZER)
