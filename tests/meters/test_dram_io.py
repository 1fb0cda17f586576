"""DRAM (RSS x W/GB) and I/O (bytes x J/B) estimates, with injected counters and real ones."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from greenai.errors import MeterError
from greenai.meters.base import DeviceKind, Meter, Provenance
from greenai.meters.dram_model import DramModelMeter
from greenai.meters.io import DISK_J_PER_BYTE, NETWORK_J_PER_BYTE, IoMeter, host_network_bytes
from greenai.meters.process import ProcessScope

GIB = 2**30


@dataclass
class FakeTree:
    rss: int = 0
    read: int = 0
    written: int = 0

    def rss_bytes(self) -> int:
        return self.rss

    def io_bytes(self) -> tuple[int, int]:
        return self.read, self.written


@dataclass
class Clock:
    now_s: float = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_dram_8_gib_for_10_s_is_30_j() -> None:
    tree, clock = FakeTree(rss=8 * GIB), Clock()
    meter = DramModelMeter(tree, clock=clock)
    assert isinstance(meter, Meter)
    meter.start()
    clock.now_s = 10.0
    (reading,) = meter.read()
    assert reading.energy_j == pytest.approx(30.0)
    assert (reading.device, reading.kind) == ("dram:0", DeviceKind.DRAM)
    assert reading.provenance == Provenance.ESTIMATED
    assert reading.rel_uncertainty == 0.50


def test_dram_right_rectangles_use_the_rss_seen_at_each_read() -> None:
    tree, clock = FakeTree(rss=2 * GIB), Clock()
    meter = DramModelMeter(tree, clock=clock)
    meter.start()
    clock.now_s = 1.0
    meter.read()  # 2 GiB x 1 s
    tree.rss, clock.now_s = 4 * GIB, 3.0
    (reading,) = meter.read()  # + 4 GiB x 2 s
    assert reading.energy_j == pytest.approx(0.375 * (2 * 1 + 4 * 2))


def test_dram_of_the_real_process() -> None:
    clock = Clock()
    meter = DramModelMeter(ProcessScope(os.getpid()), clock=clock)
    with pytest.raises(MeterError):
        meter.read()
    meter.start()
    clock.now_s = 2.0
    (reading,) = meter.read()
    me = psutil.Process()
    tree_rss = sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])
    expected_j = 0.375 * tree_rss / GIB * 2.0
    assert reading.energy_j == pytest.approx(expected_j, rel=0.05)


def test_io_energy_is_bytes_times_coefficients() -> None:
    tree, net = FakeTree(read=5_000, written=1_000), [10_000]
    meter = IoMeter(tree, net_bytes=lambda: net[0])
    meter.start()
    tree.read += 600_000_000
    tree.written += 400_000_000
    net[0] += 2_000_000_000
    disk, network = meter.read()
    assert disk.energy_j == pytest.approx(1e9 * 2.5e-9)
    assert network.energy_j == pytest.approx(2e9 * 5e-9)
    assert (disk.device, disk.kind, network.device, network.kind) == (
        "disk",
        DeviceKind.DISK,
        "network",
        DeviceKind.NETWORK,
    )
    assert disk.provenance == network.provenance == Provenance.ESTIMATED
    assert disk.rel_uncertainty == network.rel_uncertainty == 1.0


def test_io_counter_that_drops_never_runs_energy_back() -> None:
    tree, net = FakeTree(), [1_000_000]
    meter = IoMeter(tree, net_bytes=lambda: net[0], refresh_s=0.0)
    meter.start()
    net[0] = 3_000_000
    assert meter.read()[1].energy_j == pytest.approx(2e6 * NETWORK_J_PER_BYTE)
    net[0] = 500_000  # an interface went away
    assert meter.read()[1].energy_j == pytest.approx(2e6 * NETWORK_J_PER_BYTE)
    net[0] = 1_500_000
    assert meter.read()[1].energy_j == pytest.approx(3e6 * NETWORK_J_PER_BYTE)


def test_io_counters_are_read_at_most_once_per_refresh() -> None:
    tree, net, clock = FakeTree(), [0], Clock()
    meter = IoMeter(tree, net_bytes=lambda: net[0], refresh_s=1.0, clock=clock)
    meter.start()
    net[0] = 1_000_000
    assert meter.read()[1].energy_j == pytest.approx(1e6 * NETWORK_J_PER_BYTE)
    net[0], clock.now_s = 2_000_000, 0.5
    assert meter.read()[1].energy_j == pytest.approx(1e6 * NETWORK_J_PER_BYTE)  # cached
    clock.now_s = 1.0
    assert meter.read()[1].energy_j == pytest.approx(2e6 * NETWORK_J_PER_BYTE)


def test_dram_rss_is_reread_once_per_refresh_and_integrated_between() -> None:
    tree, clock = FakeTree(rss=2 * GIB), Clock()
    meter = DramModelMeter(tree, clock=clock, rss_refresh_s=1.0)
    meter.start()
    clock.now_s = 0.1
    meter.read()  # reads 2 GiB, valid until 1.1 s
    tree.rss, clock.now_s = 8 * GIB, 0.6
    meter.read()  # still 2 GiB
    clock.now_s = 1.1
    (reading,) = meter.read()  # 8 GiB from here on, charged for 0.6 .. 1.1
    assert reading.energy_j == pytest.approx(0.375 * (2 * 0.6 + 8 * 0.5))


def test_io_info_says_network_is_host_wide() -> None:
    meter = IoMeter(FakeTree(), net_bytes=lambda: 0)
    with pytest.raises(MeterError):
        meter.read()
    info = meter.info()
    assert (info.name, info.devices, info.provenance) == ("io", ("disk", "network"), Provenance.ESTIMATED)
    assert "host-wide" in info.detail and "eBPF" in info.detail and "loopback" in info.detail


def test_loopback_traffic_is_not_counted() -> None:
    if "lo" not in psutil.net_io_counters(pernic=True):
        pytest.skip("no loopback interface named 'lo'")
    payload = b"x" * 4_000_000
    server = socket.create_server(("127.0.0.1", 0))
    lo0, host0 = psutil.net_io_counters(pernic=True)["lo"].bytes_sent, host_network_bytes()

    def drain() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(1 << 20):
                pass

    receiver = threading.Thread(target=drain)
    receiver.start()
    with socket.create_connection(server.getsockname()) as client:
        client.sendall(payload)
    receiver.join()
    server.close()
    assert psutil.net_io_counters(pernic=True)["lo"].bytes_sent - lo0 >= len(payload)
    assert host_network_bytes() - host0 < len(payload) // 4  # other traffic only, not ours


def test_io_meter_counts_disk_writes_of_the_process(tmp_path: Path) -> None:
    meter = IoMeter(ProcessScope(os.getpid()))
    meter.start()
    with open(tmp_path / "out.bin", "wb") as f:
        f.write(os.urandom(8_000_000))
        f.flush()
        os.fsync(f.fileno())
    written = psutil.Process().io_counters().write_bytes
    if written == 0:
        pytest.skip("temp dir is not on a block device (tmpfs)")
    disk, _ = meter.read()
    assert 8_000_000 * DISK_J_PER_BYTE <= disk.energy_j < 16_000_000 * DISK_J_PER_BYTE
