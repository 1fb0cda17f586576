"""ProcessScope against real child processes (CPU, memory, I/O); its usable CPUs (the rule is
hardware.cpu's, tested in tests/hardware/test_usable_cpus.py) on a fake cgroup tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from greenai.errors import MeterError
from greenai.hardware import cgroup
from greenai.meters.process import ProcessScope
from greenai.testing.fake_sysfs import make_cgroup_v2

BUSY = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"
TICK_S = 1 / os.sysconf("SC_CLK_TCK")  # CPU times are counted in clock ticks


def reaped_cpu_s() -> float:
    t = os.times()
    return t.children_user + t.children_system


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def tree_rss() -> int:
    """RSS of this process and its live descendants (a test run may have some already)."""
    me = psutil.Process()
    return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])


def run_busy(scope: ProcessScope, code: str) -> subprocess.Popen[bytes]:
    """Start a child and sample the scope while it runs, so it is seen alive."""
    child = subprocess.Popen([sys.executable, "-c", code])
    while child.poll() is None:
        scope.cpu_seconds()
        time.sleep(0.02)
    return child


def test_cpu_of_a_busy_child_is_counted_once_including_after_it_exits() -> None:
    scope = ProcessScope(os.getpid(), refresh_s=0.0)
    own0, reaped0, counted0 = own_cpu_s(), reaped_cpu_s(), scope.cpu_seconds()
    child = run_busy(scope, BUSY.format(s=0.4))
    exited = scope.cpu_seconds()  # the child has exited; maybe not yet reaped (a zombie)
    child.wait()
    counted1 = scope.cpu_seconds()
    child_s = reaped_cpu_s() - reaped0  # what the kernel folded into us when we reaped it
    own_s = own_cpu_s() - own0
    assert child_s >= 0.4 - 2 * TICK_S
    assert exited - counted0 >= 0.4 - 2 * TICK_S  # its time is kept after it exits
    # counted exactly once: our own time plus the child's, within the sampling ticks
    assert counted1 - counted0 == pytest.approx(own_s + child_s, abs=3 * TICK_S)


def test_a_grandchild_reaped_by_the_child_is_counted_once() -> None:
    scope = ProcessScope(os.getpid(), refresh_s=0.0)
    code = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {BUSY.format(s=0.3)!r}], check=True)\n" + BUSY.format(s=0.2)
    )
    own0, reaped0, counted0 = own_cpu_s(), reaped_cpu_s(), scope.cpu_seconds()
    run_busy(scope, code).wait()
    counted = scope.cpu_seconds() - counted0
    tree_s = reaped_cpu_s() - reaped0  # child + grandchild, as the kernel folded them
    assert tree_s >= 0.5 - 2 * TICK_S
    assert counted == pytest.approx(own_cpu_s() - own0 + tree_s, abs=4 * TICK_S)


def test_without_children_only_the_root_counts() -> None:
    scope = ProcessScope(os.getpid(), include_children=False, refresh_s=0.0)
    own0, counted0 = own_cpu_s(), scope.cpu_seconds()
    run_busy(scope, BUSY.format(s=0.3)).wait()
    assert scope.cpu_seconds() - counted0 == pytest.approx(own_cpu_s() - own0, abs=2 * TICK_S)


def test_rss_includes_children_found_at_the_next_refresh() -> None:
    now = [0.0]
    scope = ProcessScope(os.getpid(), refresh_s=1.0, clock=lambda: now[0])
    alone = scope.rss_bytes()
    assert alone == pytest.approx(tree_rss(), rel=0.05)
    code = "import sys\nb = bytearray(60_000_000)\nprint('ready', flush=True)\nsys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        assert scope.rss_bytes() < alone + 20_000_000  # child list cached for refresh_s
        now[0] = 1.0
        with_child = scope.rss_bytes()
        assert with_child - alone >= 60_000_000
        assert with_child == pytest.approx(alone + psutil.Process(child.pid).memory_info().rss, rel=0.05)
    finally:
        child.kill()
        child.communicate()


def test_io_of_an_exited_child_is_counted_once(tmp_path: Path) -> None:
    scope = ProcessScope(os.getpid(), refresh_s=0.0)
    code = (
        "import os, sys\n"
        f"with open({str(tmp_path / 'out.bin')!r}, 'wb') as f:\n"
        "    f.write(os.urandom(4_000_000)); f.flush(); os.fsync(f.fileno())\n"
        "print(open('/proc/self/io').read().split('write_bytes: ')[1].split()[0], flush=True)\n"
        "sys.stdin.read()\n"
    )
    read0, write0 = scope.io_bytes()
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout is not None
    reported = int(child.stdout.readline())
    if reported == 0:
        child.kill()
        child.communicate()
        pytest.skip("temp dir is not on a block device (tmpfs): no storage writes to count")
    _, live = scope.io_bytes()
    child.communicate(b"")  # let it exit, and reap it
    read1, write1 = scope.io_bytes()
    assert live - write0 >= reported >= 4_000_000
    assert reported <= write1 - write0 < reported + 1_000_000  # not counted twice
    assert read1 >= read0


def test_a_vanished_root_keeps_its_last_values() -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY.format(s=0.3)])
    scope = ProcessScope(child.pid, refresh_s=0.0)
    while child.poll() is None:
        last_seen, last_io = scope.cpu_seconds(), scope.io_bytes()
        time.sleep(0.02)
    assert last_seen >= 0.3 - 0.05  # sampled within the last 20 ms of its life
    assert scope.cpu_seconds() == last_seen  # gone: no error, the last value stands
    assert scope.io_bytes() == last_io
    assert scope.rss_bytes() == 0


def test_unknown_pid_is_a_meter_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(MeterError, match=str(child.pid)):
        ProcessScope(child.pid)


def test_usable_cpus_is_cached_for_usable_refresh_s(tmp_path: Path) -> None:
    now = [0.0]
    fake = make_cgroup_v2(tmp_path, os.getpid(), {"/": "50000 100000"})
    scope = ProcessScope(
        os.getpid(),
        cgroup_root=fake.cgroup_root,
        proc_root=fake.proc_root,
        clock=lambda: now[0],
        usable_refresh_s=1.0,
    )
    assert scope.usable_cpus() == 0.5
    (fake.cgroup_root / "cpu.max").write_text("20000 100000\n")
    assert scope.usable_cpus() == 0.5
    now[0] = 1.0
    assert scope.usable_cpus() == 0.2


def test_usable_cpus_defaults_to_the_hardware_cgroup_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_cgroup_v2(tmp_path, os.getpid(), {"/": "25000 100000"})
    monkeypatch.setattr(cgroup, "CGROUP_ROOT", fake.cgroup_root)
    monkeypatch.setattr(cgroup, "PROC_ROOT", fake.proc_root)
    assert ProcessScope(os.getpid()).usable_cpus() == 0.25
