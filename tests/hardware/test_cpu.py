"""CPU model parsing and TDP lookup on model strings as /proc/cpuinfo prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenai.hardware.cpu import CpuInfo, normalize_cpu_name, read_cpu_info, tdp_lookup
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
