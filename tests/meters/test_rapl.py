from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from greenai.errors import MeterError
from greenai.meters.base import DeviceKind, Meter, Provenance, Unavailable
from greenai.meters.rapl import RaplMeter, probe_rapl, wraps_between
from greenai.testing.fake_powercap import FakePowercap


def energies(meter: RaplMeter) -> dict[str, float]:
    return {r.device: r.energy_j for r in meter.read()}


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "powercap")


def test_intel_two_sockets_report_packages_and_dram_not_core(fake: FakePowercap) -> None:
    for index in (0, 1):
        fake.add_package(index)  # subzones core, uncore, dram
    meter = RaplMeter(fake.root, clock=fake.clock)
    assert isinstance(meter, Meter)
    meter.start()
    fake.tick(1.0)
    fake.add_energy("intel-rapl:0", 10.0)
    fake.add_energy(fake.subzone("intel-rapl:0", "dram"), 2.0)
    fake.add_energy(fake.subzone("intel-rapl:0", "core"), 6.0)  # part of the package's 10 J
    fake.add_energy("intel-rapl:1", 7.5)
    fake.add_energy(fake.subzone("intel-rapl:1", "dram"), 1.25)

    readings = meter.read()

    assert {r.device: r.energy_j for r in readings} == {"cpu:0": 10.0, "dram:0": 2.0, "cpu:1": 7.5, "dram:1": 1.25}
    by_device = {r.device: r for r in readings}
    assert by_device["cpu:1"].kind is DeviceKind.CPU
    assert by_device["dram:1"].kind is DeviceKind.DRAM
    assert {r.provenance for r in readings} == {Provenance.MEASURED}
    assert by_device["cpu:0"].rel_uncertainty == 0.05
    assert by_device["dram:0"].rel_uncertainty == 0.10
    info = meter.info()
    assert info.name == "rapl" and info.devices == ("cpu:0", "dram:0", "cpu:1", "dram:1")
    assert "cpu:0=intel-rapl:0" in info.detail and "dram:1=intel-rapl:1:2" in info.detail
    assert "intel-rapl:0:0 core (inside package)" in info.detail
    meter.close()


@pytest.mark.parametrize(
    ("prefix", "subzones"),
    [
        ("intel-rapl", ("core",)),  # AMD Zen on Linux >= 5.8: package + core, no dram
        ("amd-rapl", ()),
    ],
)
def test_amd_layouts_give_one_package(fake: FakePowercap, prefix: str, subzones: tuple) -> None:
    fake.add_package(0, prefix=prefix, subzones=subzones, max_energy_range_uj=65_712_999_613)
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(0.1)
    fake.add_energy(f"{prefix}:0", 4.2)

    assert energies(meter) == {"cpu:0": 4.2}
    assert meter.info().devices == ("cpu:0",)


def test_psys_and_mmio_duplicate_are_skipped_and_named(fake: FakePowercap) -> None:
    fake.add_package(0, subzones=("dram",))
    fake.add_package(0, prefix="intel-rapl-mmio", subzones=())  # same package, via MMIO
    fake.add_package(1, name="psys", subzones=())
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(0.1)
    fake.add_energy("intel-rapl:0", 3.0)
    fake.add_energy("intel-rapl-mmio:0", 3.0)
    fake.add_energy("intel-rapl:1", 20.0)

    assert energies(meter) == {"cpu:0": 3.0, "dram:0": 0.0}
    detail = meter.info().detail
    assert "intel-rapl:1 psys (platform)" in detail
    assert "intel-rapl-mmio:0 (duplicate of intel-rapl:0)" in detail


def test_single_wraparound(fake: FakePowercap) -> None:
    range_uj = 262_143_328_850
    fake.add_package(0, subzones=(), energy_uj=range_uj - 1_000_000, max_energy_range_uj=range_uj)
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(0.1)
    fake.add_energy("intel-rapl:0", 3.0)

    assert fake.energy_uj("intel-rapl:0") == 2_000_000  # wrapped
    assert energies(meter) == {"cpu:0": 3.0}


def test_several_wraparounds_estimated_from_recent_mean_power(fake: FakePowercap) -> None:
    # A 1 J range and a 10 W limit: any gap of 0.1 s or more could hide a full wrap.
    fake.add_package(0, subzones=(), max_energy_range_uj=1_000_000, max_power_uw=10_000_000)
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(0.05)
    fake.add_energy("intel-rapl:0", 0.25)  # 5 W over a gap too short to wrap: the mean power
    assert energies(meter) == {"cpu:0": 0.25}

    fake.tick(1.0)  # the sampler stalls; 5.3 J pass: five full wraps and 0.3 J
    fake.add_energy("intel-rapl:0", 5.3)
    assert fake.energy_uj("intel-rapl:0") == 550_000

    assert energies(meter) == {"cpu:0": 5.55}


def test_ambiguous_gap_before_any_mean_power_counts_only_the_visible_part(
    fake: FakePowercap,
) -> None:
    fake.add_package(0, subzones=(), max_energy_range_uj=1_000_000, max_power_uw=10_000_000)
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(1.0)
    fake.add_energy("intel-rapl:0", 5.3)

    assert energies(meter) == {"cpu:0": 0.3}  # the documented limit: no history, no guess


