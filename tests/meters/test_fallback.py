"""FallbackMeter: a primary that fails mid-run is replaced, each device's total continuing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from greenai.errors import MeterError
from greenai.hardware.cpu import CpuInfo
from greenai.meters.base import DeviceEnergy, DeviceKind, Meter, Provenance
from greenai.meters.cpu_model import CpuModelMeter
from greenai.meters.fallback import FallbackMeter
from greenai.meters.group import MeterGroup
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.faults import FailingAfter

VM = CpuInfo("AMD EPYC", hypervisor=True, logical_per_package=2, tdp_w=None)
LOGGER = "greenai.meters.fallback"


@dataclass
class Clock:
    now_s: float = 0.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class BusyTree:
    """One CPU-second per second on 2 usable CPUs: the model gives 2 x 0.74 + 2.76 = 4.24 W."""

    clock: Clock

    def cpu_seconds(self) -> float:
        return self.clock.now_s

    def usable_cpus(self) -> float:
        return 2.0


def by_device(readings: list[DeviceEnergy]) -> dict[str, DeviceEnergy]:
    return {r.device: r for r in readings}


def primary_failing_after(clock: Clock, n_reads: int) -> FailingAfter:
    """A "counter" for cpu:0 (100 W, +/-5%) and dram:0 (10 W) that breaks after n reads."""
    group = MeterGroup(
        [
            SimulatedMeter("cpu:0", DeviceKind.CPU, 100.0, clock, rel_uncertainty=0.05),
            SimulatedMeter("dram:0", DeviceKind.DRAM, 10.0, clock, rel_uncertainty=0.05),
        ]
    )
    return FailingAfter(group, n_reads)


def read_at(meter: Meter, clock: Clock, t_s: float) -> dict[str, DeviceEnergy]:
    clock.now_s = t_s
    return by_device(meter.read())


def test_switch_keeps_totals_continuous_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    meter = FallbackMeter(
        primary_failing_after(clock, 2), lambda: CpuModelMeter(BusyTree(clock), cpu_info=VM, clock=clock)
    )
    assert isinstance(meter, Meter)
    meter.start()
    read_at(meter, clock, 1.0)
    good = read_at(meter, clock, 2.0)
    assert (good["cpu:0"].energy_j, good["dram:0"].energy_j) == (200.0, 20.0)
    assert meter.info().name == "simulated+simulated"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        at_switch = read_at(meter, clock, 3.0)  # primary fails; fallback starts now
        later = read_at(meter, clock, 5.0)
        read_at(meter, clock, 6.0)
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1
    assert "simulated+simulated" in warnings[0].getMessage() and "after 2 reads" in warnings[0].getMessage()

    assert at_switch["cpu:0"].energy_j == pytest.approx(200.0)  # no jump, no drop
    cpu = later["cpu:0"]
    assert cpu.energy_j == pytest.approx(200.0 + 4.24 * 2)
    assert cpu.provenance == Provenance.ESTIMATED
    assert cpu.rel_uncertainty == pytest.approx((200.0 * 0.05 + 8.48 * 0.50) / 208.48)
    # the fallback covers only the CPU: DRAM keeps its last primary reading
    assert later["dram:0"] == good["dram:0"]


def test_info_tells_which_meter_is_active() -> None:
    clock = Clock()
    meter = FallbackMeter(
        primary_failing_after(clock, 0), lambda: CpuModelMeter(BusyTree(clock), cpu_info=VM, clock=clock)
    )
    meter.start()
    assert "falls back" in meter.info().detail
    read_at(meter, clock, 1.0)
    info = meter.info()
    assert info.name == "cpu_model (after simulated+simulated failed)"
    assert info.devices == ("cpu:0", "dram:0")
    assert info.provenance == Provenance.SIMULATED  # the weakest evidence still in the totals
    assert info.detail.startswith("active: cpu_model since simulated+simulated failed (")


def test_a_fallback_that_cannot_start_raises_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()

    def broken() -> Meter:
        raise MeterError("no estimate either")

    meter = FallbackMeter(primary_failing_after(clock, 1), broken)
    meter.start()
    assert read_at(meter, clock, 1.0)["cpu:0"].energy_j == 100.0
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for t_s in (2.0, 3.0):
            with pytest.raises(MeterError, match="after 1 reads; and its fallback could not start"):
                read_at(meter, clock, t_s)
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


def test_healthy_primary_passes_through() -> None:
    clock = Clock()
    meter = FallbackMeter(primary_failing_after(clock, 100), lambda: pytest.fail("fallback not needed"))
    meter.start()
    readings = read_at(meter, clock, 4.0)
    assert {d: r.energy_j for d, r in readings.items()} == {"cpu:0": 400.0, "dram:0": 40.0}
    assert readings["cpu:0"].provenance == Provenance.SIMULATED
    meter.close()
