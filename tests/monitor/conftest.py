"""`greenai monitor` tests: the exporter runs for real (its HTTP server on a free loopback
port, its tracker, its threads) with simulated meters, and is scraped over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.monitor import Exporter


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(**kw: object) -> Config:
        base: dict[str, object] = dict(ledger=tmp_path / "ledger.db", simulate=True, flush_interval_s=0.2)
        base.update(kw)
        return Config(**base).validate()  # type: ignore[arg-type]

    return make


@pytest.fixture
def start_exporter(make_config: Callable[..., Config]) -> Iterator[Callable[..., Exporter]]:
    """Starts exporters on free loopback ports (interval 0.1 s unless given); stops them all."""
    started: list[Exporter] = []

    def start(config: Config | None = None, **kw: object) -> Exporter:
        options: dict[str, object] = dict(port=0, interval_s=0.1)
        options.update(kw)
        exporter = Exporter(config or make_config(), **options).start()  # type: ignore[arg-type]
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()
