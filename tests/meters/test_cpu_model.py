"""The CPU power model: exact arithmetic with an injected clock and CPU-time counter."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from greenai.errors import ConfigError, MeterError
from greenai.hardware.cpu import CpuInfo
from greenai.meters.base import DeviceKind, Meter, Provenance
from greenai.meters.cpu_model import VCPU_IDLE_W, VCPU_MAX_W, CpuModelMeter
from greenai.meters.process import ProcessScope

VM = CpuInfo("AMD EPYC", hypervisor=True, logical_per_package=2, tdp_w=None)
XEON = CpuInfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", False, 64, 300.0)


@dataclass
class FakeUsage:
    """CPU seconds and usable CPUs set by the test (the two numbers the model reads)."""

    cpu_s: float = 0.0
    usable: float = 2.0

    def cpu_seconds(self) -> float:
        return self.cpu_s

    def usable_cpus(self) -> float:
        return self.usable


@dataclass
class Clock:
    now_s: float = 0.0

    def __call__(self) -> float:
        return self.now_s


def energy_after(meter: CpuModelMeter, usage: FakeUsage, clock: Clock, cpu_s: float, dt_s: float) -> float:
    usage.cpu_s += cpu_s
    clock.now_s += dt_s
    (reading,) = meter.read()
    return reading.energy_j


def test_defaults_two_vcpus_one_cpu_second_per_second() -> None:
    usage, clock = FakeUsage(usable=2.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    meter.start()
    assert energy_after(meter, usage, clock, 1.0, 1.0) == pytest.approx(2 * 0.74 + (3.5 - 0.74) * 1.0, abs=1e-12)


def test_a_two_vcpu_vm_at_full_use_draws_7_w_never_a_socket_tdp() -> None:
    usage, clock = FakeUsage(usable=2.0), Clock()
    vm_with_known_cpu = CpuInfo(XEON.model_name, hypervisor=True, logical_per_package=2, tdp_w=300.0)
    meter = CpuModelMeter(usage, cpu_info=vm_with_known_cpu, clock=clock)
    meter.start()
    assert energy_after(meter, usage, clock, 20.0, 10.0) == pytest.approx(70.0)
    # more CPU time than the share allows (a miscounted interval) is capped at the share
    assert energy_after(meter, usage, clock, 50.0, 10.0) == pytest.approx(140.0)


def test_idle_share_is_charged_when_the_tree_sleeps() -> None:
    usage, clock = FakeUsage(usable=4.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    meter.start()
    assert energy_after(meter, usage, clock, 0.0, 10.0) == pytest.approx(4 * VCPU_IDLE_W * 10)


def test_bare_metal_uses_tdp_per_logical_cpu() -> None:
    usage, clock = FakeUsage(usable=4.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=XEON, clock=clock)
    meter.start()
    max_per_cpu = 300.0 / 64
    idle_per_cpu = max_per_cpu * VCPU_IDLE_W / VCPU_MAX_W
    expected = (4 * idle_per_cpu + (max_per_cpu - idle_per_cpu) * 2.0) * 5.0
    assert energy_after(meter, usage, clock, 10.0, 5.0) == pytest.approx(expected)
    (reading,) = meter.read()
    assert (reading.device, reading.kind) == ("cpu:0", DeviceKind.CPU)
    assert reading.provenance == Provenance.ESTIMATED
    assert reading.rel_uncertainty == 0.40


def test_intervals_integrate_piecewise() -> None:
    usage, clock = FakeUsage(usable=2.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    meter.start()
    idle_j = energy_after(meter, usage, clock, 0.0, 2.0)
    total_j = energy_after(meter, usage, clock, 2.0, 1.0)
    assert idle_j == pytest.approx(2 * 0.74 * 2.0)
    assert total_j == pytest.approx(idle_j + 7.0)
    clock_unchanged = energy_after(meter, usage, clock, 0.0, 0.0)
    assert clock_unchanged == total_j


def test_user_override_is_for_the_whole_usable_share() -> None:
    usage, clock = FakeUsage(usable=4.0), Clock()
    meter = CpuModelMeter(usage, idle_w=10.0, max_w=50.0, cpu_info=VM, clock=clock)
    meter.start()
    assert energy_after(meter, usage, clock, 2.0, 1.0) == pytest.approx(10.0 + 40.0 * 0.5)
    # 8 CPU-seconds seen in 1 s on 4 CPUs: 6 fit in what the two seconds allowed (2 x 4 - 2)
    assert energy_after(meter, usage, clock, 8.0, 1.0) == pytest.approx(30.0 + 10.0 + 40.0 * 6 / 4)
    assert meter.read()[0].rel_uncertainty == 0.40


def test_cpu_time_reported_late_is_charged_when_seen_within_the_runs_capacity() -> None:
    """Two children busy for 0.6 s each, seen only when their parent reaps them (folded into
    its counters at once): their 1.2 CPU-seconds are all charged, though 0.1 s of wall time
    could hold only 0.2 of them."""
    usage, clock = FakeUsage(usable=2.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    meter.start()
    for _ in range(7):
        energy_after(meter, usage, clock, 0.0, 0.1)
    total = energy_after(meter, usage, clock, 1.2, 0.1)
    assert total == pytest.approx(2 * 0.74 * 0.8 + (3.5 - 0.74) * 1.2)


def test_cpu_time_beyond_the_runs_capacity_is_carried_to_later_intervals() -> None:
    usage, clock = FakeUsage(usable=2.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    meter.start()
    first = energy_after(meter, usage, clock, 3.0, 1.0)  # 3 CPU-s in 1 s on 2 CPUs: 2 charged
    assert first == pytest.approx(2 * 0.74 + (3.5 - 0.74) * 2.0)
    second = energy_after(meter, usage, clock, 0.0, 1.0)  # the carried 1 CPU-s follows
    assert second - first == pytest.approx(2 * 0.74 + (3.5 - 0.74) * 1.0)
    third = energy_after(meter, usage, clock, 0.0, 1.0)  # nothing left: idle
    assert third - second == pytest.approx(2 * 0.74)


def test_headroom_lasts_one_window_so_a_long_idle_spell_does_not_absorb_a_miscount() -> None:
    usage, clock = FakeUsage(usable=2.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    meter.start()
    idle = energy_after(meter, usage, clock, 0.0, 60.0)
    # 30 CPU-seconds reported after a minute idle: at most a window's unused capacity (2 x 5 s
    # + this second's 2) is charged now, and what a whole window could not hold is dropped
    burst = energy_after(meter, usage, clock, 30.0, 1.0)
    assert burst - idle == pytest.approx(2 * 0.74 + (3.5 - 0.74) * 10.0)
    after = energy_after(meter, usage, clock, 0.0, 1.0)
    assert after - burst == pytest.approx(2 * 0.74 + (3.5 - 0.74) * 2.0)  # carried, within the share


@pytest.mark.parametrize(("idle_w", "max_w"), [(10.0, None), (None, 50.0), (60.0, 50.0), (-1.0, 5.0)])
def test_bad_overrides_are_config_errors(idle_w: float | None, max_w: float | None) -> None:
    with pytest.raises(ConfigError):
        CpuModelMeter(FakeUsage(), idle_w=idle_w, max_w=max_w, cpu_info=VM)


def test_defaults_are_labelled_and_less_certain() -> None:
    usage, clock = FakeUsage(usable=2.0), Clock()
    meter = CpuModelMeter(usage, cpu_info=VM, clock=clock)
    assert isinstance(meter, Meter)
    with pytest.raises(MeterError):
        meter.read()
    meter.start()
    (reading,) = meter.read()
    assert reading.rel_uncertainty == 0.50
    info = meter.info()
    assert (info.name, info.devices, info.provenance) == ("cpu_model", ("cpu:0",), Provenance.ESTIMATED)
    assert "'AMD EPYC'" in info.detail and "hypervisor" in info.detail
    assert "2 usable CPUs" in info.detail and "1.48-7.00 W" in info.detail


def test_tdp_detail_names_the_source() -> None:
    detail = CpuModelMeter(FakeUsage(usable=4.0), cpu_info=XEON).info().detail
    assert "TDP 300 W / 64 logical CPUs" in detail and "4 usable CPUs" in detail


def test_real_process_energy_lies_between_idle_and_full_power() -> None:
    scope = ProcessScope(os.getpid())
    meter = CpuModelMeter(scope, cpu_info=VM)
    t0 = time.monotonic()
    meter.start()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    (reading,) = meter.read()
    dt_s = time.monotonic() - t0
    usable = scope.usable_cpus()
    assert usable * VCPU_IDLE_W * dt_s * 0.99 < reading.energy_j <= usable * VCPU_MAX_W * dt_s
    # one busy thread: at least the dynamic power of ~one CPU for 0.3 s above idle
    assert reading.energy_j > usable * VCPU_IDLE_W * dt_s + (VCPU_MAX_W - VCPU_IDLE_W) * 0.25
