"""Shared fixtures: every test gets its own ledger and no user config leaks in."""

from __future__ import annotations

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
