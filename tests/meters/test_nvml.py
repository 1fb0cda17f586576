from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable

import pytest

from greenai.config import Config
from greenai.errors import MeterError
from greenai.meters.base import DeviceKind, Meter, Provenance, Unavailable
from greenai.meters.discover import discover, meter_name
from greenai.meters.nvml import MIG_NOTE, NvmlMeter, probe_nvml
from greenai.meters.process import ProcessScope
from greenai.testing import fake_nvml
from greenai.testing.fake_nvml import FakeGpu, FakeNvml
from greenai.tracking.tracker import Tracker

A, B, C = (f"GPU-{c * 8}-0000-0000-0000-000000000000" for c in "abc")


def three_gpus() -> FakeNvml:
    """Physical 0 and 2 have energy counters; physical 1 (a Pascal board) only power."""
    return FakeNvml(
        gpus=[
            FakeGpu(uuid=A, power_w=250.0, energy_mj=5_000_000),
            FakeGpu(name="Tesla P100-PCIE-16GB", uuid=B, power_w=100.0, energy_counter=False),
            FakeGpu(uuid=C, power_w=300.0, energy_mj=1_000),
        ]
    )


def meter_for(nvml: FakeNvml, visible: str | None) -> NvmlMeter:
    meter = NvmlMeter(nvml=nvml, visible_devices=visible, clock=nvml.clock)
    meter.start()
    return meter


def energies(meter: NvmlMeter) -> dict[str, float]:
    return {r.device: r.energy_j for r in meter.read()}


def test_energy_counter_is_measured_in_joules() -> None:
    nvml = three_gpus()
    meter = meter_for(nvml, "0")
    assert isinstance(meter, Meter)
    nvml.advance(2.0)

    [reading] = meter.read()

    assert reading.device == "gpu:0" and reading.kind is DeviceKind.GPU
    assert reading.energy_j == 500.0  # 250 W x 2 s, from the mJ counter
    assert reading.provenance is Provenance.MEASURED and reading.rel_uncertainty == 0.05


def test_power_is_integrated_by_the_trapezoid_rule() -> None:
    nvml = three_gpus()
    meter = meter_for(nvml, "1")  # starts at 100 W
    p100 = nvml.gpus[1]
    nvml.advance(1.0)
    p100.power_w = 200.0
    assert energies(meter) == {"gpu:0": 150.0}  # (100 + 200) / 2 x 1 s
    nvml.advance(2.0)
    p100.power_w = 300.0

    [reading] = meter.read()

    assert reading.energy_j == 650.0  # 150 + (200 + 300) / 2 x 2 s
    assert reading.provenance is Provenance.INTEGRATED and reading.rel_uncertainty == 0.10
    assert meter.info().provenance is Provenance.INTEGRATED


def test_visible_by_index_numbers_devices_as_cuda_does() -> None:
    nvml = three_gpus()
    meter = meter_for(nvml, "2,0")
    nvml.advance(1.0)

    assert energies(meter) == {"gpu:0": 300.0, "gpu:1": 250.0}
    info = meter.info()
    assert info.devices == ("gpu:0", "gpu:1") and info.provenance is Provenance.MEASURED
    assert f"gpu:0 (physical 2, NVIDIA A100-SXM4-40GB, {C}): energy counter" in info.detail
    assert f"gpu:1 (physical 0, NVIDIA A100-SXM4-40GB, {A}): energy counter" in info.detail


def test_visible_by_uuid() -> None:
    nvml = three_gpus()
    meter = meter_for(nvml, f" {C} , {A}")
    nvml.advance(0.5)

    assert energies(meter) == {"gpu:0": 150.0, "gpu:1": 125.0}


