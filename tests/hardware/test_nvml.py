"""hardware.nvml, the one NVML boundary, on the fake NVML (faked at pynvml's own boundary)."""

from __future__ import annotations

import sys

import pytest

from greenai.errors import NvmlError
from greenai.hardware.nvml import NvmlSession, Reason, import_pynvml, reason_codes
from greenai.testing import fake_nvml
from greenai.testing.fake_nvml import FakeGpu, FakeNvml

A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"


def test_vendor_errors_become_nvml_errors_with_a_reason_once() -> None:
    nvml = FakeNvml(gpus=[FakeGpu(uuid=A, energy_counter=False, privileged=False)])
    session = NvmlSession(nvml)
    handle = session.handle_by_index(0)
    cases = {
        ("nvmlDeviceGetTotalEnergyConsumption", ()): Reason.UNSUPPORTED,
        ("nvmlDeviceSetPowerManagementLimit", (1,)): Reason.NO_PERMISSION,
        ("nvmlDeviceGetSupportedGraphicsClocks", (1,)): Reason.NOT_FOUND,
    }
    for (fn, args), reason in cases.items():
        with pytest.raises(NvmlError) as raised:
            session.call(fn, handle, *args, device="gpu:0")
        assert raised.value.reason is reason, fn
        assert str(raised.value).startswith(f"gpu:0: NVML {fn} failed: ")
        assert isinstance(raised.value.__cause__, fake_nvml.NVMLError)
    assert session.call("nvmlDeviceGetTotalEnergyConsumption", handle, absent=(Reason.UNSUPPORTED,)) is None
    with pytest.raises(NvmlError) as raised:
        session.handle_by_index(5)
    assert raised.value.reason is Reason.INVALID_ARGUMENT
    assert session.handle_by_uuid(A) is not None and session.handle_by_uuid("GPU-nope") is None
    nvml.lose(0)
    with pytest.raises(NvmlError) as raised:
        session.call("nvmlDeviceGetPowerUsage", handle)
    assert (
        raised.value.reason is Reason.LOST and str(raised.value) == "NVML nvmlDeviceGetPowerUsage failed: GPU is lost"
    )
    session.close()


def test_a_shared_session_shuts_nvml_down_when_its_last_user_closes() -> None:
    nvml = FakeNvml(gpus=[FakeGpu()])
    session = NvmlSession(nvml)
    assert session.share() is session and nvml.init_count == 1
    session.close()
    assert nvml.init_count == 1 and not session.closed
    session.close()
    session.close()  # no-op once closed
    assert nvml.init_count == 0 and session.closed
    with pytest.raises(NvmlError):
        session.share()


def test_no_driver_and_no_module_are_nvml_errors() -> None:
    with pytest.raises(NvmlError) as raised:
        NvmlSession(FakeNvml(library_missing=True))
    assert raised.value.reason is Reason.NO_DRIVER
    assert str(raised.value) == "NVML library not found: no NVIDIA driver"


def test_without_nvidia_ml_py_the_reason_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # what Python does when the import fails
    with pytest.raises(NvmlError) as raised:
        import_pynvml()
    assert raised.value.reason is Reason.NOT_INSTALLED
    assert "pip install nvidia-ml-py" in str(raised.value)


def test_real_pynvml_codes_map_to_reasons() -> None:
    pynvml = pytest.importorskip("pynvml")
    codes = reason_codes(pynvml)
    assert codes == reason_codes(FakeNvml())  # the fake has the real codes
    assert codes[pynvml.NVML_ERROR_GPU_IS_LOST] is Reason.LOST
    assert codes[pynvml.NVML_ERROR_NO_PERMISSION] is Reason.NO_PERMISSION
    assert codes[pynvml.NVML_ERROR_FUNCTION_NOT_FOUND] is Reason.UNSUPPORTED
    assert codes[pynvml.NVML_ERROR_DRIVER_NOT_LOADED] is Reason.NO_DRIVER
    assert len(codes) == 8  # every code named in hardware.nvml exists in pynvml
