"""The integration tests run the frameworks for real and offline (HF_HUB_OFFLINE=1); helpers.py
has their simulated meters and ledger reading."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("RANK", raising=False)
