"""Helpers of the integration tests: deterministic simulated meters, a ledger in tmp, and the
run read back from it."""

from __future__ import annotations

from pathlib import Path

from greenai.config import Config
from greenai.ledger.records import RunRecord
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.units import J_PER_KWH


def sim_config(tmp_path: Path, **kw: object) -> Config:
    settings: dict[str, object] = dict(
        ledger=tmp_path / "ledger.db", intensity="500", sample_hz=100.0, flush_interval_s=0.1
    )
    settings.update(kw)
    return Config(**settings).validate()  # type: ignore[arg-type]


def cpu(power_w: float = 100.0) -> SimulatedMeter:
    return SimulatedMeter("cpu:0", DeviceKind.CPU, power_w)


def joules(j: float) -> float:
    """A budget's energy_kwh for `j` joules."""
    return j / J_PER_KWH


def stored(tmp_path: Path, run_id: str) -> RunRecord:
    with Ledger(tmp_path / "ledger.db") as ledger:
        return ledger.get_run(run_id)


def stored_runs(tmp_path: Path) -> list[RunRecord]:
    with Ledger(tmp_path / "ledger.db") as ledger:
        return ledger.list_runs()


def calls(record: RunRecord, path: str) -> int:
    """How often the phase at `path` was entered (each device's row repeats it)."""
    return max((p.calls for p in record.snapshot.phases if p.phase == path), default=0)


def paths(record: RunRecord) -> set[str]:
    return {p.phase for p in record.snapshot.phases}
