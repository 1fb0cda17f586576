"""Simulated meters integrate their traces exactly; FailingAfter breaks a meter on cue."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from greenai.errors import ConfigError, MeterError
from greenai.meters.base import DeviceKind, Meter, Provenance
from greenai.meters.simulated import SimulatedMeter, Sinusoid, make_simulated_meters
from greenai.testing.faults import FailingAfter


@dataclass
class Clock:
    now_s: float = 100.0  # not zero: energy counts from start(), not from the clock's origin

    def __call__(self) -> float:
        return self.now_s


def energy_at(meter: SimulatedMeter, clock: Clock, t_s: float) -> float:
    clock.now_s = 100.0 + t_s
    (reading,) = meter.read()
    return reading.energy_j


def started(
    power_w: float | Callable[[float], float] | Sequence[float],
    clock: Clock,
    rel_uncertainty: float = 0.0,
    step_s: float = 1.0,
) -> SimulatedMeter:
    meter = SimulatedMeter("gpu:0", DeviceKind.GPU, power_w, clock, rel_uncertainty, step_s)
    meter.start()
    return meter


def test_constant_power() -> None:
    clock = Clock()
    meter = started(65.0, clock, rel_uncertainty=0.1)
    assert isinstance(meter, Meter)
    assert energy_at(meter, clock, 2.5) == 162.5
    (reading,) = meter.read()
    assert (reading.device, reading.kind) == ("gpu:0", DeviceKind.GPU)
    assert reading.provenance == Provenance.SIMULATED
    assert reading.rel_uncertainty == 0.1


def test_step_trace_holds_each_value_and_repeats() -> None:
    clock = Clock()
    meter = started([100.0, 200.0, 300.0], clock, step_s=1.0)
    assert energy_at(meter, clock, 0.5) == pytest.approx(50.0)
    assert energy_at(meter, clock, 1.5) == pytest.approx(100.0 + 100.0)
    assert energy_at(meter, clock, 3.0) == pytest.approx(600.0)
    assert energy_at(meter, clock, 4.5) == pytest.approx(600.0 + 100.0 + 100.0)


def test_sinusoid_integrates_in_closed_form() -> None:
    clock = Clock()
    meter = started(Sinusoid(250.0, 50.0, 20.0), clock)
    assert energy_at(meter, clock, 5.0) == pytest.approx(250.0 * 5 + 50.0 * 20 / (2 * math.pi))
    assert energy_at(meter, clock, 20.0) == pytest.approx(250.0 * 20)


def test_callable_trace_is_exact_for_polynomials_and_independent_of_read_times() -> None:
    clock_a, clock_b = Clock(), Clock()
    ramp = started(lambda t: 2.0 * t, clock_a)  # E(t) = t^2
    assert energy_at(ramp, clock_a, 3.005) == pytest.approx(3.005**2, abs=1e-9)
    often = started(lambda t: 3.0 * t * t, clock_b)  # E(t) = t^3
    for k in range(1, 50):
        energy_at(often, clock_b, k * 0.0137)
    assert energy_at(often, clock_b, 1.234) == pytest.approx(1.234**3, abs=1e-9)


def test_make_simulated_meters_default_gpu_and_cpu() -> None:
    clock = Clock()
    meters = make_simulated_meters(clock=clock)
    assert [m.info().devices for m in meters] == [("gpu:0",), ("cpu:0",)]
    for meter in meters:
        meter.start()
    clock.now_s += 20.0  # one full period of the GPU's sinusoid
    gpu, cpu = (r for m in meters for r in m.read())
    assert (gpu.kind, cpu.kind) == (DeviceKind.GPU, DeviceKind.CPU)
    assert gpu.energy_j == pytest.approx(250.0 * 20)  # the sinusoid integrates to its mean
    assert cpu.energy_j == pytest.approx(65.0 * 20)
    assert "sinusoid" in meters[0].info().detail and "constant 65 W" in meters[1].info().detail


def test_make_simulated_meters_custom_spec() -> None:
    clock = Clock()
    (meter,) = make_simulated_meters("dram:0=3:1", clock)  # default 60 s period
    meter.start()
    clock.now_s += 60.0
    assert meter.read()[0].energy_j == pytest.approx(180.0)


@pytest.mark.parametrize("spec", ["", "fpga:0=10", "gpu:0=abc", "gpu:0=1:2:3:4", "gpu:0"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        make_simulated_meters(spec)


def test_read_before_start_is_a_meter_error() -> None:
    with pytest.raises(MeterError):
        SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0, Clock()).read()


def test_failing_after_n_reads() -> None:
    clock = Clock()
    meter = FailingAfter(started(10.0, clock), n_reads=2)
    assert energy_values(meter, clock) == [10.0, 20.0]
    for _ in range(2):
        with pytest.raises(MeterError, match="after 2 reads"):
            meter.read()


def energy_values(meter: FailingAfter, clock: Clock) -> list[float]:
    values = []
    for _ in range(2):
        clock.now_s += 1.0
        values.append(meter.read()[0].energy_j)
    return values
