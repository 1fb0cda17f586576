"""The cgroup CPU quota of a process: the one reader of cgroup CPU bandwidth limits (Linux).

A container or a systemd unit may be given a CPU quota ("1.5 CPUs") without its affinity mask
changing: the process sees every CPU but is throttled once its tree has used quota x period
CPU time in a period. `hardware.cpu.cpu_allowance` combines this with the affinity mask.

The roots are read at each call, so tests point `CGROUP_ROOT` and `PROC_ROOT` at a fake tree
(`greenai.testing.fake_sysfs`), or pass roots of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")  # the v2 hierarchy, or one v1 mount per controller set
PROC_ROOT = Path("/proc")  # /proc/<pid>/cgroup names the process's cgroup in each hierarchy


def cgroup_cpu_quota(pid: int, cgroup_root: Path | None = None, proc_root: Path | None = None) -> float | None:
    """CPUs allowed by the tightest CPU bandwidth limit on the process's cgroup path and its
    ancestors: v2 `cpu.max` ("quota period" or "max period"), v1 `cpu.cfs_quota_us` /
    `cpu.cfs_period_us` (quota -1 = none). None when unlimited or unreadable."""
    cgroup_root = CGROUP_ROOT if cgroup_root is None else cgroup_root
    proc_root = PROC_ROOT if proc_root is None else proc_root
    try:
        lines = (proc_root / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        try:  # a hierarchy this process may not read (Path.is_dir raises PermissionError) has no say
            if controllers == "":
                limits += _along(cgroup_root, path, _v2_limit)
            elif "cpu" in controllers.split(","):
                mount = cgroup_root / controllers
                limits += _along(mount if mount.is_dir() else cgroup_root / "cpu", path, _v1_limit)
        except OSError:
            continue
    return min(limits, default=None)


def _along(mount: Path, path: str, limit: Callable[[Path], float | None]) -> list[float]:
    """Limits found from mount/path up to the mount root. Without a cgroup namespace a
    container sees its host path in /proc but its own cgroup at the mount root; directories
    that do not exist are skipped, so both layouts work."""
    parts = [p for p in path.split("/") if p]
    found = (limit(mount.joinpath(*parts[:n])) for n in range(len(parts), -1, -1))
    return [x for x in found if x is not None]


def _v2_limit(cgroup: Path) -> float | None:
    quota, _, period = _read(cgroup / "cpu.max").partition(" ")
    return _ratio(quota, period)


def _v1_limit(cgroup: Path) -> float | None:
    return _ratio(_read(cgroup / "cpu.cfs_quota_us"), _read(cgroup / "cpu.cfs_period_us"))


def _ratio(quota: str, period: str) -> float | None:
    """quota / period in CPUs; None for "max" or -1 (no limit) and for anything unreadable."""
    if quota.isdigit() and period.isdigit() and int(period) > 0:
        return int(quota) / int(period)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
