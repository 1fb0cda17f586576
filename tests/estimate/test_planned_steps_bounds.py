"""The steps of a whole-run estimate are finite and bounded (issue 16, item 13: `greenai
estimate --epochs inf` was an internal OverflowError)."""

from __future__ import annotations

import math

import pytest

from greenai.errors import EstimateError
from greenai.estimation.api import MAX_STEPS, planned_steps


@pytest.mark.parametrize(
    ("steps", "epochs", "dataset_size", "message"),
    [
        (None, math.inf, 10, "epochs must be a finite number, got inf"),
        (None, math.nan, 10, "epochs must be a finite number, got nan"),
        (None, 1e300, 10**9, "steps, more than 1e+15"),
        (None, 1e20, 32, "1e+20 epochs of 32 samples in batches of 32 are 1e+20 steps"),
        (10**32, None, None, "steps must be >= 0 and <= 1e+15"),
        (-1, None, None, "steps must be >= 0"),
    ],
)
def test_absurd_run_lengths_are_estimate_errors(
    steps: int | None, epochs: float | None, dataset_size: int | None, message: str
) -> None:
    with pytest.raises(EstimateError, match=message.replace("+", r"\+")):
        planned_steps(steps, epochs, dataset_size, 32)


def test_the_largest_run_is_accepted() -> None:
    assert planned_steps(MAX_STEPS, None, None, 32) == MAX_STEPS
    assert planned_steps(None, 2.5, 100, 32) == math.ceil(2.5 * 4)
