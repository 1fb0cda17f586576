from __future__ import annotations

import inspect

import pytest

from greenai.errors import MeterError
from greenai.meters.base import DeviceKind, Meter, Provenance, Unavailable
from greenai.meters.nvml import MIG_NOTE, NvmlMeter, probe_nvml
from greenai.testing import fake_nvml
from greenai.testing.fake_nvml import FakeGpu, FakeNvml

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
