"""Knobs: threads and batch size for real; NVML knobs on the fake NVML; cpufreq and RAPL on
fake sysfs trees in temp dirs (and, as user `nobody`, read-only ones)."""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from greenai.errors import ConfigError
from greenai.hardware.cpu import usable_threads
from greenai.hardware.sysfs import CPU_ROOT, POWERCAP_ROOT
from greenai.testing.fake_nvml import (
    FakeGpu,
    FakeNvml,
    NVMLError,
    NVMLError_NoPermission,
)
from greenai.testing.fake_powercap import FakePowercap
from greenai.tune.knobs.base import (
    BatchSizeKnob,
    Knob,
    KnobUnavailable,
    ThreadsKnob,
    scale_lr_linearly,
)
from greenai.tune.knobs.cpu import CpuFreqCapKnob, RaplPowerCapKnob
from greenai.tune.knobs.gpu import GpuLockedClocksKnob, GpuPowerLimitKnob

# -- threads and batch size (real) -------------------------------------------------------------


def test_threads_knob_applies_and_restores_torch_threads() -> None:
    before = torch.get_num_threads()
    knob = ThreadsKnob([1, 2])
    assert isinstance(knob, Knob) and knob.available() is None
    knob.apply(1)
    assert torch.get_num_threads() == 1 == knob.current()
    knob.apply(2)
    assert torch.get_num_threads() == 2
    knob.restore()
    assert torch.get_num_threads() == before
    knob.restore()  # idempotent
    assert torch.get_num_threads() == before


def test_threads_knob_defaults_and_validation() -> None:
    values = ThreadsKnob().values()
    assert values[0] == 1 and values == tuple(sorted(values))
    assert values[-1] == usable_threads()  # the affinity mask under the cgroup CPU quota
    with pytest.raises(ConfigError, match="positive integers"):
        ThreadsKnob([0, 2])
    with pytest.raises(ConfigError, match="positive integers"):
        ThreadsKnob([1]).apply(1.5)


def test_batch_size_knob_calls_back_and_scales_lr() -> None:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[tuple[int, int]] = []
    scale = scale_lr_linearly(optimizer, base_batch_size=32)

    def on_change(old: int, new: int) -> None:
        seen.append((old, new))
        scale(old, new)

    knob = BatchSizeKnob([16, 32, 64], initial=32, on_change=on_change)
    assert knob.current() == 32 and knob.available() is None
    knob.apply(64)
    assert knob.value == 64
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
    knob.apply(64)  # no change, no callback
    knob.restore()
    assert knob.value == 32 and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    assert seen == [(32, 64), (64, 32)]


# -- NVML (fake) -------------------------------------------------------------------------------


def fake_nvml(**gpu: object) -> FakeNvml:
    return FakeNvml(gpus=[FakeGpu(**gpu)])  # type: ignore[arg-type]


def test_fake_nvml_setters_match_the_real_pynvml_signatures() -> None:
    pynvml = pytest.importorskip("pynvml")
    for name in (
        "nvmlDeviceSetPowerManagementLimit",
        "nvmlDeviceGetPowerManagementLimit",
        "nvmlDeviceGetPowerManagementLimitConstraints",
        "nvmlDeviceGetPowerManagementDefaultLimit",
        "nvmlDeviceSetGpuLockedClocks",
        "nvmlDeviceResetGpuLockedClocks",
        "nvmlDeviceGetSupportedGraphicsClocks",
        "nvmlDeviceGetSupportedMemoryClocks",
    ):
        real = list(inspect.signature(getattr(pynvml, name)).parameters)
        assert list(inspect.signature(getattr(FakeNvml(), name)).parameters) == real, name
    assert FakeNvml.NVML_ERROR_NO_PERMISSION == pynvml.NVML_ERROR_NO_PERMISSION
    assert type(NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)) is NVMLError_NoPermission


def test_gpu_power_limit_within_constraints() -> None:
    nvml = fake_nvml(power_limit_mw=300_000, power_limit_constraints_mw=(150_000, 300_000))
    knob = GpuPowerLimitKnob(nvml=nvml)
    assert isinstance(knob, Knob) and knob.name == "gpu0_power_limit_w"
    assert knob.available() is None
    assert knob.values() == (300.0, 275.0, 250.0, 225.0, 200.0, 175.0, 150.0)  # Zeus's 25 W steps
    assert knob.current() == 300.0
    knob.apply(175.0)
    assert nvml.gpus[0].power_limit_mw == 175_000 and knob.current() == 175.0
    with pytest.raises(ConfigError, match=r"400 W is outside GPU 0's power-limit range 150\.\.300 W"):
        knob.apply(400)
    knob.restore()
    assert nvml.gpus[0].power_limit_mw == 300_000
    assert nvml.init_count == 0  # NVML shut down again


