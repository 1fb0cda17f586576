"""Memory of a tracked process stays bounded however long the run: with store=False no
sample rows are kept at all; rows waiting for an unwritable ledger are thinned; undrained
phase boundaries are capped."""

from __future__ import annotations

import time

import pytest

from greenai.ledger.records import SampleRow
from greenai.meters.base import DeviceKind, Provenance
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.accumulator import thin_rows
from greenai.tracking.phases import PhaseTimeline
from greenai.tracking.tracker import Tracker


def test_store_false_keeps_no_samples_at_1000_hz(make_config):
    meters = [SimulatedMeter(f"gpu:{i}", DeviceKind.GPU, 100.0) for i in range(4)]
    with Tracker("no-store", config=make_config(sample_hz=1000.0), meters=meters, store=False) as run:
        pending = []
        for _ in range(6):
            time.sleep(0.5)
            pending.append(run._sampler.pending_rows())
            run.count("steps")
    # before: every tick's rows were kept for a ledger that never came (+17 MB/min at 1000 Hz)
    assert pending == [0] * 6
    assert run.result.energy_j == pytest.approx(400.0 * run.result.duration_s, rel=0.05)
    assert run.result.stored is None


def rows_of(devices: int, n: int, power_w: float = 100.0, dt: float = 0.001) -> list[SampleRow]:
    return [
        SampleRow(i * dt, f"gpu:{d}", DeviceKind.GPU, power_w, power_w * i * dt, Provenance.SIMULATED)
        for i in range(1, n + 1)
        for d in range(devices)
    ]


def test_unwritten_rows_are_thinned_keeping_each_devices_series_and_total():
    rows = rows_of(devices=3, n=20_000)
    thinned = thin_rows(rows, 5_000)
    assert len(thinned) <= 5_000
    for d in range(3):
        mine = [r for r in thinned if r.device == f"gpu:{d}"]
        assert mine[0].t == pytest.approx(0.001) and mine[-1].t == pytest.approx(20.0)
        assert mine[-1].energy_j == pytest.approx(100.0 * 20.0)  # the exact total is kept
        assert all(r.power_w == pytest.approx(100.0) for r in mine)  # recomputed over the gaps
        assert [r.t for r in mine] == sorted(r.t for r in mine)


def test_undrained_phase_events_are_capped():
    timeline = PhaseTimeline(max_events=1000)
    for _ in range(10_000):
        timeline.enter("step")
        timeline.exit()
    events = timeline.drain_until(10**30)
    assert len(events) == 1000
    assert events[-1][1] is None  # the newest kept