def test_wraps_between_picks_the_nearest_count() -> None:
    assert wraps_between(300_000, 1_000_000, elapsed_s=1.0, mean_power_w=5.0) == 5
    assert wraps_between(300_000, 1_000_000, elapsed_s=1.0, mean_power_w=5.7) == 5
    assert wraps_between(300_000, 1_000_000, elapsed_s=1.0, mean_power_w=5.9) == 6
    assert wraps_between(900_000, 1_000_000, elapsed_s=0.1, mean_power_w=1.0) == 0


def test_start_resets_the_baseline(fake: FakePowercap) -> None:
    fake.add_package(0, subzones=())
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(0.1)
    fake.add_energy("intel-rapl:0", 2.0)
    assert energies(meter) == {"cpu:0": 2.0}
    meter.start()
    fake.tick(0.1)
    fake.add_energy("intel-rapl:0", 0.5)
    assert energies(meter) == {"cpu:0": 0.5}


def test_read_before_start_and_close_release_descriptors(fake: FakePowercap) -> None:
    fake.add_package(0)
    fds_before = len(os.listdir("/proc/self/fd"))
    meter = RaplMeter(fake.root, clock=fake.clock)
    assert len(os.listdir("/proc/self/fd")) == fds_before + 2  # package and dram
    with pytest.raises(MeterError, match="before start"):
        meter.read()
    meter.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_unreadable_counter_is_a_meter_error_naming_the_file(fake: FakePowercap) -> None:
    fake.add_package(0)
    dram = fake.subzone("intel-rapl:0", "dram")
    fake.make_unreadable(dram)

    path = fake.energy_path(dram)
    assert path == fake.root / "intel-rapl:0" / "intel-rapl:0:2" / "energy_uj"
    with pytest.raises(MeterError, match=re.escape(f"cannot read {path}: Is a directory")):
        RaplMeter(fake.root)
    probed = probe_rapl(fake.root)
    assert isinstance(probed, Unavailable) and probed.name == "rapl"
    assert str(path) in probed.reason


def test_missing_powercap_is_unavailable_with_reason(tmp_path: Path) -> None:
    assert probe_rapl(tmp_path / "absent") == Unavailable(
        "rapl", f"no powercap RAPL zones under {tmp_path / 'absent'} (not Linux, or no RAPL powercap driver loaded)"
    )
    (tmp_path / "empty").mkdir()
    assert probe_rapl(tmp_path / "empty") == Unavailable(
        "rapl", f"no powercap RAPL package zones under {tmp_path / 'empty'}"
    )


@pytest.fixture
def world_readable_dir():
    """A directory an unprivileged user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="greenai-powercap-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_root_only_counter_explains_the_fix(world_readable_dir: Path) -> None:
    fake = FakePowercap(world_readable_dir / "powercap")
    fake.add_package(0, subzones=())
    fake.restrict_counter("intel-rapl:0")

    message = _probe_as_unprivileged_user(fake.root)

    path = fake.energy_path("intel-rapl:0")
    assert message.startswith(f"permission denied reading {path}: ")
    assert "CVE-2020-8694" in message
    assert f"sudo chmod o+r {path}" in message and "Run as root" in message


def _probe_as_unprivileged_user(root: Path) -> str:
    """probe_rapl's reason, as user `nobody` when running as root (root ignores modes)."""
    if os.geteuid() != 0:
        return probe_rapl(root).reason
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, report, never return into pytest
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, probe_rapl(root).reason.encode())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(write_end, f"CHILD FAILED: {e!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    if message.startswith("CHILD FAILED: PermissionError"):
        pytest.skip(f"cannot drop root privileges here: {message}")
    return message


def test_the_max_for_utilization_is_the_long_term_constraints_not_the_short_terms(fake: FakePowercap) -> None:
    # PL1 (long-term, about the TDP) 65 W, PL2 (short-term) 120 W: a package held at 65 W is fully used
    fake.add_package(0, subzones=(), max_power_uw=65_000_000, short_term_max_power_uw=120_000_000)
    fake.add_package(1, subzones=(), short_term_max_power_uw=90_000_000)  # no long-term max: the other one, said
    fake.add_package(2, subzones=())  # none: no max
    meter = RaplMeter(fake.root, clock=fake.clock)
    found = meter.max_power()
    assert found["cpu:0"] == (65.0, "RAPL long-term constraint_0_max_power_uw")
    assert found["cpu:1"][0] == 90.0 and "constraint_1" in found["cpu:1"][1] and "no long-term" in found["cpu:1"][1]
    assert "cpu:2" not in found
    meter.close()


def test_wraps_are_bounded_by_the_highest_constraint(fake: FakePowercap) -> None:
    # a 1 J range: at the short-term 20 W a gap of 0.06 s could hide a wrap, at the long-term 10 W it could not
    fake.add_package(
        0, subzones=(), max_energy_range_uj=1_000_000, max_power_uw=10_000_000, short_term_max_power_uw=20_000_000
    )
    meter = RaplMeter(fake.root, clock=fake.clock)
    meter.start()
    fake.tick(0.01)
    fake.add_energy("intel-rapl:0", 0.2)  # 20 W over a short gap: the mean power
    assert energies(meter) == {"cpu:0": 0.2}
    fake.tick(0.06)
    fake.add_energy("intel-rapl:0", 1.2)  # a wrap and 0.2 J, at 20 W
    assert energies(meter) == {"cpu:0": pytest.approx(1.4)}
    meter.close()
