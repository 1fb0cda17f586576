"""per_layer and by_class: aggregation of op records."""

from __future__ import annotations

import pytest

from greenai.estimate.counting import EstimateError
from greenai.estimate.layers import LayerRow, by_class, per_layer, truncate_module
from greenai.estimate.ops import OpClass, OpCounts, OpRecord, Pass


def rec(module: str, pass_: Pass, flops: float, read: float = 10, written: float = 5,
        op_class: OpClass = OpClass.MATMUL, dtype: str = "float32") -> OpRecord:
    return OpRecord("aten.mm.default", op_class, dtype, flops, read, written, module, pass_)


COUNTS = OpCounts(
    records=(
        rec("encoder.layers.0.attn", Pass.FORWARD, 100),
        rec("encoder.layers.0.ff", Pass.FORWARD, 200, op_class=OpClass.ELEMENTWISE),
        rec("encoder.layers.1.attn", Pass.FORWARD, 300),
        rec("head", Pass.FORWARD, 7, dtype="bfloat16"),
        rec("", Pass.FORWARD, 1, op_class=OpClass.REDUCTION),
        rec("head", Pass.BACKWARD, 14, dtype="bfloat16"),
        rec("encoder.layers.1.attn", Pass.BACKWARD, 600),
        rec("encoder.layers.0.attn", Pass.OPTIMIZER, 13, op_class=OpClass.ELEMENTWISE),
    ),
    parameters=1,
    parameter_bytes=4,
    activation_bytes=0,
    batch_size=1,
)


def test_per_layer_full_paths_in_pass_then_appearance_order():
    rows = per_layer(COUNTS)
    assert [(r.module, r.pass_, r.flops) for r in rows] == [
        ("encoder.layers.0.attn", Pass.FORWARD, 100),
        ("encoder.layers.0.ff", Pass.FORWARD, 200),
        ("encoder.layers.1.attn", Pass.FORWARD, 300),
        ("head", Pass.FORWARD, 7),
        ("", Pass.FORWARD, 1),
        ("head", Pass.BACKWARD, 14),
        ("encoder.layers.1.attn", Pass.BACKWARD, 600),
        ("encoder.layers.0.attn", Pass.OPTIMIZER, 13),
    ]
    assert rows[0] == LayerRow("encoder.layers.0.attn", Pass.FORWARD, 100, 10, 5, 1)
    assert rows[0].bytes_moved == 15


def test_per_layer_truncated_to_a_depth_sums_children():
    rows = per_layer(COUNTS, depth=3)
    assert [(r.module, r.pass_, r.flops, r.calls) for r in rows] == [
        ("encoder.layers.0", Pass.FORWARD, 300, 2),
        ("encoder.layers.1", Pass.FORWARD, 300, 1),
        ("head", Pass.FORWARD, 7, 1),
        ("", Pass.FORWARD, 1, 1),
        ("head", Pass.BACKWARD, 14, 1),
        ("encoder.layers.1", Pass.BACKWARD, 600, 1),
        ("encoder.layers.0", Pass.OPTIMIZER, 13, 1),
    ]
    assert per_layer(COUNTS, depth=3)[0].bytes_read == 20

    whole = per_layer(COUNTS, depth=0)
    assert [(r.module, r.pass_, r.flops, r.calls) for r in whole] == [
        ("", Pass.FORWARD, 608, 5),
        ("", Pass.BACKWARD, 614, 2),
        ("", Pass.OPTIMIZER, 13, 1),
    ]
    assert sum(r.flops for r in whole) == COUNTS.flops


def test_truncate_module():
    assert truncate_module("a.b.c", 2) == "a.b"
    assert truncate_module("a.b.c", 5) == "a.b.c"
    assert truncate_module("a.b.c", None) == "a.b.c"
    assert truncate_module("a.b.c", 0) == ""
    assert truncate_module("", 1) == ""
    with pytest.raises(EstimateError, match="depth"):
        per_layer(COUNTS, depth=-1)


def test_by_class_sums_flops_bytes_and_calls_per_class_and_dtype():
    assert by_class(COUNTS) == {
        (OpClass.MATMUL, "float32"): (1000, 45, 3),
        (OpClass.ELEMENTWISE, "float32"): (213, 30, 2),
        (OpClass.MATMUL, "bfloat16"): (21, 30, 2),
        (OpClass.REDUCTION, "float32"): (1, 15, 1),
    }
    assert by_class(OpCounts((), 0, 0, 0, 0)) == {}


def test_per_layer_on_a_counted_model():
    torch = pytest.importorskip("torch")
    from torch import nn

    from greenai.estimate.counting import count_ops

    model = nn.Sequential(nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Linear(16, 2))
    counts = count_ops(model, torch.randn(4, 8), training=True, optimizer="sgd")

    rows = {(r.module, r.pass_): r for r in per_layer(counts, depth=1)}
    assert rows[("0", Pass.FORWARD)].flops == 2 * 4 * 8 * 16 + 4 * 16  # addmm + relu
    assert rows[("1", Pass.FORWARD)].flops == 2 * 4 * 16 * 2
    assert rows[("1", Pass.BACKWARD)].flops == 2 * 2 * 4 * 16 * 2 + 4 * 2  # dX, dW, db
    assert rows[("0", Pass.OPTIMIZER)].flops == 4 * (8 * 16 + 16)  # SGD with momentum
    assert sum(r.flops for r in rows.values()) == counts.flops
    classes = by_class(counts)
    assert classes[(OpClass.MATMUL, "float32")][0] == sum(
        r.flops for r in counts.records if r.op_class is OpClass.MATMUL
    )
