"""The training loops the integration benchmarks time against each other (integrations_overhead.py,
instrument_mechanisms.py): plain, and with the README's phases and counts written by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Loop = Callable[[int], None]  # runs n training steps


def training_loops(run: Any, model: Any, optimizer: Any, batches: list[Any]) -> tuple[Loop, Loop]:
    """Two loops of `n` training steps over `batches` (cross-entropy): plain, and the same
    with the README's three phases and two counts written by hand."""
    from torch import nn

    loss_fn = nn.CrossEntropyLoss()

    def plain(n: int) -> None:
        for i in range(n):
            xb, yb = batches[i % len(batches)]
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    def manual(n: int) -> None:
        for i in range(n):
            xb, yb = batches[i % len(batches)]
            with run.phase("forward"):
                loss = loss_fn(model(xb), yb)
            with run.phase("backward"):
                loss.backward()
            with run.phase("optimizer_step"):
                optimizer.step()
                optimizer.zero_grad()
            run.count("samples", len(xb))
            run.count("steps")

    return plain, manual