def test_gpu_power_limit_candidates_are_checked_against_the_gpu() -> None:
    knob = GpuPowerLimitKnob([250, 90], nvml=fake_nvml())
    assert knob.available() is None
    with pytest.raises(ConfigError, match="90 W is outside"):
        knob.values()


def test_gpu_knobs_without_privileges_say_so() -> None:
    nvml = fake_nvml(privileged=False)
    power, clocks = GpuPowerLimitKnob(nvml=nvml), GpuLockedClocksKnob(nvml=nvml)
    for knob in (power, clocks):
        reason = knob.available()
        assert reason is not None and "needs root privileges on GPU 0" in reason, reason
        assert reason.startswith(knob.name)
    assert nvml.init_count == 0
    with pytest.raises(KnobUnavailable, match="needs root"):
        power.apply(300)
    assert nvml.gpus[0].power_limit_mw == 400_000


def test_gpu_knobs_without_a_driver_or_gpu() -> None:
    missing = FakeNvml(library_missing=True)
    assert "NVML unavailable" in (GpuPowerLimitKnob(nvml=missing).available() or "")
    assert "no GPU with NVML index 3" in (GpuLockedClocksKnob(index=3, nvml=fake_nvml()).available() or "")


def test_gpu_locked_clocks_lock_and_reset() -> None:
    nvml = fake_nvml(graphics_clocks_mhz=(1410, 1200, 990, 780, 570))
    knob = GpuLockedClocksKnob(nvml=nvml)
    assert knob.available() is None
    assert knob.values() == (None, 1410, 1200, 780, 570)  # unlocked + 4 spread over the range
    knob.apply(990)
    assert nvml.gpus[0].locked_clocks_mhz == (990, 990) and knob.current() == 990
    with pytest.raises(ConfigError, match="1000 MHz is not a supported graphics clock"):
        knob.apply(1000)
    knob.apply(None)
    assert nvml.gpus[0].locked_clocks_mhz is None
    knob.apply(570)
    knob.restore()
    assert nvml.gpus[0].locked_clocks_mhz is None and knob.current() is None
    assert nvml.init_count == 0


# -- cpufreq and RAPL on fake sysfs trees --------------------------------------------------------


def make_cpufreq(
    root: Path,
    cpus: int = 2,
    min_khz: int = 800_000,
    max_khz: int = 3_000_000,
    available: tuple[int, ...] | None = None,
) -> Path:
    """A fake /sys/devices/system/cpu with cpuN/cpufreq files (kHz), as the kernel lays out."""
    for n in range(cpus):
        d = root / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        files = {"cpuinfo_min_freq": min_khz, "cpuinfo_max_freq": max_khz, "scaling_max_freq": max_khz}
        if available is not None:
            files["scaling_available_frequencies"] = " ".join(map(str, available))
        for name, value in files.items():
            (d / name).write_text(f"{value}\n")
            (d / name).chmod(0o644)
        for p in (d, d.parent):
            p.chmod(0o755)
    (root / "cpufreq").mkdir(exist_ok=True)  # not a cpuN directory: ignored
    root.chmod(0o755)
    return root


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory user `nobody` can traverse (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="greenai-knobs-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def as_unprivileged(work: Callable[[], str]) -> str:
    """`work()` as user nobody when we are root (root ignores file modes), else directly."""
    if os.geteuid() != 0:
        return work()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, report, never return into pytest
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, work().encode())
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


def test_cpufreq_cap_writes_every_cpu_and_restores(tmp_path: Path) -> None:
    root = make_cpufreq(tmp_path / "cpu", available=(3_000_000, 2_000_000, 1_200_000))
    knob = CpuFreqCapKnob(root=root)
    assert isinstance(knob, Knob) and knob.available() is None
    assert knob.values() == (1_200_000, 2_000_000, 3_000_000)
    knob.apply(2_000_000)
    files = [root / f"cpu{n}" / "cpufreq" / "scaling_max_freq" for n in (0, 1)]
    assert [f.read_text().strip() for f in files] == ["2000000", "2000000"]
    assert knob.current() == 2_000_000
    with pytest.raises(ConfigError, match=r"4000000 kHz is outside this CPU's range 800000\.\.3000000"):
        knob.apply(4_000_000)
    knob.restore()
    assert [f.read_text().strip() for f in files] == ["3000000", "3000000"]


