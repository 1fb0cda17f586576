"""CPU feature probing from cpuinfo files (fakes at the /proc boundary) and this machine."""

from __future__ import annotations

from pathlib import Path

from greenai.hardware.cpu_features import (
    CpuFeatures,
    detect_cpu_features,
    read_cpuinfo_flags,
    this_cpu,
)

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
