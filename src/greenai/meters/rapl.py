"""CPU package and DRAM energy from Linux powercap RAPL counters (`/sys/class/powercap`).

Each zone exposes `energy_uj`, a counter in microjoules that wraps to zero after
`max_energy_range_uj`. Intel (`intel-rapl:N`, `intel-rapl-mmio:N`) and AMD (which recent
kernels expose as `intel-rapl:N` too) share this layout; any top-level `*rapl*:N` zone
with a `name` file is considered. Package zones (`package-N`) give `cpu:N`; their `dram`
subzone gives `dram:N`. `core`/`uncore` subzones lie inside the package and `psys` spans
the platform, so they are skipped to avoid double counting.

Accuracy: package energy tracks wall-plug measurements within a few percent, DRAM less
well on some platforms (Khan et al., "RAPL in Action: Experiences in Using RAPL for Power
Measurements", ACM TOMPECS 3(2), 2018). Hence ±5% for packages and ±10% for DRAM.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from greenai.config import MeterName
from greenai.errors import MeterError
from greenai.hardware.sysfs import POWERCAP_ROOT
from greenai.meters.base import DeviceEnergy, DeviceKind, MeterInfo, Provenance, Unavailable
from greenai.units import MICROJOULES_PER_J, microjoules_to_joules, microwatts_to_watts

DEFAULT_MAX_POWER_W = 500.0  # generous bound for a zone without constraint_*_max_power_uw
_REL_UNCERTAINTY = {DeviceKind.CPU: 0.05, DeviceKind.DRAM: 0.10}
_TOP_ZONE = re.compile(r"(?P<prefix>[\w-]*rapl[\w-]*):(?P<n>\d+)")
_PACKAGE = re.compile(r"package-(\d+)")
_WHY_IGNORED = {"core": "inside package", "uncore": "inside package", "psys": "platform"}


def counter_delta_uj(prev_uj: int, cur_uj: int, range_uj: int) -> int:
    """Counter advance modulo its range: exact when the counter wrapped at most once."""
    return (cur_uj - prev_uj) % range_uj


def wraps_between(delta_uj: int, range_uj: int, elapsed_s: float, mean_power_w: float) -> int:
    """Full wraps hidden in an interval whose counter moved `delta_uj` (modulo the range).

    The counter alone cannot tell 1 wrap from 3, so we pick the k for which
    `delta_uj + k * range_uj` is nearest to the energy the zone's mean power predicts
    (`elapsed_s * mean_power_w`; RaplMeter uses the mean since `start()` over intervals
    too short to hide a wrap). This is right when the gap's true energy is within half a
    range of that prediction; a larger burst or lull is misjudged by whole ranges.
    Callers use it only when `elapsed_s * max power` could exceed the range.
    """
    expected_uj = elapsed_s * mean_power_w * MICROJOULES_PER_J
    return max(0, round((expected_uj - delta_uj) / range_uj))


@dataclass(slots=True)
class _Zone:
    """One counter and its running totals since `start()`."""

    device: str
    kind: DeviceKind
    path: Path  # the zone's energy_uj
    range_uj: int
    max_power_w: float  # the highest constraint's max (a bound on how fast the counter can wrap)
    fd: int
    rated: tuple[float, str] | None = None  # the max for utilization ratios and its source
    last_uj: int = 0
    last_t: float = 0.0
    total_uj: int = 0
    clear_uj: int = 0  # energy over intervals too short to hide a wrap ...
    clear_s: float = 0.0  # ... and their duration: the mean power used by wraps_between

    def reset(self, cur_uj: int, now: float) -> None:
        self.last_uj, self.last_t = cur_uj, now
        self.total_uj, self.clear_uj, self.clear_s = 0, 0, 0.0

    def advance(self, cur_uj: int, now: float) -> None:
        elapsed_s = now - self.last_t
        delta_uj = counter_delta_uj(self.last_uj, cur_uj, self.range_uj)
        if elapsed_s * self.max_power_w * MICROJOULES_PER_J < self.range_uj:
            self.clear_uj += delta_uj
            self.clear_s += elapsed_s
        elif self.clear_s > 0:
            mean_power_w = microjoules_to_joules(self.clear_uj) / self.clear_s
            delta_uj += self.range_uj * wraps_between(delta_uj, self.range_uj, elapsed_s, mean_power_w)
        self.total_uj += delta_uj
        self.last_uj, self.last_t = cur_uj, now


class RaplMeter:
    """Measured energy of every CPU package and its DRAM from powercap RAPL zones.

    Read often (the sampler's 10 Hz is plenty): one wrap is always handled from the counter
    alone; several wraps in one gap are estimated by `wraps_between`, and a gap that could
    hide wraps before any short interval has been seen since `start()` counts none.
    """

    def __init__(self, root: Path = POWERCAP_ROOT, clock: Callable[[], float] = time.monotonic):
        self._root = root
        self._clock = clock
        found, self._ignored = _find_zones(root)
        self._zones: list[_Zone] = []
        try:
            for device, kind, zone_dir in found:
                path = zone_dir / "energy_uj"
                range_uj, (max_power_w, rated) = _range_uj(zone_dir), _max_powers(zone_dir)
                zone = _Zone(device, kind, path, range_uj, max_power_w, _open(path), rated)
                self._zones.append(zone)
                _read_uj(zone.fd, path)  # fail now, not in the sampler, if it cannot be read
        except MeterError:
            self.close()
            raise
        self._started = False

    def info(self) -> MeterInfo:
        zones = ", ".join(f"{z.device}={z.path.parent.name}" for z in self._zones)
        ignored = f"; ignored: {', '.join(self._ignored)}" if self._ignored else ""
        return MeterInfo(
            name=MeterName.RAPL,
            devices=tuple(z.device for z in self._zones),
            provenance=Provenance.MEASURED,
            detail=f"powercap RAPL under {self._root}: {zones}{ignored}",
        )

    def start(self) -> None:
        now = self._clock()
        for zone in self._zones:
            zone.reset(_read_uj(zone.fd, zone.path), now)
        self._started = True

    def read(self) -> list[DeviceEnergy]:
        if not self._started:
            raise MeterError("RaplMeter.read() called before start()")
        now = self._clock()
        readings = []
        for zone in self._zones:
            zone.advance(_read_uj(zone.fd, zone.path), now)
            readings.append(
                DeviceEnergy(
                    device=zone.device,
                    kind=zone.kind,
                    energy_j=microjoules_to_joules(zone.total_uj),
                    provenance=Provenance.MEASURED,
                    rel_uncertainty=_REL_UNCERTAINTY[zone.kind],
                )
            )
        return readings

    def max_power(self) -> dict[str, tuple[float, str]]:
        """Each zone's maximum for utilization ratios, where the kernel gives one: its long-term
        constraint's (`constraint_0`, PL1: about the TDP), not the short-term one's (PL2, often
        1.2-2x higher, held for seconds only); another constraint's only without it."""
        return {z.device: z.rated for z in self._zones if z.rated is not None}

    def close(self) -> None:
        for zone in self._zones:
            with contextlib.suppress(OSError):
                os.close(zone.fd)
        self._zones = []
        self._started = False


def probe_rapl(root: Path = POWERCAP_ROOT) -> RaplMeter | Unavailable:
    """A ready RaplMeter, or Unavailable with the reason (for discovery and `greenai env`)."""
    try:
        return RaplMeter(root)
    except MeterError as e:
        return Unavailable(MeterName.RAPL, str(e))


def _find_zones(root: Path) -> tuple[list[tuple[str, DeviceKind, Path]], list[str]]:
    """(device, kind, zone dir) for each package and dram zone, and notes on skipped zones."""
    matches = [(p, _TOP_ZONE.fullmatch(p.name)) for p in _list_dir(root)]
    tops = sorted(
        (m for p, m in matches if m and (p / "name").is_file()),
        key=lambda m: ("mmio" in m["prefix"], m["prefix"], int(m["n"])),  # MSR zones before MMIO
    )
    found: dict[str, tuple[DeviceKind, Path]] = {}
    ignored: list[str] = []
    for match in tops:
        top = root / match.string
        name = _read_text(top / "name")
        package = _PACKAGE.fullmatch(name)
        if package is None:
            ignored.append(f"{top.name} {name} ({_WHY_IGNORED.get(name, 'unknown zone')})")
            continue
        candidates = [(f"cpu:{package[1]}", DeviceKind.CPU, top)]
        for sub in sorted(top.glob(f"{top.name}:*")):
            sub_name = _read_text(sub / "name")
            if sub_name == "dram":
                candidates.append((f"dram:{package[1]}", DeviceKind.DRAM, sub))
            else:
                why = _WHY_IGNORED.get(sub_name, "unknown zone")
                ignored.append(f"{sub.name} {sub_name} ({why})")
        for device, kind, zone_dir in candidates:
            if device in found:
                ignored.append(f"{zone_dir.name} (duplicate of {found[device][1].name})")
            else:
                found[device] = (kind, zone_dir)
    if not any(kind is DeviceKind.CPU for kind, _ in found.values()):
        raise MeterError(f"no powercap RAPL package zones under {root}")
    return [(device, kind, path) for device, (kind, path) in found.items()], ignored


def _list_dir(root: Path) -> list[Path]:
    try:
        return list(root.iterdir())
    except OSError as e:
        raise MeterError(f"no powercap RAPL zones under {root} (not Linux, or no RAPL powercap driver loaded)") from e


def _range_uj(zone_dir: Path) -> int:
    path = zone_dir / "max_energy_range_uj"
    range_uj = _parse_int(path, _read_text(path))
    if range_uj <= 0:
        raise MeterError(f"{path}: range must be positive, got {range_uj}")
    return range_uj


def _max_powers(zone_dir: Path) -> tuple[float, tuple[float, str] | None]:
    """The zone's highest constraint_*_max_power_uw (DEFAULT_MAX_POWER_W without one: the
    bound used to tell whether a gap could hide a counter wrap), and the max for utilization
    ratios with its source: constraint_0's (the long-term limit's, about the TDP), else the
    highest other one's, else None. Some kernels fail reads of these files (ENODATA); such
    files are skipped."""
    values: dict[int, int] = {}
    for path in zone_dir.glob("constraint_*_max_power_uw"):
        index = path.name.split("_")[1]
        with contextlib.suppress(OSError, ValueError):
            value = int(path.read_text())
            if value > 0 and index.isdigit():
                values[int(index)] = value
    if not values:
        return DEFAULT_MAX_POWER_W, None
    highest = microwatts_to_watts(max(values.values()))
    if 0 in values:
        return highest, (microwatts_to_watts(values[0]), "RAPL long-term constraint_0_max_power_uw")
    other, value = max(values.items(), key=lambda item: item[1])
    return highest, (microwatts_to_watts(value), f"RAPL constraint_{other}_max_power_uw (no long-term one)")


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as e:
        raise MeterError(_unreadable(path, e)) from e


def _read_uj(fd: int, path: Path) -> int:
    """Re-read a sysfs counter through a kept descriptor (pread at offset 0 re-reads)."""
    try:
        raw = os.pread(fd, 32, 0)
    except OSError as e:
        raise MeterError(_unreadable(path, e)) from e
    return _parse_int(path, raw)


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        raise MeterError(_unreadable(path, e)) from e


def _parse_int(path: Path, raw: str | bytes) -> int:
    try:
        return int(raw)
    except ValueError as e:
        raise MeterError(f"{path}: expected an integer, got {raw!r}") from e


def _unreadable(path: Path, e: OSError) -> str:
    if isinstance(e, PermissionError):
        return (
            f"permission denied reading {path}: since Linux 5.10 RAPL energy_uj is readable "
            f"by root only (CVE-2020-8694, 'PLATYPUS'). Run as root, or `sudo chmod o+r "
            f"{path}` (until reboot), or add a udev rule that does so at boot"
        )
    return f"cannot read {path}: {e.strerror or e}"
