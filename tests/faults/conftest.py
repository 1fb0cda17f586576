"""Fault injection: meters that misbehave, forks, threads, a locked or full ledger, kills.

Faults are injected at the hardware boundary only (greenai.testing.faults wraps simulated
meters); the tracker, its sampler and the SQLite ledger are the real ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from greenai.config import Config


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(**kw: object) -> Config:
        base: dict[str, object] = dict(
            ledger=tmp_path / "ledger.db", intensity="100", sample_hz=50.0, flush_interval_s=0.2
        )
        base.update(kw)
        return Config(**base).validate()  # type: ignore[arg-type]

    return make
