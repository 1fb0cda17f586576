"""Builders of ledger records for the tests, and the worker run by spawned processes.

Kept in a plain module (not conftest) so `multiprocessing` spawn children and
`python -c` children can import it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from greenai.ledger.records import (
    DeviceTotal,
    PhaseTotal,
    RunSnapshot,
    RunStart,
    RunStatus,
    SampleRow,
)
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance


def raw(path: Path) -> sqlite3.Connection:
    """A plain SQLite connection, to look at the file as any other tool would."""
    return sqlite3.connect(path, isolation_level=None)


def make_start(
    run_id: str | None = None,
    name: str = "train",
    started_at: float | None = None,
    host: str | None = None,
    pid: int | None = None,
) -> RunStart:
    return RunStart(
        run_id=run_id or uuid.uuid4().hex,
        name=name,
        started_at=time.time() if started_at is None else started_at,
        host=socket.gethostname() if host is None else host,
        pid=os.getpid() if pid is None else pid,
        tags={"model": "resnet18", "team": "vision"},
        environment={"cpu": "Xeon 8375C", "gpus": ["A100"], "meters": {"rapl": True}, "hz": 10.5},
    )


def make_snapshot(energy_j: float = 120.5, **overrides: Any) -> RunSnapshot:
    fields: dict[str, Any] = dict(
        duration_s=12.25,
        energy_j=energy_j,
        rel_uncertainty=0.075,
        provenance=Provenance.INTEGRATED,
        facility_energy_j=energy_j * 1.2,
        carbon_g=energy_j / 3_600_000 * 56.0,
        cost=energy_j / 3_600_000 * 0.25,
        currency="EUR",
        devices=(
            DeviceTotal("cpu:0", DeviceKind.CPU, energy_j * 0.25, Provenance.MEASURED, 0.02),
            DeviceTotal("gpu:0", DeviceKind.GPU, energy_j * 0.75, Provenance.INTEGRATED, 0.1),
        ),
        phases=(
            PhaseTotal("train/forward", "gpu:0", energy_j * 0.5, 6.0, 40),
            PhaseTotal("train/backward", "gpu:0", energy_j * 0.25, 4.5, 40),
        ),
        counters={"samples": 1280.0, "tokens": 65536.0},
        carbon_source="country FRA 56.0 g/kWh (Ember 2022)",
        pue=1.2,
    )
    fields.update(overrides)
    return RunSnapshot(**fields)


def make_samples(t0: float, n: int, energy0: float = 0.0, device: str = "gpu:0") -> list[SampleRow]:
    """`n` samples 0.1 s apart, 150 W each, energy cumulative from `energy0`."""
    return [
        SampleRow(
            t=t0 + 0.1 * i,
            device=device,
            kind=DeviceKind.GPU,
            power_w=150.0 + i,
            energy_j=energy0 + 15.0 * (i + 1),
            provenance=Provenance.INTEGRATED,
        )
        for i in range(n)
    ]


def flush_many(path: str, run_id: str, flushes: int, per_flush: int, barrier: Any = None) -> None:
    """Track one run into the ledger at `path` as the tracker would (spawn worker)."""
    if barrier is not None:
        barrier.wait()  # all workers open a fresh ledger at the same moment
    with Ledger(Path(path)) as ledger:
        start = make_start(run_id=run_id, name=f"worker-{os.getpid()}")
        ledger.begin_run(start)
        energy = 0.0
        for k in range(flushes):
            samples = make_samples(start.started_at + k, per_flush, energy)
            energy = samples[-1].energy_j
            ledger.flush(run_id, make_snapshot(energy), samples)
        ledger.end_run(run_id, RunStatus.COMPLETED, time.time(), make_snapshot(energy))
