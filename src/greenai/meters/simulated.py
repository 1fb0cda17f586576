"""Simulated meters: deterministic power traces, integrated exactly, labelled `simulated`.

For tests and `--simulate` (a demo or CI machine without counters). The energy at time t
after `start()` is the integral of the trace from 0 to t, so it depends only on t:
- a constant P: P x t;
- a sequence of powers: a step trace holding each value for `step_s`, repeating;
- a `Sinusoid`: mean + amplitude x sin(2 pi t / period), integrated in closed form;
- any other callable P(t): Simpson's rule on a fixed 10 ms grid (exact up to cubics).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from greenai.config import MeterName
from greenai.errors import ConfigError, MeterError
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance

DEFAULT_SIMULATION = "gpu:0=250:50:20,cpu:0=65"  # device=mean_w[:amplitude_w[:period_s]]
DEFAULT_PERIOD_S = 60.0
GRID_S = 0.01


@runtime_checkable
class Trace(Protocol):
    def energy_j(self, t_s: float) -> float:
        """Integral of the power from 0 to t_s, in joules."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Constant:
    power_w: float

    def energy_j(self, t_s: float) -> float:
        return self.power_w * t_s

    def describe(self) -> str:
        return f"constant {self.power_w:g} W"


@dataclass(frozen=True)
class Sinusoid:
    mean_w: float
    amplitude_w: float
    period_s: float

    def __call__(self, t_s: float) -> float:
        return self.mean_w + self.amplitude_w * math.sin(2 * math.pi * t_s / self.period_s)

    def energy_j(self, t_s: float) -> float:
        omega = 2 * math.pi / self.period_s
        return self.mean_w * t_s + self.amplitude_w * (1 - math.cos(omega * t_s)) / omega

    def describe(self) -> str:
        return f"{self.mean_w:g} W +/- {self.amplitude_w:g} W sinusoid, period {self.period_s:g} s"


class Steps:
    """Each power held for `step_s`, the sequence repeating."""

    def __init__(self, powers_w: Sequence[float], step_s: float) -> None:
        if not powers_w or step_s <= 0:
            raise ConfigError("a step trace needs at least one power and step_s > 0")
        self._powers = list(powers_w)
        self._step_s = step_s
        self._before = [0.0, *itertools.accumulate(p * step_s for p in self._powers)]
        self.peak_w = max(self._powers)

    def energy_j(self, t_s: float) -> float:
        cycle_s = self._step_s * len(self._powers)
        cycles, rest_s = divmod(t_s, cycle_s)
        k = min(int(rest_s // self._step_s), len(self._powers) - 1)
        within_j = self._powers[k] * (rest_s - k * self._step_s)
        return cycles * self._before[-1] + self._before[k] + within_j

    def describe(self) -> str:
        return f"{len(self._powers)}-step trace, {self._step_s:g} s per step, repeating"


class Sampled:
    """Any P(t), integrated by Simpson's rule on a fixed grid, so the result depends only on
    t, not on when it was read. The sum up to the last grid point reached is kept."""

    def __init__(self, power_w: Callable[[float], float]) -> None:
        self._power_w = power_w
        self._cells = 0  # grid cells summed so far
        self._summed_j = 0.0

    def energy_j(self, t_s: float) -> float:
        n = int(t_s // GRID_S)
        if n < self._cells:  # time went back: start over
            self._cells, self._summed_j = 0, 0.0
        while self._cells < n:
            k = self._cells
            self._summed_j += self._simpson(k * GRID_S, (k + 1) * GRID_S)
            self._cells += 1
        return self._summed_j + self._simpson(n * GRID_S, t_s)

    def _simpson(self, a: float, b: float) -> float:
        p = self._power_w
        return (b - a) / 6 * (p(a) + 4 * p((a + b) / 2) + p(b))

    def describe(self) -> str:
        return f"callable power trace {getattr(self._power_w, '__name__', '')}".rstrip()


def as_trace(power_w: float | Callable[[float], float] | Sequence[float], step_s: float) -> Trace:
    if isinstance(power_w, (int, float)):
        return Constant(float(power_w))
    if isinstance(power_w, Trace):
        return power_w
    if callable(power_w):
        return Sampled(power_w)
    return Steps(power_w, step_s)


class SimulatedMeter:
    """One device following a deterministic power trace."""

    def __init__(
        self,
        device: str,
        kind: DeviceKind,
        power_w: float | Callable[[float], float] | Sequence[float],
        clock: Callable[[], float] = time.monotonic,
        rel_uncertainty: float = 0.0,
        step_s: float = 1.0,
    ) -> None:
        self._device, self._kind = device, kind
        self._trace = as_trace(power_w, step_s)
        self._clock = clock
        self._rel = rel_uncertainty
        self._t0: float | None = None

    def info(self) -> MeterInfo:
        detail = f"{self._device}: {self._trace.describe()}"
        return MeterInfo(MeterName.SIMULATED, (self._device,), Provenance.SIMULATED, detail)

    def start(self) -> None:
        self._t0 = self._clock()

    def read(self) -> list[DeviceEnergy]:
        if self._t0 is None:
            raise MeterError(f"simulated {self._device}: read() before start()")
        energy_j = self._trace.energy_j(self._clock() - self._t0)
        return [DeviceEnergy(self._device, self._kind, energy_j, Provenance.SIMULATED, self._rel)]

    def close(self) -> None:
        self._t0 = None

    def max_power(self) -> dict[str, tuple[float, str]]:
        """The trace's highest power, where it is known in closed form."""
        trace = self._trace
        if isinstance(trace, Constant):
            peak = trace.power_w
        elif isinstance(trace, Sinusoid):
            peak = trace.mean_w + abs(trace.amplitude_w)
        elif isinstance(trace, Steps):
            peak = trace.peak_w
        else:
            return {}
        return {self._device: (peak, "simulated trace maximum")}


def make_simulated_meters(
    spec: str = DEFAULT_SIMULATION, clock: Callable[[], float] = time.monotonic
) -> list[SimulatedMeter]:
    """Meters from "device=mean_w[:amplitude_w[:period_s]],...", e.g. the default
    "gpu:0=250:50:20,cpu:0=65": a GPU at 250 W +/- 50 W over 20 s and a CPU at 65 W.
    The device kind is the id's prefix (gpu, cpu, dram, disk, network)."""
    meters = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        device, _, numbers = item.partition("=")
        try:
            kind = DeviceKind(device.split(":")[0])
            values = [float(x) for x in numbers.split(":")]
        except ValueError as e:
            raise ConfigError(f"bad simulated meter {item!r}: want device=watts[:amp[:period_s]]") from e
        if len(values) > 3:
            raise ConfigError(f"bad simulated meter {item!r}: at most watts:amplitude:period_s")
        power: float | Sinusoid = values[0]
        if len(values) > 1:
            period_s = values[2] if len(values) == 3 else DEFAULT_PERIOD_S
            power = Sinusoid(values[0], values[1], period_s)
        meters.append(SimulatedMeter(device, kind, power, clock))
    if not meters:
        raise ConfigError(f"no simulated meters in {spec!r}")
    return meters
