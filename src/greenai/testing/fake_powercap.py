"""A fake Linux powercap sysfs tree in a directory, for testing RAPL readers.

The layout mirrors the kernel's: `/sys/class/powercap` lists every zone, packages as
`<prefix>:N` and subzones as `<prefix>:N:M`, and each subzone also lives inside its
package's directory. Every zone has `name`, `energy_uj` and `max_energy_range_uj`; a package
given `power_limit_uw` also has the long-term power-cap files (`constraint_0_name`,
`constraint_0_power_limit_uw`, `constraint_0_time_window_us`), and one given
`short_term_max_power_uw` the short-term constraint's (`constraint_1_name`, `constraint_1_max_power_uw`).
Counters are rewritten in place, so a reader holding an open descriptor sees new values,
as with sysfs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

INTEL_MAX_ENERGY_RANGE_UJ = 262_143_328_850  # a typical Intel package zone's range


_COUNTER_WIDTH = 20  # digits of a 64-bit counter, space-padded so rewrites never shrink


class FakePowercap:
    """Builds zones under `root` and drives their counters and a clock, deterministically."""

    def __init__(self, root: Path):
        self.root = root
        self.now_s = 0.0
        self._range_uj: dict[str, int] = {}
        root.mkdir(parents=True, exist_ok=True)
        (root / "intel-rapl").mkdir(exist_ok=True)  # the control type: no `name`, not a zone
        (root / "intel-rapl" / "enabled").write_text("1\n")

    def add_package(
        self,
        index: int,
        *,
        prefix: str = "intel-rapl",
        name: str | None = None,
        subzones: Sequence[str] = ("core", "uncore", "dram"),
        energy_uj: int = 0,
        max_energy_range_uj: int = INTEL_MAX_ENERGY_RANGE_UJ,
        max_power_uw: int | None = None,
        power_limit_uw: int | None = None,
        short_term_max_power_uw: int | None = None,
    ) -> str:
        """Add zone `<prefix>:<index>` (named `package-<index>` unless `name` is given) with
        subzones `<prefix>:<index>:<m>` named after `subzones`. Returns the zone id.
        `max_power_uw` is the long-term constraint's maximum (`constraint_0_max_power_uw`),
        `short_term_max_power_uw` the short-term one's (`constraint_1_*`, PL2)."""
        zone = f"{prefix}:{index}"
        self._write_zone(self.root / zone, name or f"package-{index}", energy_uj, max_energy_range_uj, max_power_uw)
        if short_term_max_power_uw is not None:
            for file_name, value in (
                ("constraint_1_name", "short_term"),
                ("constraint_1_max_power_uw", short_term_max_power_uw),
            ):
                (self.root / zone / file_name).write_text(f"{value}\n")
                (self.root / zone / file_name).chmod(0o644)
        if power_limit_uw is not None:
            for file_name, value in (
                ("constraint_0_name", "long_term"),
                ("constraint_0_power_limit_uw", power_limit_uw),
                ("constraint_0_time_window_us", 999_424),
            ):
                (self.root / zone / file_name).write_text(f"{value}\n")
                (self.root / zone / file_name).chmod(0o644)  # root-writable, as in sysfs
        for m, sub_name in enumerate(subzones):
            sub = f"{zone}:{m}"
            self._write_zone(self.root / zone / sub, sub_name, 0, max_energy_range_uj, None)
            (self.root / sub).symlink_to(Path(zone) / sub)
        return zone

    def subzone(self, zone: str, name: str) -> str:
        """The id of the subzone of `zone` called `name` (e.g. "dram")."""
        for sub in sorted(self.zone_dir(zone).glob(f"{zone}:*")):
            if (sub / "name").read_text().strip() == name:
                return sub.name
        raise KeyError(f"{zone} has no subzone named {name!r}")

    def zone_dir(self, zone: str) -> Path:
        """A zone's real directory: a subzone's is inside its package's."""
        if zone.count(":") == 2:
            return self.root / zone.rsplit(":", 1)[0] / zone
        return self.root / zone

    def energy_path(self, zone: str) -> Path:
        return self.zone_dir(zone) / "energy_uj"

    def power_limit_uw(self, zone: str) -> int:
        """The zone's long-term power cap (`constraint_0_power_limit_uw`)."""
        return int((self.zone_dir(zone) / "constraint_0_power_limit_uw").read_text())

    def energy_uj(self, zone: str) -> int:
        return int(self.energy_path(zone).read_text())

    def set_energy(self, zone: str, energy_uj: int) -> None:
        """Overwrite the counter in place with one fixed-width write: same inode (readers keep
        their fd, as with sysfs) and no truncated state a concurrent reader could see."""
        fd = os.open(self.energy_path(zone), os.O_WRONLY)
        try:
            os.pwrite(fd, f"{energy_uj:<{_COUNTER_WIDTH}}\n".encode(), 0)
        finally:
            os.close(fd)

    def add_energy(self, zone: str, energy_j: float) -> None:
        """Advance a counter by `energy_j` joules, wrapping modulo its range."""
        new_uj = self.energy_uj(zone) + round(energy_j * 1_000_000)
        self.set_energy(zone, new_uj % self._range_uj[zone])

    def tick(self, duration_s: float) -> None:
        self.now_s += duration_s

    def clock(self) -> float:
        """A monotonic clock for the meter under test: `RaplMeter(root, clock=fake.clock)`."""
        return self.now_s

    def restrict_counter(self, zone: str) -> None:
        """Make `energy_uj` unreadable except by root, as Linux >= 5.10 does (CVE-2020-8694).
        Mode 0200 rather than sysfs's 0400 keeps it writable by the fake's owner."""
        self.energy_path(zone).chmod(0o200)

    def make_unreadable(self, zone: str) -> None:
        """Replace `energy_uj` by a directory, so reads fail even for root (who ignores
        file modes): the reader gets EISDIR."""
        path = self.energy_path(zone)
        path.unlink()
        path.mkdir()

    def _write_zone(self, path: Path, name: str, energy_uj: int, range_uj: int, max_power_uw: int | None) -> None:
        path.mkdir()
        path.chmod(0o755)  # world-readable, as sysfs before Linux 5.10, whatever the umask
        files = {"name": name, "energy_uj": f"{energy_uj:<{_COUNTER_WIDTH}}", "max_energy_range_uj": range_uj}
        if max_power_uw is not None:
            files["constraint_0_max_power_uw"] = max_power_uw
        for file_name, value in files.items():
            (path / file_name).write_text(f"{value}\n")
            (path / file_name).chmod(0o644)
        self._range_uj[path.name] = range_uj
