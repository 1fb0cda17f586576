"""Fixtures shared by the optimization tests."""

from __future__ import annotations

import pytest

from greenai.demo.digits import DigitsData, load_digits_data


@pytest.fixture(scope="module")
def digits() -> DigitsData:
    return load_digits_data(seed=0)
