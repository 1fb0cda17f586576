"""Dynamic int8 with per-layer float fallback, on a model with one deliberately sensitive layer."""

from __future__ import annotations

import torch
from tests.optimize.test_quantize import sensitive_task
from torch import nn

from greenai.optimize.candidate import Candidate
from greenai.optimize.plans import parse_pipeline
from greenai.optimize.transforms.int8.dynamic import DynamicInt8
from greenai.optimize.transforms.int8.dynamic_fallback import DynamicInt8Fallback


def test_the_harmful_layer_stays_float_and_quality_is_within_the_bound() -> None:
    task = sensitive_task()
    reference = task.evaluate(task.model)
    plain = DynamicInt8()(Candidate.baseline(task), task)
    assert reference - task.evaluate(plain.model) > 0.01  # plain dynamic int8 does hurt here
    candidate = DynamicInt8Fallback(max_quality_drop=0.01)(Candidate.baseline(task), task)
    assert candidate.extra["float_layers"] == ["a"]
    assert type(candidate.model.a) is nn.Linear  # stayed float
    assert candidate.model.b.weight().dtype == torch.qint8
    assert reference - task.evaluate(candidate.model) <= 0.01
    assert "1 layer(s) kept float" in candidate.notes[-1]
    assert type(task.model.a) is nn.Linear and type(task.model.b) is nn.Linear  # input untouched


def test_a_bound_it_cannot_meet_is_said_plainly() -> None:
    task = sensitive_task()
    candidate = DynamicInt8Fallback(max_quality_drop=0.0, max_float_layers=0)(Candidate.baseline(task), task)
    assert candidate.extra["float_layers"] == []
    assert "still" in candidate.notes[-1] and "below the float model" in candidate.notes[-1]


def test_it_is_reachable_by_name() -> None:
    (transform,) = parse_pipeline("int8-dynamic=fallback")
    assert transform.name == "int8-dynamic-fallback"
