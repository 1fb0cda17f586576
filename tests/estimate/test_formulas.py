"""The seed formulas, exactly."""

from __future__ import annotations

import pytest

from greenai.estimation.formulas import (
    compression_ratio,
    energy_j,
    total_energy,
    training_time_s,
    weighted_energy,
)


def test_energy_is_power_times_time():
    assert energy_j(250.0, 3600.0) == 900_000.0


def test_training_time_is_dataset_over_throughput():
    assert training_time_s(60_000, 1_500.0) == 40.0
    assert training_time_s(60_000, 1_500.0, epochs=3) == 120.0
    with pytest.raises(ValueError):
        training_time_s(100, 0.0)


def test_compression_ratio():
    assert compression_ratio(4_000_000, 1_000_000) == 4.0
    with pytest.raises(ValueError):
        compression_ratio(10, 0)


def test_total_energy_is_compute_plus_transfer():
    assert total_energy(12.5, 2.5) == 15.0


def test_weighted_energy_sums_energy_times_count():
    # 1e9 fp32 FLOPs at 2.3 pJ + 1e8 DRAM bytes at 160 pJ
    assert weighted_energy([2.3e-12, 160e-12], [1e9, 1e8]) == pytest.approx(2.3e-3 + 16e-3)
    with pytest.raises(ValueError):
        weighted_energy([1.0], [1.0, 2.0])
