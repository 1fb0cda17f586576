"""Ledgers the dashboard is tested on: the reports' world (runs made by the tracker with simulated
meters, a SIGKILLed run, a run named <script>alert(1)</script>, a study and a batch; see
tests/report/world.py), and a ledger of many small runs for the list's filters and paging."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.report.world import world  # noqa: F401  (the fixture: built once for this package)

from greenai.ledger.records import DeviceTotal, RunSnapshot, RunStart, RunStatus, SampleRow
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance

DAY = 86_400.0
T0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC


@dataclass(frozen=True)
class Many:
    ledger: Path
    ids: list[str]  # in the order made: run i started at T0 + i hours


def snapshot(energy_j: float, device: str = "gpu:0") -> RunSnapshot:
    return RunSnapshot(
        duration_s=60.0,
        energy_j=energy_j,
        rel_uncertainty=0.05,
        provenance=Provenance.SIMULATED,
        facility_energy_j=energy_j,
        carbon_g=energy_j / 3.6e6 * 100,
        cost=0.0,
        currency="EUR",
        devices=(DeviceTotal(device, DeviceKind.GPU, energy_j, Provenance.SIMULATED, 0.05),),
    )


def add_run(
    store: Ledger,
    name: str,
    started_at: float,
    energy_j: float,
    host: str = "node-a",
    tags: dict[str, str] | None = None,
    status: str = RunStatus.COMPLETED,
    samples: int = 3,
    pid: int = 1,
    run_id: str | None = None,
) -> str:
    run_id = run_id or uuid.uuid4().hex
    store.begin_run(RunStart(run_id, name, started_at, host, pid, tags or {}, {"config": {"intensity": "100"}}))
    rows = [
        SampleRow(
            started_at + i + 1,
            "gpu:0",
            DeviceKind.GPU,
            energy_j / samples,
            energy_j * (i + 1) / samples,
            Provenance.SIMULATED,
        )
        for i in range(samples)
    ]
    store.flush(run_id, snapshot(energy_j), rows)
    if status != RunStatus.RUNNING:
        store.end_run(run_id, status, started_at + 60.0, snapshot(energy_j))
    return run_id


@pytest.fixture(scope="package")
def many(tmp_path_factory: pytest.TempPathFactory) -> Many:
    """120 runs: names train-0..train-59 and eval-0..eval-59 alternating, one an hour from
    2025-01-01, energy 10 J x (i + 1), hosts node-a/node-b, every third tagged model=cnn (the
    others model=mlp), every fifth failed."""
    ledger = tmp_path_factory.mktemp("many") / "ledger.db"
    ids = []
    with Ledger(ledger) as store:
        for i in range(120):
            ids.append(
                add_run(
                    store,
                    f"{'train' if i % 2 == 0 else 'eval'}-{i // 2}",
                    T0 + i * 3600.0,
                    10.0 * (i + 1),
                    host="node-a" if i % 2 == 0 else "node-b",
                    tags={"model": "cnn" if i % 3 == 0 else "mlp", "seq": str(i)},
                    status=RunStatus.FAILED if i % 5 == 4 else RunStatus.COMPLETED,
                )
            )
    return Many(ledger, ids)
