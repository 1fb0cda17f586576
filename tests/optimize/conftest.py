"""Fixtures shared by the optimization tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from greenai.demo.digits import DigitsData, load_digits_data


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: one intra-op thread is faster than two
    contended ones. Restores the previous setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> DigitsData:
    return load_digits_data(seed=0)
