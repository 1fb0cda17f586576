"""The energy-quality Pareto front and the recommendation rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """A measured candidate on the energy-quality plane."""

    name: str
    energy_j: float  # per unit of work; lower is better
    quality: float  # higher is better


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """Points no other point beats on both axes (lower energy and higher-or-equal quality,
    or equal energy and higher quality), sorted by energy."""
    ordered = sorted(points, key=lambda p: (p.energy_j, -p.quality))
    front: list[Point] = []
    best_quality = -math.inf
    for p in ordered:
        if p.quality > best_quality:
            front.append(p)
            best_quality = p.quality
    return front


def quality_bound(baseline_quality: float, max_drop: float | None, min_quality: float | None) -> float:
    """The least acceptable quality: an absolute floor, or the baseline minus a drop."""
    if min_quality is not None:
        return min_quality
    return baseline_quality - (max_drop if max_drop is not None else 0.0)


def cheapest_within(points: Sequence[Point], bound: float) -> Point | None:
    """The lowest-energy point whose quality meets the bound (None if none does)."""
    acceptable = [p for p in points if p.quality >= bound]
    return min(acceptable, key=lambda p: p.energy_j) if acceptable else None


def saving_is_real(baseline_j: float, candidate_j: float, spread_baseline: float, spread_candidate: float) -> bool:
    """True when the candidate's energy is lower than the baseline's by more than the two
    measurements' combined repeat spread (both on one meter, so its model bias cancels)."""
    if not (baseline_j > 0 and candidate_j > 0):
        return False
    return 1 - candidate_j / baseline_j > math.hypot(spread_baseline, spread_candidate)