def test_unset_means_all_and_the_default_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = three_gpus()
    assert NvmlMeter(nvml=nvml).info().devices == ("gpu:0", "gpu:1", "gpu:2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    meter = NvmlMeter(nvml=nvml)
    assert meter.info().devices == ("gpu:0",) and "physical 1" in meter.info().detail


def test_an_unknown_entry_hides_itself_and_later_entries_like_cuda() -> None:
    meter = meter_for(three_gpus(), "0,7,1")

    assert meter.info().devices == ("gpu:0",)
    assert "entry '7' matches no GPU" in meter.info().detail


def test_empty_visible_list_means_no_gpu() -> None:
    nvml = three_gpus()
    with pytest.raises(MeterError, match=r"no NVIDIA GPU visible \(CUDA_VISIBLE_DEVICES=''\)"):
        NvmlMeter(nvml=nvml, visible_devices="")
    assert nvml.init_count == 0  # shut down again
    assert probe_nvml(nvml, visible_devices="") == Unavailable(
        "nvml", "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES='')"
    )


def test_mig_instances_of_one_gpu_are_counted_once_as_the_whole_gpu() -> None:
    nvml = three_gpus()
    nvml.gpus[0].mig_uuids = ("MIG-11111111", "MIG-22222222")
    meter = meter_for(nvml, "MIG-11111111,MIG-22222222,2")
    nvml.advance(2.0)

    assert energies(meter) == {"gpu:0": 500.0, "gpu:2": 600.0}  # parent GPU, once
    detail = meter.info().detail
    assert f"gpu:0 (physical 0, NVIDIA A100-SXM4-40GB, {A}): energy counter; MIG-11111111: {MIG_NOTE}" in detail
    assert "gpu:1=MIG-22222222 is on physical GPU 0, already counted under gpu:0" in detail


def test_gpu_in_mig_mode_seen_by_index_is_noted() -> None:
    nvml = three_gpus()
    nvml.gpus[2].mig_uuids = ("MIG-33333333",)
    meter = meter_for(nvml, "2,MIG-33333333")
    nvml.advance(1.0)

    assert energies(meter) == {"gpu:0": 300.0}
    assert "MIG mode on: energy is the whole GPU" in meter.info().detail


def test_lost_gpu_is_a_meter_error_naming_it() -> None:
    nvml = three_gpus()
    meter = meter_for(nvml, None)
    nvml.advance(1.0)
    nvml.lose(1)

    with pytest.raises(MeterError) as raised:
        meter.read()

    assert str(raised.value) == (
        f"gpu:1 (physical 1, Tesla P100-PCIE-16GB, {B}): NVML nvmlDeviceGetPowerUsage failed: GPU is lost"
    )
    assert isinstance(raised.value.__cause__, fake_nvml.NVMLError)


def test_counter_going_backwards_is_a_meter_error() -> None:
    nvml = three_gpus()
    meter = meter_for(nvml, "0")
    nvml.gpus[0].energy_mj = 0  # driver reloaded
    with pytest.raises(MeterError, match="gpu:0 .* energy counter went backwards"):
        meter.read()


def test_read_before_start_and_close_shuts_nvml_down_once() -> None:
    nvml = three_gpus()
    meter = NvmlMeter(nvml=nvml, visible_devices="0")
    assert nvml.init_count == 1
    with pytest.raises(MeterError, match="before start"):
        meter.read()
    meter.close()
    meter.close()
    assert nvml.init_count == 0


def test_missing_library_is_unavailable() -> None:
    assert probe_nvml(FakeNvml(library_missing=True)) == Unavailable("nvml", "NVML library not found: no NVIDIA driver")


def test_real_pynvml_without_a_driver_is_unavailable() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        code = e.value
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present")
    probed = probe_nvml(visible_devices=None)
    assert isinstance(probed, Unavailable) and probed.name == "nvml"
    if code == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        assert probed.reason == "NVML library not found: no NVIDIA driver"


def test_fake_matches_the_real_pynvml_api() -> None:
    pynvml = pytest.importorskip("pynvml")
    fake = FakeNvml()
    names = [n for n in dir(fake) if n.startswith("nvml")]
    assert len(names) == 21
    for name in names:
        real = list(inspect.signature(getattr(pynvml, name)).parameters)
        assert list(inspect.signature(getattr(fake, name)).parameters) == real, name
    for name in (n for n in dir(fake) if n.startswith("NVML_")):
        assert getattr(fake, name) == getattr(pynvml, name), name


# -- faults are per GPU ----------------------------------------------------------------------


def two_gpus() -> FakeNvml:
    """Two 100 W GPUs with energy counters (an idle pair: 300 J each over a 3 s run)."""
    return FakeNvml(gpus=[FakeGpu(uuid=A, power_w=100.0), FakeGpu(uuid=B, power_w=100.0)])


def test_per_device_splits_into_one_meter_per_gpu_on_one_nvml_session() -> None:
    nvml = three_gpus()
    nvml.gpus[0].mig_uuids = ("MIG-11111111", "MIG-22222222")
    meters = NvmlMeter(nvml=nvml, visible_devices="MIG-11111111,MIG-22222222,2,7", clock=nvml.clock).per_device()

    assert [m.info().devices for m in meters] == [("gpu:0",), ("gpu:2",)]
    assert all(isinstance(m, Meter) and m.info().name == "nvml" for m in meters)
    first, second = (m.info().detail for m in meters)
    assert "gpu:1=MIG-22222222 is on physical GPU 0, already counted under gpu:0" in first
    assert "entry '7' matches no GPU" in first  # notes on the whole list go with the first
    assert f"gpu:2 (physical 2, NVIDIA A100-SXM4-40GB, {C}): energy counter" in second
    assert "gpu:0" not in second
    assert nvml.init_count == 1  # one session, shared
    for meter in meters:
        meter.start()
    nvml.advance(2.0)
    assert [r.energy_j for m in meters for r in m.read()] == [500.0, 600.0]
    meters[0].close()
    meters[0].close()  # idempotent: does not release the other meter's share
    assert nvml.init_count == 1
    meters[1].close()
    assert nvml.init_count == 0


def test_a_lost_gpu_fails_its_own_meter_only_and_says_when() -> None:
    nvml = two_gpus()
    gpu0, gpu1 = NvmlMeter(nvml=nvml, visible_devices=None, clock=nvml.clock).per_device()
    gpu0.start()
    gpu1.start()
    nvml.advance(1.0)
    assert gpu0.read()[0].energy_j == 100.0 and gpu1.read()[0].energy_j == 100.0
    nvml.lose(1)
    nvml.advance(2.0)

    with pytest.raises(MeterError) as raised:
        gpu1.read()
    [reading] = gpu0.read()

    assert reading.device == "gpu:0" and reading.energy_j == 300.0  # GPU 0 whole
    assert str(raised.value) == (
        f"gpu:1 (physical 1, NVIDIA A100-SXM4-40GB, {B}): NVML nvmlDeviceGetTotalEnergyConsumption failed: "
        "GPU is lost, 3.0 s after start (last good reading at 1.0 s, 100.0 J)"
    )
    assert isinstance(raised.value.__cause__, fake_nvml.NVMLError)
    assert "failed: gpu:1 (physical 1" in gpu1.info().detail
    nvml.gpus[1].lost = False  # even if it answered again, a GPU off the bus is not called again
    with pytest.raises(MeterError, match="last good reading at 1.0 s"):
        gpu1.read()
    assert gpu1.max_power() == {} and gpu0.max_power() == {"gpu:0": (400.0, "NVML power management limit")}
    gpu0.close()
    gpu1.close()
    assert nvml.init_count == 0


def test_a_power_only_gpu_keeps_its_integrated_energy_up_to_the_failure() -> None:
    nvml = three_gpus()
    meters = NvmlMeter(nvml=nvml, visible_devices="0,1", clock=nvml.clock).per_device()
    for meter in meters:
        meter.start()
    nvml.advance(0.5)
    assert [m.read()[0].energy_j for m in meters] == [125.0, 50.0]
    nvml.lose(1)
    nvml.advance(0.5)
    with pytest.raises(
        MeterError,
        match=r"nvmlDeviceGetPowerUsage failed: GPU is lost, 1\.0 s after start \(last good reading at 0\.5 s, 50\.0 J\)",
    ):
        meters[1].read()
    assert meters[0].read()[0].energy_j == 250.0


def test_discovery_gives_each_gpu_its_own_meter(tmp_path) -> None:
    nvml = two_gpus()
    found = discover(Config(rapl_root=tmp_path / "no-powercap").validate(), ProcessScope(os.getpid()), nvml=nvml)
    try:
        gpus = [m.info().devices for m in found.meters if meter_name(m) == "nvml"]
        assert gpus == [("gpu:0",), ("gpu:1",)]
    finally:
        for meter in found.meters:
            meter.close()
    assert nvml.init_count == 0


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_gpu_lost_mid_run_is_dropped_alone_with_its_energy_up_to_the_loss(caplog) -> None:
    """Issue 16: GPU 1 lost at 1 s of a 3 s run dropped GPU 0 too (89.9 J instead of ~300 J)."""
    nvml = two_gpus()
    meters = NvmlMeter(nvml=nvml, visible_devices=None, clock=nvml.clock).per_device()
    config = Config(sample_hz=50.0, intensity="100").validate()

    def energy_j(run: Tracker, device: str) -> float:
        return sum(d.energy_j for d in run.snapshot().devices if d.device == device)

    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("two gpus", config=config, meters=meters, store=False) as run:
            nvml.advance(1.0)
            wait_for(lambda: energy_j(run, "gpu:1") == 100.0)
            nvml.lose(1)
            wait_for(lambda: any("dropped" in r.getMessage() and "gpu:1" in r.getMessage() for r in caplog.records))
            nvml.advance(2.0)
    result = run.result

    assert result.device_energy_j("gpu:0") == 300.0  # kept whole
    assert result.device_energy_j("gpu:1") == 100.0  # up to the loss
    assert result.energy_j == 400.0
    assert f"gpu:1 (physical 1, NVIDIA A100-SXM4-40GB, {B})" in caplog.text
    assert "GPU is lost, 1.0 s after start (last good reading at 1.0 s, 100.0 J)" in caplog.text
    assert "gpu:0 (physical 0" not in caplog.text
    [note] = [n for n in result.notes if "gpu:1" in n]  # the run's note: which GPU, when
    assert f"gpu:1 (physical 1, NVIDIA A100-SXM4-40GB, {B})" in note
    assert "GPU is lost, 1.0 s after start (last good reading at 1.0 s, 100.0 J)" in note
    assert nvml.init_count == 0
