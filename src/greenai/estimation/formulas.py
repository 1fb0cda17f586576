"""The project's seed formulas, each a small pure function used by the estimator.

- E = P x t (greenai.units.energy_j, re-exported here)
- training time = D / V: dataset samples over throughput (samples per second)
- compression ratio = N1 / N2: size before over size after (parameters or bytes)
- total energy = compute + data transfer
- E_total = sum_i E_i * C_i: per-operation-class energy times its count (Horowitz, ISSCC
  2014, for per-operation energies; the same decomposition underlies e.g. Accelergy)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from greenai.units import energy_j

__all__ = ["compression_ratio", "energy_j", "total_energy", "training_time_s", "weighted_energy"]


def training_time_s(dataset_samples: float, samples_per_s: float, epochs: float = 1.0) -> float:
    """t = D / V (per epoch), times the number of epochs."""
    if samples_per_s <= 0 or not math.isfinite(samples_per_s):
        raise ValueError(f"throughput must be a positive number of samples/s, got {samples_per_s}")
    if dataset_samples < 0 or epochs < 0:
        raise ValueError("dataset size and epochs must be >= 0")
    return dataset_samples / samples_per_s * epochs


def compression_ratio(size_before: float, size_after: float) -> float:
    """N1 / N2: how many times smaller the compressed model is (2.0 = half the size)."""
    if size_after <= 0:
        raise ValueError(f"compressed size must be > 0, got {size_after}")
    return size_before / size_after


def total_energy(compute_j: float, transfer_j: float) -> float:
    """Energy of computing plus energy of moving data (memory, storage, network)."""
    return compute_j + transfer_j


def weighted_energy(energies_j: Iterable[float], counts: Iterable[float]) -> float:
    """E_total = sum_i E_i * C_i: energy per operation of class i times its count."""
    energies, amounts = list(energies_j), list(counts)
    if len(energies) != len(amounts):
        raise ValueError(f"{len(energies)} per-op energies but {len(amounts)} counts")
    return math.fsum(e * c for e, c in zip(energies, amounts))
