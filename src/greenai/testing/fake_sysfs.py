"""Fake cgroup trees (v2 and v1), /proc/<pid>/cgroup files and /proc/cpuinfo in a directory.

The layouts mirror the kernel's: v2 has one hierarchy with `cpu.max` ("quota period" or
"max period") in each cgroup directory and a `0::<path>` line in /proc/<pid>/cgroup; v1 has
one mount per controller set (e.g. `cpu,cpuacct`) with `cpu.cfs_quota_us` (-1: no limit) and
`cpu.cfs_period_us`, and `<id>:<controllers>:<path>` lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FakeCgroups:
    """Pass these as ProcessScope(..., cgroup_root=..., proc_root=...) or
    hardware.cpu.usable_cpus(pid, cgroup_root=..., proc_root=...), or point
    hardware.cgroup.CGROUP_ROOT and PROC_ROOT at them (tests: monkeypatch) for every reader."""

    cgroup_root: Path
    proc_root: Path


def make_cgroup_v2(base: Path, pid: int, cpu_max: Mapping[str, str], path: str = "/") -> FakeCgroups:
    """cgroup v2: `cpu_max` maps cgroup paths ("/", "/job") to their cpu.max content; the
    process `pid` lives in `path`."""
    cgroups = FakeCgroups(base / "cgroup", base / "proc")
    for cgroup, content in cpu_max.items():
        directory = cgroups.cgroup_root / cgroup.strip("/")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cpu.max").write_text(content + "\n")
    _write_proc_cgroup(cgroups.proc_root, pid, [f"0::{path}"])
    return cgroups


def make_cgroup_v1(
    base: Path,
    pid: int,
    quota_us: Mapping[str, tuple[int, int]],
    path: str = "/",
    controllers: str = "cpu,cpuacct",
) -> FakeCgroups:
    """cgroup v1: `quota_us` maps cgroup paths to (cfs_quota_us, cfs_period_us)."""
    cgroups = FakeCgroups(base / "cgroup", base / "proc")
    for cgroup, (quota, period) in quota_us.items():
        directory = cgroups.cgroup_root / controllers / cgroup.strip("/")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        (directory / "cpu.cfs_period_us").write_text(f"{period}\n")
    _write_proc_cgroup(cgroups.proc_root, pid, [f"4:memory:{path}", f"3:{controllers}:{path}"])
    return cgroups


def make_cpuinfo(
    path: Path,
    model_name: str,
    logical_cpus: int = 4,
    siblings: int | None = None,
    hypervisor: bool = False,
) -> Path:
    """A /proc/cpuinfo with `logical_cpus` processor blocks (x86 layout)."""
    flags = "fpu vme de pse tsc msr pae mce sse sse2 ht" + (" hypervisor" if hypervisor else "")
    blocks = [
        "\n".join(
            [
                f"processor\t: {n}",
                "vendor_id\t: GenuineIntel" if "Intel" in model_name else "vendor_id\t: AuthenticAMD",
                f"model name\t: {model_name}",
                f"siblings\t: {siblings if siblings is not None else logical_cpus}",
                f"flags\t\t: {flags}",
            ]
        )
        for n in range(logical_cpus)
    ]
    path.write_text("\n\n".join(blocks) + "\n\n")
    return path


def _write_proc_cgroup(proc_root: Path, pid: int, lines: list[str]) -> None:
    (proc_root / str(pid)).mkdir(parents=True, exist_ok=True)
    (proc_root / str(pid) / "cgroup").write_text("\n".join(lines) + "\n")
