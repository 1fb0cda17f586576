"""CPU hardware knobs through Linux sysfs: a cpufreq frequency cap and a RAPL power cap.

- cpufreq: `/sys/devices/system/cpu/cpuN/cpufreq/scaling_max_freq` (kHz) caps the frequency
  the governor may pick, within `cpuinfo_min_freq`..`cpuinfo_max_freq` (kernel docs,
  Documentation/admin-guide/pm/cpufreq.rst).
- RAPL: `/sys/class/powercap/intel-rapl:N/constraint_0_power_limit_uw` is the package's
  long-term power limit in microwatts, at most `constraint_0_max_power_uw` when the kernel
  reports it (Documentation/power/powercap/powercap.rst).

Both files are root-only to write and absent on most VMs; `available()` then says so and the
tuner skips the knob. Roots are injectable for tests (a fake tree in a temp dir).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Sequence
from pathlib import Path

from greenai.errors import ConfigError, KnobUnavailable
from greenai.hardware.sysfs import CPU_ROOT, POWERCAP_ROOT
from greenai.tune.knobs.base import positive_ints
from greenai.units import MICROWATTS_PER_W, microwatts_to_watts

_CPU_DIR = re.compile(r"cpu\d+")
DEFAULT_CAP_FRACTIONS = (0.6, 0.8, 1.0)  # of the current RAPL limit
DEFAULT_FREQ_LEVELS = 4  # evenly spaced caps when the driver lists no frequencies


def read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


def write_sysfs(path: Path, value: int, what: str) -> None:
    """Write an integer to a sysfs file: refusals become KnobUnavailable, rejected values
    ConfigError."""
    try:
        path.write_text(f"{value}\n")
    except PermissionError as e:
        raise KnobUnavailable(f"{what}: permission denied writing {path} (needs root)") from e
    except OSError as e:
        if e.errno == errno.EROFS:
            raise KnobUnavailable(f"{what}: {path} is on a read-only file system") from e
        if e.errno == errno.EINVAL:
            raise ConfigError(f"{what}: the kernel rejected {value} for {path}") from e
        raise KnobUnavailable(f"{what}: cannot write {path}: {e.strerror or e}") from e


def writable_reason(path: Path, what: str) -> str | None:
    """Why `path` cannot be written by this process, or None."""
    if not path.is_file():
        return f"{what}: {path} does not exist"
    if not os.access(path, os.W_OK):
        return f"{what}: {path} is read-only for this process (needs root)"
    return None


class CpuFreqCapKnob:
    """Caps every selected CPU's frequency (kHz) through cpufreq's `scaling_max_freq`."""

    def __init__(
        self,
        values_khz: Sequence[int] | None = None,
        cpus: Sequence[int] | None = None,
        root: Path = CPU_ROOT,
        name: str = "cpu_max_freq_khz",
    ) -> None:
        self.name = name
        self._root = Path(root)
        self._cpus = tuple(cpus) if cpus is not None else None
        self._given = positive_ints(name, values_khz) if values_khz is not None else None
        self._original: dict[Path, int] | None = None

    def _files(self) -> list[Path]:
        if self._cpus is not None:
            dirs = [self._root / f"cpu{n}" for n in self._cpus]
        else:
            found = [p for p in self._root.glob("cpu*") if _CPU_DIR.fullmatch(p.name)]
            dirs = sorted(found, key=lambda p: int(p.name[3:]))
        return [d / "cpufreq" / "scaling_max_freq" for d in dirs]

    def available(self) -> str | None:
        files = self._files()
        if not files or not all(f.is_file() for f in files):
            return (
                f"{self.name}: no cpufreq in {self._root} (cpuN/cpufreq/scaling_max_freq "
                "absent: frequency scaling is off or hidden, as on most VMs)"
            )
        for f in files:
            reason = writable_reason(f, self.name)
            if reason:
                return reason
        return None

    def _limits_khz(self) -> tuple[int, int]:
        d = self._files()[0].parent
        return read_int(d / "cpuinfo_min_freq"), read_int(d / "cpuinfo_max_freq")

    def values(self) -> tuple[int, ...]:
        low, high = self._limits_khz()
        if self._given is not None:
            for v in self._given:
                self._check(v, low, high)
            return self._given
        listed = self._files()[0].parent / "scaling_available_frequencies"
        if listed.is_file():
            freqs = sorted({int(x) for x in listed.read_text().split()})
            return tuple(f for f in freqs if low <= f <= high) or (high,)
        step = (high - low) / (DEFAULT_FREQ_LEVELS - 1)
        return tuple(sorted({round((low + k * step) / 1000) * 1000 for k in range(DEFAULT_FREQ_LEVELS)}))

    def current(self) -> int:
        return read_int(self._files()[0])

    def apply(self, value: int) -> None:
        low, high = self._limits_khz()
        self._check(value, low, high)
        files = self._files()
        if self._original is None:
            self._original = {f: read_int(f) for f in files}
        for f in files:
            write_sysfs(f, int(value), self.name)

    def restore(self) -> None:
        if self._original is not None:
            for f, khz in self._original.items():
                write_sysfs(f, khz, self.name)
            self._original = None

    def _check(self, value: int, low: int, high: int) -> None:
        positive_ints(self.name, [value])
        if not low <= value <= high:
            raise ConfigError(f"{self.name}: {value} kHz is outside this CPU's range {low}..{high} kHz")


class RaplPowerCapKnob:
    """A RAPL package's long-term power limit, in watts (powercap `constraint_0`)."""

    def __init__(
        self,
        values_w: Sequence[float] | None = None,
        zone: str = "intel-rapl:0",
        root: Path = POWERCAP_ROOT,
        name: str | None = None,
    ) -> None:
        self.name = name or f"rapl_{zone.rsplit(':', 1)[-1]}_power_cap_w"
        self._dir = Path(root) / zone
        self._zone = zone
        if values_w is not None and (
            not values_w or any(not (isinstance(v, (int, float)) and v > 0) for v in values_w)
        ):
            raise ConfigError(f"{self.name}: candidate caps must be positive watts")
        self._given = tuple(float(v) for v in values_w) if values_w is not None else None
        self._original_uw: int | None = None

    @property
    def _limit_file(self) -> Path:
        return self._dir / "constraint_0_power_limit_uw"

    def available(self) -> str | None:
        if not self._dir.is_dir():
            return (
                f"{self.name}: no RAPL zone {self._zone} in {self._dir.parent} (powercap "
                "absent: no RAPL driver, or a VM that hides it)"
            )
        return writable_reason(self._limit_file, self.name)

    def _max_w(self) -> float | None:
        f = self._dir / "constraint_0_max_power_uw"
        return microwatts_to_watts(read_int(f)) if f.is_file() else None

    def values(self) -> tuple[float, ...]:
        if self._given is not None:
            for v in self._given:
                self._check(v)
            return self._given
        now_w = self.current()
        return tuple(round(now_w * f, 1) for f in DEFAULT_CAP_FRACTIONS)

    def current(self) -> float:
        return microwatts_to_watts(read_int(self._limit_file))

    def apply(self, value: float) -> None:
        self._check(value)
        if self._original_uw is None:
            self._original_uw = read_int(self._limit_file)
        write_sysfs(self._limit_file, round(value * MICROWATTS_PER_W), self.name)

    def restore(self) -> None:
        if self._original_uw is not None:
            write_sysfs(self._limit_file, self._original_uw, self.name)
            self._original_uw = None

    def _check(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and value > 0):
            raise ConfigError(f"{self.name}: a power cap must be positive watts (got {value!r})")
        max_w = self._max_w()
        if max_w is not None and value > max_w:
            raise ConfigError(f"{self.name}: {value:g} W is above the zone's maximum {max_w:g} W")
