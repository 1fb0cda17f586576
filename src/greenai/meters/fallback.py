"""A meter that degrades to a fallback when its primary fails mid-run (DESIGN.md principle 4).

On the first failure of the primary's `read()` (any exception, or a result that is not a list
of usable readings: NaN, inf, negative or absurd energy, a wrong type), one warning is logged, the fallback is
built and started, and readings continue from where the primary left off: each device's
cumulative energy is the primary's last good value plus the fallback's energy since the
switch, so totals never jump or run back. Readings after the switch carry the fallback's
provenance (the weaker evidence now in the total) and an uncertainty that weights each
part's band by its energy (the linear sum of absolute bands, as the accumulator combines
devices). Devices the fallback does not cover keep their last primary reading. The energy
between the last good read and the failure (one sampling interval) is not charged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from greenai.errors import MeterError
from greenai.meters.base import DeviceEnergy, MaxPower, Meter, MeterInfo, max_power_of, reading_problem

_LOG = logging.getLogger(__name__)


def continued(before: DeviceEnergy, after: DeviceEnergy) -> DeviceEnergy:
    """`after` (energy since the switch) continued from `before` (the total at the switch)."""
    energy_j = before.energy_j + after.energy_j
    band_j = before.energy_j * before.rel_uncertainty + after.energy_j * after.rel_uncertainty
    rel = band_j / energy_j if energy_j > 0 else after.rel_uncertainty
    return DeviceEnergy(after.device, after.kind, energy_j, after.provenance, rel)


class FallbackMeter:
    """`primary` until it fails, then `make_fallback()`, continuing each device's total."""

    def __init__(
        self,
        primary: Meter,
        make_fallback: Callable[[], Meter],
        log: logging.Logger = _LOG,
    ) -> None:
        self._primary = primary
        self._make_fallback = make_fallback
        self._log = log
        self._fallback: Meter | None = None
        self._at_switch: dict[str, DeviceEnergy] = {}  # last good primary reading per device
        self._failure: str | None = None
        self._primary_info = primary.info()  # for after the switch, when the primary is closed

    def info(self) -> MeterInfo:
        if self._fallback is None:
            primary = self._primary.info()
            return MeterInfo(
                primary.name,
                primary.devices,
                primary.provenance,
                f"{primary.detail}; active: {primary.name}, falls back to an estimate on failure",
            )
        primary, fallback = self._primary_info, self._fallback.info()
        weakest = max(primary.provenance, fallback.provenance, key=lambda p: p.rank)
        return MeterInfo(
            f"{fallback.name} (after {primary.name} failed)",
            tuple(dict.fromkeys((*primary.devices, *fallback.devices))),
            weakest,
            f"active: {fallback.name} since {primary.name} failed ({self._failure}); {fallback.detail}",
        )

    def start(self) -> None:
        self._primary.start()

    def read(self) -> list[DeviceEnergy]:
        fallback = self._fallback
        if fallback is None:
            try:
                readings = self._primary.read()
                problem = _problem(readings)
                if problem is not None:
                    raise MeterError(f"unusable reading: {problem}")
            except Exception as e:  # a counter fails in many ways (MeterError, OSError, garbage)
                fallback = self._switch(e)
            else:
                self._at_switch.update((r.device, r) for r in readings)
                return readings
        merged = dict(self._at_switch)
        for reading in fallback.read():
            before = self._at_switch.get(reading.device)
            merged[reading.device] = reading if before is None else continued(before, reading)
        return list(merged.values())

    def max_power(self) -> MaxPower:
        return max_power_of(self._primary if self._fallback is None else self._fallback)

    def close(self) -> None:
        if self._fallback is None:
            self._primary.close()
        else:
            self._fallback.close()

    def _switch(self, error: Exception) -> Meter:
        if self._failure is None:  # warn once, even if starting the fallback fails repeatedly
            self._failure = str(error)
            self._log.warning(
                "meter %r failed (%s); continuing with a fallback estimate",
                self._primary_info.name,
                error,
            )
        try:
            fallback = self._make_fallback()
            fallback.start()
        except MeterError as e:
            raise MeterError(f"{self._failure}; and its fallback could not start: {e}") from e
        with contextlib.suppress(Exception):
            self._primary.close()
        self._fallback = fallback
        return fallback


def _problem(readings: object) -> str | None:
    if not isinstance(readings, (list, tuple)):
        return f"read() returned a {type(readings).__name__}, not a list"
    return next((p for p in map(reading_problem, readings) if p is not None), None)
