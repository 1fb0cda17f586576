"""The CPUs this process may use, one rule (hardware.cpu over hardware.cgroup): the affinity mask
and the cgroup CPU quota on fake cgroup trees (v2, v1, a container without a cgroup namespace);
the exact figure for meters and the estimator, a whole count (rounded up) for threads and jobs,
which the threads knob and the local executor follow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from greenai.errors import ConfigError
from greenai.hardware import cgroup
from greenai.hardware.cpu import CpuAllowance, cpu_allowance, usable_cpus, usable_threads
from greenai.schedule.executor_local import LocalExecutor
from greenai.schedule.jobs import Job
from greenai.testing.fake_sysfs import FakeCgroups, make_cgroup_v1, make_cgroup_v2
from greenai.tune.knobs.base import ThreadsKnob

AFFINITY = len(os.sched_getaffinity(0))
PID = os.getpid()


def usable(fake: FakeCgroups) -> float:
    return usable_cpus(PID, cgroup_root=fake.cgroup_root, proc_root=fake.proc_root)


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    fake = make_cgroup_v2(tmp_path, PID, {"/": "max 100000", "/job": "50000 100000"}, "/job")
    assert usable(fake) == 0.5


def test_cgroup_v2_parent_limit_applies(tmp_path: Path) -> None:
    fake = make_cgroup_v2(tmp_path, PID, {"/a": "100000 100000", "/a/b": "max 100000"}, "/a/b")
    assert usable(fake) == min(AFFINITY, 1.0)


def test_unlimited_is_the_affinity_mask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_cgroup_v2(tmp_path, PID, {"/": "max 100000"})
    assert usable(fake) == AFFINITY
    monkeypatch.setattr(cgroup, "CGROUP_ROOT", fake.cgroup_root)  # this process, by the default roots
    monkeypatch.setattr(cgroup, "PROC_ROOT", fake.proc_root)
    assert usable_cpus() == usable_threads() == max(len(os.sched_getaffinity(0)), 1)


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    fake = make_cgroup_v1(tmp_path, PID, {"/": (-1, 100000), "/job": (25000, 100000)}, "/job")
    assert usable(fake) == 0.25


def test_container_without_cgroup_namespace(tmp_path: Path) -> None:
    # /proc shows the host path, but the container's own cgroup is mounted at the root
    fake = make_cgroup_v2(tmp_path, PID, {"/": "30000 100000"}, "/docker/0123abcd")
    assert usable(fake) == 0.3


def test_no_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert cgroup.cgroup_cpu_quota(PID, tmp_path / "cgroup", tmp_path / "proc") is None
    assert usable_cpus(PID, cgroup_root=tmp_path / "cgroup", proc_root=tmp_path / "proc") == AFFINITY


@pytest.mark.parametrize(
    ("affinity", "quota", "cpus", "threads"),
    [
        (4, None, 4.0, 4),
        (4, 1.5, 1.5, 2),  # rounded up: two threads keep 1.5 CPUs busy
        (4, 2.0, 2.0, 2),
        (4, 0.2, 0.2, 1),  # at least one
        (2, 3.5, 2.0, 2),  # never above the affinity mask
    ],
)
def test_exact_figure_and_whole_count(affinity: int, quota: float | None, cpus: float, threads: int) -> None:
    allowance = CpuAllowance(affinity, quota)
    assert allowance.cpus == cpus and allowance.threads == threads


def test_what_limits_the_cpus_is_named() -> None:
    assert CpuAllowance(4, None).limited_by() == "this process's CPU affinity"
    assert CpuAllowance(2, 3.5).limited_by() == "this process's CPU affinity"
    assert CpuAllowance(2, 2.0).limited_by() == "this process's CPU affinity and cgroup CPU quota"
    assert CpuAllowance(4, 1.5).limited_by() == "this process's cgroup CPU quota; its CPU affinity allows 4"


@pytest.mark.parametrize(("affinity", "threads", "knob_values"), [(4, 2, (1, 2)), (2, 2, (1, 2)), (1, 1, (1,))])
def test_threads_knob_and_local_executor_follow_a_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, affinity: int, threads: int, knob_values: tuple[int, ...]
) -> None:
    """A quota of 1.5 CPUs: 2 threads and 2 jobs at once, not one per CPU of the affinity mask
    (nor more than it has); a job asking for more than the 2 CPUs it can be given is refused,
    naming the quota."""
    fake = make_cgroup_v2(tmp_path, PID, {"/": "max 100000", "/job": "150000 100000"}, "/job")
    monkeypatch.setattr(cgroup, "CGROUP_ROOT", fake.cgroup_root)
    monkeypatch.setattr(cgroup, "PROC_ROOT", fake.proc_root)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity)))
    assert cpu_allowance() == CpuAllowance(affinity, 1.5)
    assert ThreadsKnob().values() == knob_values
    with LocalExecutor() as executor:
        assert executor.capacity() == threads
        executor.check_job(Job("fits", command=("true",), cpus=threads))
        with pytest.raises(ConfigError) as e:
            executor.check_job(Job("big", command=("true",), cpus=threads + 0.5))
    if affinity > 1.5:
        assert str(e.value) == (
            f"job 'big' asks for {threads + 0.5:g} CPUs; this machine has 1.5 usable (this process's cgroup CPU "
            f"quota; its CPU affinity allows {affinity}); use --executor ray for a cluster"
        )
    else:
        assert "this machine has 1 usable (this process's CPU affinity)" in str(e.value)


def test_a_default_job_runs_under_a_quota_below_one_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container limited to half a CPU (`docker --cpus=0.5`, a 500m pod): a job that states no
    CPUs (1 by default) runs, one at a time; one asking for 2 is refused."""
    fake = make_cgroup_v2(tmp_path, PID, {"/": "max 100000", "/job": "50000 100000"}, "/job")
    monkeypatch.setattr(cgroup, "CGROUP_ROOT", fake.cgroup_root)
    monkeypatch.setattr(cgroup, "PROC_ROOT", fake.proc_root)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    with LocalExecutor() as executor:
        assert executor.capacity() == 1
        executor.check_job(Job("default", command=("true",)))
        with pytest.raises(ConfigError, match="asks for 2 CPUs; this machine has 0.5 usable"):
            executor.check_job(Job("two", command=("true",), cpus=2))


def test_a_hierarchy_this_process_may_not_read_has_no_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Path.is_dir raises PermissionError on Python 3.11 for a directory that cannot be
    searched: the quota is then unknown (the affinity rules), never an exception in a meter,
    the threads knob or the executor."""
    fake = make_cgroup_v1(tmp_path, PID, {"/": (-1, 100000), "/job": (25000, 100000)}, "/job")
    real_is_dir = Path.is_dir

    def is_dir(path: Path) -> bool:
        if path.is_relative_to(fake.cgroup_root):
            raise PermissionError(13, "Permission denied", str(path))
        return real_is_dir(path)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    assert cgroup.cgroup_cpu_quota(PID, fake.cgroup_root, fake.proc_root) is None
    assert usable(fake) == AFFINITY
