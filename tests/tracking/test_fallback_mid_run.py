"""A hardware counter that fails mid-run is replaced by an estimate; training goes on."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from greenai.config import Config
from greenai.meters.base import Provenance
from greenai.meters.discover import discover
from greenai.meters.fallback import FallbackMeter
from greenai.meters.process import ProcessScope
from greenai.testing.fake_powercap import FakePowercap
from greenai.testing.faults import FailingAfter
from greenai.tracking.tracker import Tracker


def burn_power(powercap: FakePowercap, zone: str, watts: float, stop: threading.Event) -> None:
    """Advance a fake package counter as a CPU drawing `watts` would."""
    while not stop.wait(0.01):
        powercap.add_energy(zone, watts * 0.01)


def test_discovery_prefers_rapl_and_wraps_it_in_a_fallback(tmp_path):
    fake = FakePowercap(tmp_path / "powercap")
    fake.add_package(0)
    found = discover(Config(rapl_root=tmp_path / "powercap").validate(), ProcessScope(os.getpid()))
    names = [m.info().name for m in found.meters]
    assert names[0] == "rapl" and isinstance(found.meters[0], FallbackMeter)
    assert "dram_model" not in names  # RAPL has a dram zone here
    assert set(found.meters[0].info().devices) == {"cpu:0", "dram:0"}
    for meter in found.meters:
        meter.close()


def test_rapl_failure_mid_run_falls_back_to_estimate(tmp_path, caplog):
    fake = FakePowercap(tmp_path / "powercap")
    zone = fake.add_package(0, subzones=())
    cfg = Config(
        ledger=tmp_path / "l.db", rapl_root=tmp_path / "powercap", sample_hz=50.0, flush_interval_s=0.2, intensity="100"
    ).validate()
    found = discover(cfg, ProcessScope(os.getpid()))
    rapl_with_fallback = found.meters[0]
    assert isinstance(rapl_with_fallback, FallbackMeter)
    # inject the fault at the meter boundary: the counter fails on its 10th read
    failing = FailingAfter(rapl_with_fallback._primary, n_reads=10)
    flaky = FallbackMeter(failing, rapl_with_fallback._make_fallback)
    stop = threading.Event()
    burner = threading.Thread(target=burn_power, args=(fake, zone, 40.0, stop), daemon=True)
    burner.start()
    try:
        with caplog.at_level(logging.WARNING, logger="greenai"):
            with Tracker("flaky", config=cfg, meters=[flaky]) as run:
                # the user's loop keeps running until the counter has failed and the estimate
                # has run a while (a busy CI machine may sample slower than 50 Hz)
                deadline = time.monotonic() + 60.0
                switched_at = None
                while time.monotonic() < deadline:
                    sum(range(1000))
                    if switched_at is None and failing.reads >= 10:
                        switched_at = time.monotonic()
                    if switched_at is not None and time.monotonic() - switched_at > 0.5:
                        break
    finally:
        stop.set()
        burner.join()
    result = run.result
    assert result.status == "completed"
    assert "continuing with a fallback estimate" in caplog.text
    cpu = next(d for d in result.snapshot.devices if d.device == "cpu:0")
    assert cpu.provenance is Provenance.ESTIMATED  # the total is only as strong as its weakest part
    assert result.snapshot.provenance is Provenance.ESTIMATED
    # the power series shows the switch: measured rows, then estimated ones, and the
    # cumulative energy carries on from the last measured value instead of restarting
    from greenai.ledger.store import Ledger

    with Ledger(tmp_path / "l.db") as ledger:
        rows = [r for r in ledger.samples(run.run_id) if r.device == "cpu:0"]
    kinds = [r.provenance for r in rows]
    switch = kinds.index(Provenance.ESTIMATED)
    assert switch > 0 and set(kinds[:switch]) == {Provenance.MEASURED}
    assert set(kinds[switch:]) == {Provenance.ESTIMATED}
    energies = [r.energy_j for r in rows]
    assert energies == sorted(energies) and energies[switch - 1] > 0
    assert cpu.energy_j == pytest.approx(energies[-1])
