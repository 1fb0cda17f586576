"""Calibration profiles: JSON round trip, where they live, stale and corrupt files."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest

from greenai.errors import GreenAIError
from greenai.estimation.ops import OpClass
from greenai.estimation.profile import (
    BASIS_ACTIVE_POWER,
    BenchPoint,
    EnergyModel,
    Profile,
    ProfileError,
    ProfileWarning,
    TimeModel,
    calibration_dir,
    current_fingerprint,
    default_profile,
    load_profile,
    profile_path,
    save_profile,
)


def make_profile(**fingerprint_changes) -> Profile:
    fp = dataclasses.replace(current_fingerprint("estimated"), **fingerprint_changes)
    return Profile(
        fingerprint=fp,
        created_at="2025-01-02T03:04:05+00:00",
        time_models={
            "matmul/float32": TimeModel(
                4e-6,
                5e10,
                1e10,
                busy_cpus=1.9,
                overhead_busy_cpus=1.0,
                mape=0.05,
                points=12,
                size_correction=((4.0, 1.5), (6.0, 1.0)),
            ),
            "elementwise/float32": TimeModel(2e-6, None, 4e9, mape=0.08, points=20, note="x"),
        },
        missing={"recurrent/int8": "int8 is benchmarked for matmul only"},
        energy_basis=BASIS_ACTIVE_POWER,
        energy=EnergyModel(active_power_w=5.5, base_power_w=1.6, power_per_busy_cpu_w=2.8, meter_rel_uncertainty=0.5),
        energy_provenance="estimated",
        fit_mape_time=0.06,
        fit_mape_energy=0.01,
        view_overhead_s=1e-6,
        module_call_s=2e-6,
        grad_record_s=1.5e-6,
        backward_call_s=3e-5,
        calibration_s=41.5,
        budget_s=60.0,
        notes=("bfloat16 emulated",),
        points=(BenchPoint("linear 8x64->64", "matmul/float32", "float32", 65536.0, 18688.0, 5e-6, 5e-6, 5.1e-6),),
    )


@pytest.fixture
def calib_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENAI_CALIBRATION_DIR", str(tmp_path / "calib"))
    return tmp_path / "calib"


def test_json_round_trip_is_exact(calib_dir):
    profile = make_profile()
    path = save_profile(profile)
    assert path == calib_dir / f"{profile.fingerprint.key()}.json"
    assert path.parent == calibration_dir()
    loaded = load_profile()  # finds this machine's profile
    assert loaded == profile
    assert loaded.time_models["elementwise/float32"].rate_flops is None
    assert loaded.time_model(OpClass.MATMUL, "torch.float32").rate_flops == 5e10
    assert loaded.date == "2025-01-02"
    assert json.loads(path.read_text())["energy_basis"] == "active_power"


def test_size_correction_interpolates_in_log_work_and_is_flat_beyond():
    model = TimeModel(1e-6, 1e9, None, size_correction=((4.0, 1.5), (6.0, 1.0)))
    assert model.factor(1e3, 0) == 1.5  # below the smallest benchmark
    assert model.factor(1e5, 0) == pytest.approx(1.25)  # halfway in log10(FLOPs)
    assert model.factor(1e9, 0) == 1.0  # beyond the largest
    assert model.time_s(1e5, 0) == pytest.approx((1e-6 + 1e5 / 1e9) * 1.25)
    assert TimeModel(1e-6, 1e9, None).factor(1e5, 0) == 1.0  # no knots: the roofline alone


def test_default_location_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("GREENAI_CALIBRATION_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    fp = current_fingerprint()
    assert profile_path(fp) == tmp_path / "xdg" / "greenai" / "calibration" / f"{fp.key()}.json"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert calibration_dir() == tmp_path / "home" / ".local" / "share" / "greenai" / "calibration"


def test_fingerprint_key_depends_on_identity_only():
    fp = current_fingerprint("estimated")
    assert fp.key() == dataclasses.replace(fp, torch_threads=99, meter_provenance="measured").key()
    assert fp.key() != dataclasses.replace(fp, torch_version="1.0").key()
    assert len(fp.key()) == 16


def test_stale_profile_is_refused_with_a_clear_message(calib_dir, tmp_path):
    other = make_profile(cpu_model="Some Other CPU 9000", logical_cpus=128)
    path = save_profile(other, tmp_path / "other.json")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    message = str(err.value)
    assert isinstance(err.value, GreenAIError)
    assert f"calibration profile {path} was made on 'Some Other CPU 9000', 128 logical CPUs" in message
    assert "run `greenai calibrate` here" in message
    assert "cpu_model" in message and "logical_cpus" in message


def test_stale_profile_with_strict_false_warns_and_loads(tmp_path):
    other = make_profile(torch_version="1.13.1")
    path = save_profile(other, tmp_path / "other.json")
    with pytest.warns(ProfileWarning, match="run `greenai calibrate` here"):
        loaded = load_profile(path, strict=False)
    assert loaded == other


def test_minor_difference_only_warns(tmp_path):
    profile = make_profile(torch_threads=current_fingerprint().torch_threads + 7)
    path = save_profile(profile, tmp_path / "p.json")
    with pytest.warns(ProfileWarning, match="torch_threads"):
        assert load_profile(path) == profile


def test_matching_profile_loads_without_warning(tmp_path):
    profile = make_profile()
    path = save_profile(profile, tmp_path / "p.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert load_profile(path) == profile


def test_corrupt_json_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema": 1, "fingerprint": ')
    with pytest.raises(ProfileError, match=r"bad.json is corrupt \(JSONDecodeError.*greenai calibrate"):
        load_profile(path)


def test_wrong_schema_or_missing_fields_is_a_clear_error(tmp_path):
    data = json.loads(make_profile().to_json())
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**data, "schema": 99}))
    with pytest.raises(ProfileError, match="corrupt.*schema 99"):
        load_profile(path)
    del data["energy"]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="corrupt"):
        load_profile(path)


def test_missing_profile(calib_dir):
    with pytest.raises(ProfileError, match="no calibration profile at .*run `greenai calibrate`"):
        load_profile()
    assert load_profile(missing_ok=True) is None


def test_default_profile_covers_every_class_and_is_marked():
    profile = default_profile()
    assert profile.default and profile.energy_provenance == "default"
    for op_class in OpClass:
        for dtype in ("float32", "bfloat16", "float16", "int8"):
            assert profile.time_model(op_class, dtype) is not None
    # Horowitz 2014: fp32 add 0.9 pJ + mult 3.7 pJ per multiply-add (2 FLOPs)
    assert profile.energy.coefficient(profile.energy.pj_per_flop, "matmul", "float32") == pytest.approx(2.3)
    assert profile.energy.coefficient(profile.energy.pj_per_flop, "conv", "int8") == pytest.approx(0.115)
    assert profile.energy.coefficient(profile.energy.pj_per_byte, "elementwise", "float32") == pytest.approx(243.75)
    assert "rough" in profile.notes[0]


def test_profile_saved_before_serial_busy_cpus_loads_with_one_cpu(calib_dir):
    """Profiles made before serial_busy_cpus was measured load with 1.0 (the former model)."""
    profile = dataclasses.replace(make_profile(), serial_busy_cpus=1.9)
    path = save_profile(profile)
    data = json.loads(path.read_text())
    assert data.pop("serial_busy_cpus") == 1.9
    path.write_text(json.dumps(data))
    assert load_profile().serial_busy_cpus == 1.0
