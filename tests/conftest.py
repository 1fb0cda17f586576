"""Shared fixtures: every test gets its own ledger and no user config leaks in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point the default ledger into tmp and drop the caller's GREENAI_* settings."""
    import os

    for key in list(os.environ):
        if key.startswith("GREENAI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GREENAI_LEDGER", str(tmp_path / "default-ledger.db"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: one intra-op thread is faster than two
    contended ones. Restores the previous setting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
