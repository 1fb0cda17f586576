"""Compare runs against the first one (the baseline): energy, time, carbon, cost and
energy per unit of useful work (J per counter, for counters every run has)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from greenai.ledger.export import run_cost
from greenai.ledger.records import RunRecord, RunStatus
from greenai.meters.base import Provenance

METRICS = ("energy_j", "duration_s", "carbon_g", "cost")


@dataclass(frozen=True, slots=True)
class RunComparison:
    """One run's figures and its ratios to the baseline (None where undefined)."""

    run_id: str
    name: str
    status: str
    provenance: Provenance
    energy_j: float
    duration_s: float
    carbon_g: float
    cost: float | None  # None when the run had no electricity price
    currency: str
    j_per: dict[str, float | None]  # counter name -> joules per unit (None if the count is 0)
    ratio: dict[str, float | None]  # metric or "j_per_<counter>" -> value / baseline value


@dataclass(frozen=True, slots=True)
class Comparison:
    runs: tuple[RunComparison, ...]  # runs[0] is the baseline
    counters: tuple[str, ...]  # counters present in every run
    notes: tuple[str, ...]  # caveats a reader must see next to the numbers

    @property
    def baseline(self) -> RunComparison:
        return self.runs[0]


def compare_runs(records: Sequence[RunRecord]) -> Comparison:
    """Compare `records`; the first is the baseline."""
    if not records:
        raise ValueError("compare_runs needs at least one run")
    counters = tuple(
        name for name in records[0].snapshot.counters if all(name in r.snapshot.counters for r in records[1:])
    )
    same_currency = len({r.snapshot.currency for r in records}) == 1
    figures = [_figures(r, counters, same_currency) for r in records]
    base = figures[0]
    runs = tuple(
        RunComparison(
            run_id=r.start.run_id,
            name=r.start.name,
            status=r.status,
            provenance=r.snapshot.provenance,
            energy_j=r.snapshot.energy_j,
            duration_s=r.snapshot.duration_s,
            carbon_g=r.snapshot.carbon_g,
            cost=run_cost(r),
            currency=r.snapshot.currency,
            j_per={name: f[f"j_per_{name}"] for name in counters},
            ratio={key: _ratio(value, base[key]) for key, value in f.items()},
        )
        for r, f in zip(records, figures, strict=True)
    )
    return Comparison(runs=runs, counters=counters, notes=_notes(records))


def _figures(record: RunRecord, counters: Sequence[str], same_currency: bool) -> dict[str, float | None]:
    """The figures to compare; cost is left out (None) when currencies differ or no price was set."""
    snap = record.snapshot
    figures: dict[str, float | None] = {key: getattr(snap, key) for key in METRICS}
    figures["cost"] = run_cost(record) if same_currency else None
    for name in counters:
        figures[f"j_per_{name}"] = _ratio(snap.energy_j, snap.counters[name])
    return figures


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0 or not math.isfinite(base):
        return None
    return value / base


def _notes(records: Sequence[RunRecord]) -> tuple[str, ...]:
    notes = []
    provenances = sorted({r.snapshot.provenance for r in records}, key=lambda p: p.rank)
    if len(provenances) > 1:
        names = [p.value for p in provenances]
        notes.append(f"comparing {', '.join(names[:-1])} with {names[-1]} energy")
    if len({r.snapshot.currency for r in records}) > 1:
        notes.append("costs are in different currencies; cost ratios are not given")
    for r in records:
        if r.status != RunStatus.COMPLETED:
            notes.append(f"run {r.start.run_id[:8]} is {r.status}; its totals may be partial")
    return tuple(notes)