def test_cpufreq_default_levels_without_a_frequency_list(tmp_path: Path) -> None:
    knob = CpuFreqCapKnob(root=make_cpufreq(tmp_path / "cpu", cpus=1))
    assert knob.values() == (800_000, 1_533_000, 2_267_000, 3_000_000)


def test_cpufreq_absent_or_read_only_is_skipped_with_a_reason(tmp_path: Path, world_readable_dir: Path) -> None:
    reason = CpuFreqCapKnob(root=tmp_path / "nothing").available()
    assert reason is not None and "no cpufreq in" in reason
    root = make_cpufreq(world_readable_dir / "cpu", cpus=1)
    knob = CpuFreqCapKnob(root=root)

    def try_it() -> str:
        why = knob.available() or "available"
        try:
            knob.apply(1_000_000)
        except KnobUnavailable as e:
            return f"{why}|{e}"
        return f"{why}|applied"

    why, refused = as_unprivileged(try_it).split("|")
    path = root / "cpu0" / "cpufreq" / "scaling_max_freq"
    assert why == f"cpu_max_freq_khz: {path} is read-only for this process (needs root)"
    assert refused == f"cpu_max_freq_khz: permission denied writing {path} (needs root)"
    assert path.read_text().strip() == "3000000"


def test_rapl_power_cap_on_a_fake_powercap_tree(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path / "powercap")
    fake.add_package(0, power_limit_uw=65_000_000, max_power_uw=100_000_000)
    knob = RaplPowerCapKnob(root=fake.root)
    assert knob.name == "rapl_0_power_cap_w" and knob.available() is None
    assert knob.values() == (39.0, 52.0, 65.0)
    knob.apply(40)
    assert fake.power_limit_uw("intel-rapl:0") == 40_000_000 and knob.current() == 40.0
    with pytest.raises(ConfigError, match="150 W is above the zone's maximum 100 W"):
        knob.apply(150)
    knob.restore()
    assert fake.power_limit_uw("intel-rapl:0") == 65_000_000


def test_rapl_absent_or_read_only_is_skipped_with_a_reason(tmp_path: Path, world_readable_dir: Path) -> None:
    reason = RaplPowerCapKnob(root=tmp_path / "none").available()
    assert reason is not None and "no RAPL zone intel-rapl:0" in reason
    no_cap = FakePowercap(tmp_path / "pc")
    no_cap.add_package(0)  # counters only, no constraint files
    assert "constraint_0_power_limit_uw does not exist" in (RaplPowerCapKnob(root=no_cap.root).available() or "")
    fake = FakePowercap(world_readable_dir / "powercap")
    fake.add_package(0, power_limit_uw=65_000_000)
    knob = RaplPowerCapKnob(root=fake.root)
    reason = as_unprivileged(lambda: knob.available() or "available")
    assert reason.endswith("constraint_0_power_limit_uw is read-only for this process (needs root)")


def test_this_machine_says_why_hardware_knobs_are_unusable() -> None:
    """On the project's VM cpufreq and powercap are absent: each knob gives a reason, never an
    exception (on a machine that has them and runs as root, they are simply available)."""
    if not (CPU_ROOT / "cpu0" / "cpufreq").exists():
        assert "no cpufreq" in (CpuFreqCapKnob().available() or "")
    if not POWERCAP_ROOT.exists():
        assert "no RAPL zone" in (RaplPowerCapKnob().available() or "")


def test_gpu_knob_on_a_lost_gpu_is_unavailable_with_nvmls_reason() -> None:
    nvml = fake_nvml()
    knob = GpuPowerLimitKnob(nvml=nvml)
    assert knob.available() is None
    nvml.lose(0)
    with pytest.raises(
        KnobUnavailable, match=r"gpu0_power_limit_w: GPU 0: NVML nvmlDeviceGetPowerManagementLimit failed: GPU is lost"
    ):
        knob.current()
    knob.restore()
    assert nvml.init_count == 0
