"""The tracker API against simulated meters (deterministic power) and a real SQLite ledger."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.faults import FailingAfter
from greenai.tracking.tracker import Tracker, track
from greenai.units import J_PER_KWH


def config(tmp_path: Path, **kw) -> Config:
    base = dict(ledger=tmp_path / "ledger.db", intensity="100", sample_hz=50.0, flush_interval_s=0.2)
    base.update(kw)
    return Config(**base).validate()


def gpu(power_w: float = 200.0) -> SimulatedMeter:
    return SimulatedMeter("gpu:0", DeviceKind.GPU, power_w)


def test_context_manager_integrates_constant_power(tmp_path):
    with Tracker("const", config=config(tmp_path), meters=[gpu(200.0)]) as run:
        time.sleep(0.5)
    result = run.result
    assert result.status == "completed"
    assert result.duration_s == pytest.approx(0.5, abs=0.1)
    # simulated 200 W: energy is power x the tracked duration
    assert result.energy_j == pytest.approx(200.0 * result.duration_s, rel=0.02)
    assert result.snapshot.provenance is Provenance.SIMULATED
    assert [d.device for d in result.snapshot.devices] == ["gpu:0"]


def test_carbon_and_cost_follow_energy_pue_and_price(tmp_path):
    cfg = config(tmp_path, pue=1.5, price_per_kwh=0.30, intensity="400")
    with Tracker("carbon", config=cfg, meters=[gpu(1000.0)]) as run:
        time.sleep(0.3)
    s = run.result.snapshot
    assert s.facility_energy_j == pytest.approx(1.5 * s.energy_j, rel=1e-9)
    assert s.carbon_g == pytest.approx(s.energy_j * 1.5 / J_PER_KWH * 400, rel=1e-9)
    assert s.cost == pytest.approx(s.energy_j * 1.5 / J_PER_KWH * 0.30, rel=1e-9)
    assert run.result.cost_configured


def test_phases_apportion_energy_by_time_and_nest(tmp_path):
    with Tracker("phases", config=config(tmp_path), meters=[gpu(100.0)]) as run:
        for _ in range(2):
            with run.phase("train"):
                with run.phase("forward"):
                    time.sleep(0.15)
                time.sleep(0.05)
            with run.phase("eval"):
                time.sleep(0.1)
    r = run.result
    phases = {p.phase: p for p in r.snapshot.phases}
    assert phases["train/forward"].calls == 2
    assert phases["train"].calls == 2 and phases["eval"].calls == 2
    assert phases["train/forward"].duration_s == pytest.approx(0.30, abs=0.05)
    assert phases["eval"].duration_s == pytest.approx(0.20, abs=0.05)
    # inclusive roll-up: train = train (exclusive) + train/forward
    assert r.phase_energy_j("train") == pytest.approx(100.0 * 0.40, rel=0.15)
    assert r.phase_energy_j("eval") == pytest.approx(100.0 * 0.20, rel=0.15)
    # all energy is accounted to some phase (or "(no phase)")
    assert sum(p.energy_j for p in r.snapshot.phases) == pytest.approx(r.energy_j, rel=1e-9)


def test_counters_give_energy_per_unit(tmp_path):
    with Tracker("counters", config=config(tmp_path), meters=[gpu(50.0)]) as run:
        for _ in range(10):
            run.count("samples", 32)
        time.sleep(0.2)
    assert run.result.snapshot.counters == {"samples": 320.0}
    assert run.result.energy_per("samples") == pytest.approx(run.result.energy_j / 320)
    assert run.result.energy_per("tokens") is None


def test_explicit_start_stop_and_ledger_round_trip(tmp_path):
    tracker = Tracker("explicit", config=config(tmp_path), meters=[gpu()], tags={"team": "nlp"})
    tracker.start()
    time.sleep(0.3)
    result = tracker.stop()
    assert tracker.stop() is result  # idempotent
    with Ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get_run(result.run_id)
        samples = ledger.samples(result.run_id)
    assert record.status == "completed"
    assert record.start.tags == {"team": "nlp"}
    assert record.snapshot.energy_j == pytest.approx(result.energy_j)
    assert len(samples) >= 5  # 50 Hz for 0.3 s, minus start-up
    assert samples[-1].energy_j == pytest.approx(result.energy_j)


def test_decorator_records_one_run_per_call(tmp_path):
    cfg = config(tmp_path)

    @track("decorated", config=cfg, meters=[gpu()])
    def work(x: int) -> int:
        time.sleep(0.05)
        return x * 2

    assert work(2) == 4 and work(3) == 6
    with Ledger(tmp_path / "ledger.db") as ledger:
        runs = ledger.list_runs(name="decorated")
    assert len(runs) == 2 and all(r.status == "completed" for r in runs)


def test_meter_failing_mid_run_never_reaches_user_code(tmp_path, caplog):
    failing = FailingAfter(SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0), n_reads=3)
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("faulty", config=config(tmp_path), meters=[failing, gpu(100.0)]) as run:
            time.sleep(0.4)
    assert run.result.status == "completed"
    assert "failed" in caplog.text
    devices = {d.device: d.energy_j for d in run.result.snapshot.devices}
    assert devices["gpu:0"] == pytest.approx(100.0 * run.result.duration_s, rel=0.05)
    assert 0 < devices["cpu:0"] < 10.0 * run.result.duration_s  # frozen at the last good read


def test_user_exception_propagates_and_run_is_failed(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with Tracker("boom", config=config(tmp_path), meters=[gpu()]) as run:
            _ = 1 / 0
    assert run.result.status == "failed"
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert ledger.get_run(run.run_id).status == "failed"


def test_keyboard_interrupt_ends_run_as_interrupted(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with Tracker("ctrl-c", config=config(tmp_path), meters=[gpu()]) as run:
            raise KeyboardInterrupt
    assert run.result.status == "interrupted"


def test_ledger_is_written_while_the_run_goes(tmp_path):
    with Tracker("live", config=config(tmp_path), meters=[gpu(100.0)]) as run:
        time.sleep(0.8)  # flush interval is 0.2 s
        with Ledger(tmp_path / "ledger.db") as reader:
            live = reader.get_run(run.run_id)
            live_samples = reader.samples(run.run_id)
    assert live.status == "running"
    assert live.snapshot.energy_j > 100.0 * 0.4
    assert len(live_samples) > 10


def test_phase_names_are_validated(tmp_path):
    tracker = Tracker("names", config=config(tmp_path), meters=[gpu()], store=False)
    with pytest.raises(ValueError):
        tracker.phase("a/b")


def test_slow_devices_get_one_row_per_second_and_a_final_row(tmp_path):
    dram = SimulatedMeter("dram:0", DeviceKind.DRAM, 3.0)
    with Tracker("rows", config=config(tmp_path), meters=[gpu(100.0), dram]) as run:
        time.sleep(1.3)
    with Ledger(tmp_path / "ledger.db") as ledger:
        rows = ledger.samples(run.run_id)
    gpu_rows = [r for r in rows if r.device == "gpu:0"]
    dram_rows = [r for r in rows if r.device == "dram:0"]
    assert len(gpu_rows) >= 40  # 50 Hz
    assert 2 <= len(dram_rows) <= 4  # ~1 Hz, plus the last one at stop
    assert dram_rows[-1].energy_j == pytest.approx(run.result.device_energy_j("dram:0"))
    assert dram_rows[-1].power_w == pytest.approx(3.0, rel=0.05)
