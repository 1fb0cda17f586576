"""hardware.cpu: CPU model parsing and TDP lookup on model strings as /proc/cpuinfo prints
them; feature probing from cpuinfo files (fakes at the /proc boundary) and this machine; the
one bf16 rule its consumers share."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenai.estimation import microbench
from greenai.hardware.cpu import (
    CpuFeatures,
    CpuInfo,
    detect_cpu_features,
    features_of,
    normalize_cpu_name,
    read_cpu_info,
    read_cpuinfo_flags,
    tdp_lookup,
    this_cpu,
)
from greenai.testing.fake_sysfs import make_cpuinfo


@pytest.mark.parametrize(
    ("model", "tdp_w"),
    [
        ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 300.0),  # AWS m6i / c6i
        ("AMD EPYC 7763 64-Core Processor", 280.0),  # Azure HBv3, GCP n2d
        ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", 145.0),  # AWS p3
        ("11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", 28.0),
        ("Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz", 15.0),
        ("AMD Ryzen 9 5950X 16-Core Processor", 105.0),
        ("AMD Ryzen 7 PRO 4750U with Radeon Graphics", 15.0),
        ("Intel(R) Core(TM)2 Duo CPU     E8400  @ 3.00GHz", 65.0),
        ("AMD Opteron(tm) Processor 6176", 115.0),
        ("Intel(R) Xeon(R) Gold 6140 CPU @ 2.30GHz", 140.0),  # not AMD Opteron 6140 (115 W)
        ("AMD A10-8700P Radeon R6, 10 Compute Cores 4C+6G", 15.0),  # "6th Gen A10-8700P APU"
    ],
)
def test_known_models(model: str, tdp_w: float) -> None:
    assert tdp_lookup(model) == tdp_w


@pytest.mark.parametrize(
    "model",
    [
        "AMD EPYC",  # a bare family name: many SKUs from 120 W to 400 W
        "Intel(R) Xeon(R) CPU @ 2.20GHz",  # GCP hides the SKU
        "Intel Xeon Processor (Cascadelake)",  # QEMU's named CPU model
        "QEMU Virtual CPU version 2.5+",
        "Intel(R) Xeon(R) Gold 6999 CPU @ 2.30GHz",  # no such SKU
        "Intel(R) Xeon(R) Processor 6176",  # "6176" is an AMD entry: vendors must agree
        "",
    ],
)
def test_unknown_or_ambiguous_models_have_no_tdp(model: str) -> None:
    assert tdp_lookup(model) is None


def test_normalization_drops_marks_clock_core_count_and_filler() -> None:
    assert normalize_cpu_name("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz") == "intel xeon platinum 8375c"
    assert normalize_cpu_name("AMD EPYC 7763 64-Core Processor") == "amd epyc 7763"
    assert normalize_cpu_name("AMD Ryzen 5 3500 Processor (OEM Only)") == "amd ryzen 5 3500"
    assert normalize_cpu_name("Genuine Intel(R) CPU 0000 @ 2.20GHz") == "intel 0000"


def test_read_cpu_info_bare_metal(tmp_path: Path) -> None:
    path = make_cpuinfo(tmp_path / "cpuinfo", "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 8, siblings=64)
    assert read_cpu_info(path) == CpuInfo(
        model_name="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        hypervisor=False,
        logical_per_package=64,
        tdp_w=300.0,
    )


def test_read_cpu_info_virtual_machine(tmp_path: Path) -> None:
    path = make_cpuinfo(tmp_path / "cpuinfo", "AMD EPYC", 2, hypervisor=True)
    assert read_cpu_info(path) == CpuInfo("AMD EPYC", hypervisor=True, logical_per_package=2, tdp_w=None)


def test_read_cpu_info_without_model_or_siblings_counts_processors(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"  # the shape of an ARM /proc/cpuinfo
    path.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\n")
    assert read_cpu_info(path) == CpuInfo("unknown", hypervisor=False, logical_per_package=2, tdp_w=None)


# -- instruction-set features ----------------------------------------------------------------
EPYC = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
    "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx_vnni avx512_bf16 avx512_vnni\n\n"
    "processor\t: 1\nflags\t\t: fpu\n"
)
SAPPHIRE = "flags\t: avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd asimddp sve bf16 i8mm\nCPU implementer\t: 0x41\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_x86_flags_from_first_processor(tmp_path):
    flags = read_cpuinfo_flags(write(tmp_path, EPYC))
    assert "avx512bf16" in flags and "avx512vnni" in flags  # normalized names
    cpu = detect_cpu_features(write(tmp_path, EPYC), use_torch=False)
    if cpu.is_x86:
        assert cpu.bf16 and cpu.int8_vnni and not cpu.amx
        assert cpu.quantized_engine() == "x86"


def test_amx_and_arm_from_flags(tmp_path):
    spr = CpuFeatures.from_flags(read_cpuinfo_flags(write(tmp_path, SAPPHIRE)))
    assert spr.amx and spr.bf16 and spr.int8_vnni
    arm = CpuFeatures.from_flags(
        read_cpuinfo_flags(write(tmp_path, GRAVITON3)), arch="aarch64", quantized_engines=("qnnpack", "x86")
    )
    assert arm.is_arm and arm.bf16 and arm.int8_vnni
    assert arm.quantized_engine() == "qnnpack"
    old = CpuFeatures.from_flags(["avx2", "fma"])
    assert not old.bf16 and not old.int8_vnni
    assert "no native bf16" in old.describe()


def test_missing_cpuinfo_gives_no_flags(tmp_path):
    assert read_cpuinfo_flags(tmp_path / "absent") == frozenset()


def test_this_machine_agrees_with_proc_cpuinfo():
    cpu = this_cpu()
    proc = read_cpuinfo_flags()
    assert proc <= cpu.flags  # torch's probe only adds
    assert cpu.quantized_engines  # torch reports its engines
    if "avx512bf16" in proc:
        assert cpu.bf16


# -- one bf16 rule ---------------------------------------------------------------------------
# A Skylake/Cascade Lake Xeon: AVX-512 without bf16 instructions. oneDNN reports bf16 support
# there (it emulates it), which estimation/microbench.py used to count as native.
SKYLAKE = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6140\nflags\t\t: avx2 avx512f avx512bw avx512vl avx512dq\n"
)


def test_onednn_bf16_emulation_is_not_native(tmp_path):
    flags = read_cpuinfo_flags(write(tmp_path, SKYLAKE))
    cpu = CpuFeatures.from_flags(flags, bf16_via_onednn=True)
    assert cpu.bf16_via_onednn and not cpu.bf16 and cpu.bf16_flags == ()
    assert "oneDNN emulates it" in cpu.bf16_detail() and "slower than fp32" in cpu.bf16_detail()
    native, why = microbench.bf16_support(cpu)  # calibration's note follows the same rule
    assert not native and why.startswith("no native bf16")


def test_native_bf16_names_its_instructions(tmp_path):
    spr = CpuFeatures.from_flags(read_cpuinfo_flags(write(tmp_path, SAPPHIRE)), bf16_via_onednn=True)
    assert spr.bf16_flags == ("avx512_bf16", "amx_bf16")
    assert microbench.bf16_support(spr) == (True, "native bf16 (avx512_bf16, amx_bf16)")
    arm = CpuFeatures.from_flags(read_cpuinfo_flags(write(tmp_path, GRAVITON3)), arch="aarch64")
    assert arm.bf16_detail() == "native bf16 (bf16)"


def test_calibration_and_transforms_agree_on_this_machine():
    assert microbench.bf16_support()[0] == this_cpu().bf16


def test_model_and_flags_come_from_the_same_first_processor_entry(tmp_path):
    path = make_cpuinfo(tmp_path / "cpuinfo", "AMD EPYC", 2, hypervisor=True)
    assert read_cpu_info(path).hypervisor and "hypervisor" in read_cpuinfo_flags(path)
    path.write_text(SKYLAKE + "\nprocessor\t: 1\nflags\t\t: hypervisor avx512_bf16\n")
    assert not read_cpu_info(path).hypervisor and not CpuFeatures.from_flags(read_cpuinfo_flags(path)).bf16


def test_a_transform_is_told_of_the_cpu_by_features_a_function_or_nothing() -> None:
    avx512 = CpuFeatures.from_flags({"avx512f", "avx512_bf16"})
    assert features_of(avx512) is avx512
    assert features_of(lambda: avx512) is avx512
    assert features_of(None) == this_cpu()
