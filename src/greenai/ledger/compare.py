"""Compare runs against the first one (the baseline): energy, time, carbon, cost and
energy per unit of useful work (J per counter, for counters every run has).

Each ratio carries its uncertainty (`RatioBand`): a meters' term and, where runs were repeated
(completed runs with the same name and tags in the ledger: `repeat_groups`), the spread of the
repeats (half their range over their median, the two runs' combined in quadrature). A ratio
within the combined band of 1 is "within the noise". A run measured on a busy machine
(`CoLoadSummary.disturbed`) is said to be so in the notes, with its figure. `verdict` puts
this in words next to a ratio, and `band_legend()` says what the band is: `runs compare` and the
HTML report both print them, so they say the same.

The meters' term depends on whether the two runs were measured the same way:

- **different meters** (another host, other meters, other devices or provenance, or meters the
  ledger does not say): the two runs' relative ~95 % bands combined in quadrature, as for a
  quotient of independent errors;
- **the same meters** (same host, the same meters with the same devices and description, the same
  devices and provenance in the totals): most of a meter's error is systematic (the CPU model's
  watts, a counter's calibration) and scales both runs alike, so it cancels in their ratio;
  what is left is taken to be `SAME_METERS_SHARE` (a tenth) of the quadrature of their bands:
  ±7 % for two runs on the CPU model's ±50 %, ±0.7 % on RAPL's ±5 %. That tenth is an
  assumption (a meter's repeatability), not a measurement: the repeats' spread, where there
  are repeats, measures what the runs' own variation adds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from greenai.hardware.coload import DISTURBED_CORES, DISTURBED_SHARE, CoLoadSummary
from greenai.ledger.export import run_cost
from greenai.ledger.records import RunRecord, RunStatus
from greenai.meters.base import Provenance

METRICS = ("energy_j", "duration_s", "carbon_g", "cost")
# the part of two runs' meter bands left in their ratio when both were measured the same way
SAME_METERS_SHARE = 0.1


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
    # each ratio's uncertainty (same keys as `ratio`; the baseline's own has none)
    band: dict[str, RatioBand] = field(default_factory=dict)
    coload: CoLoadSummary | None = None  # the co-load the run ran under (None: not measured)
    repeats: int = 1  # completed runs with this run's name and tags (itself included)

    @property
    def disturbed(self) -> bool:
        return self.coload is not None and self.coload.disturbed

    def band_text(self, key: str) -> str:
        """The ratio's band, e.g. "±12%"; "" where it has none (the baseline, a time without
        repeats)."""
        ratio_band = self.band.get(key)
        if self.ratio.get(key) is None or ratio_band is None or ratio_band.rel is None:
            return ""
        return f"±{ratio_band.rel:.0%}"


@dataclass(frozen=True, slots=True)
class RatioBand:
    """The uncertainty of one ratio to the baseline, as relative ~95 % half-widths."""

    meters_rel: float | None  # the two runs' meter bands (None: a figure no meter gives, time)
    repeats_rel: float | None  # the spread of their repeats (None: neither was repeated)
    repeats: tuple[int, int]  # runs in this run's group and in the baseline's
    rel: float | None  # both combined (None: nothing to judge by)
    within_noise: bool | None  # the ratio is within rel of 1 (None: unknown)
    same_meters: bool = False  # measured the same way: the meters' systematic error cancels

    def describe(self) -> str:
        """E.g. "±71% (meters ±71%, repeats ±3%, 3 and 3 runs): within the noise"."""
        if self.rel is None:
            return "noise unknown (no meter band, no repeats)"
        parts = []
        if self.meters_rel is not None:
            parts.append(f"meters ±{self.meters_rel:.0%}" + (", same meters" if self.same_meters else ""))
        if self.repeats_rel is not None:
            parts.append(f"repeats ±{self.repeats_rel:.0%}, {self.repeats[0]} and {self.repeats[1]} runs")
        verdict = "within the noise" if self.within_noise else "beyond the noise"
        return f"±{self.rel:.0%} ({'; '.join(parts)}): {verdict}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A ratio to the baseline judged in plain words, to print next to it."""

    kind: str  # one of VERDICTS
    words: str  # e.g. "within the noise (meters and repeats)"


# baseline: the run compared with; disturbed: a run was measured on a busy machine; unknown: no
# band to judge by; within / beyond: the ratio is within / beyond its band of 1
VERDICTS = ("baseline", "disturbed", "unknown", "within", "beyond")


def coload_legend(thresholds: Iterable[float] = ()) -> str:
    """What a co-load cell (`CoLoadSummary.short()`: "disturbed 1.90", "0.05") means, under any
    table of runs; `thresholds`: the co-load thresholds the runs were judged by (each run's
    summary keeps its own; the default setting when none is given)."""
    used = sorted(set(thresholds)) or [DISTURBED_CORES]
    cores = ", ".join(f"{t:g}" for t in used)
    return (
        'Co-load: the CPUs other processes kept busy while the run ran (median). "disturbed": '
        f"{cores} CPUs or more (the setting coload_threshold_cores{' of each run' if len(used) > 1 else ''}) "
        f"for {DISTURBED_SHARE:.0%} of the run or more: its figures say as much about the machine as about "
        "the run. ?: not measured."
    )


def band_legend(thresholds: Iterable[float] = ()) -> str:
    """What the ± of a ratio and its words mean (`runs compare`, the comparison report)."""
    return (
        "± is the ratio's ~95% band: the two runs' meter bands in quadrature (a tenth of that when both "
        "were measured the same way, same host and meters, whose systematic error then cancels) and, where "
        "runs were repeated (completed runs with the same name and tags), the spread of the repeats. A ratio "
        "within it is within the noise; a ratio with a disturbed run is not comparable. " + coload_legend(thresholds)
    )


def thresholds_of(runs: Iterable[RunComparison]) -> list[float]:
    """The co-load thresholds `runs` were judged by (those that recorded co-load)."""
    return [r.coload.threshold_cores for r in runs if r.coload is not None]


def verdict(run: RunComparison, base: RunComparison, key: str) -> Verdict:
    """The verdict on `run`'s ratio `key` to `base`: the baseline itself, a busy machine (this
    run, the baseline or both disturbed: not comparable), or within or beyond the noise and by
    which band (meters, repeats)."""
    if run is base:
        return Verdict("baseline", "baseline")
    if run.disturbed or base.disturbed:
        which = "both runs" if run.disturbed and base.disturbed else "this run" if run.disturbed else "the baseline"
        return Verdict("disturbed", f"busy machine ({which} disturbed): not comparable")
    ratio_band = run.band.get(key)
    if ratio_band is None or ratio_band.within_noise is None:
        return Verdict("unknown", "noise unknown")
    used = [
        p
        for p, known in (("meters", ratio_band.meters_rel is not None), ("repeats", ratio_band.repeats_rel is not None))
        if known
    ]
    if ratio_band.within_noise:
        return Verdict("within", f"within the noise ({' and '.join(used)})")
    return Verdict("beyond", f"beyond the noise ({' and '.join(used)})")


@dataclass(frozen=True, slots=True)
class Comparison:
    runs: tuple[RunComparison, ...]  # runs[0] is the baseline
    counters: tuple[str, ...]  # counters present in every run
    notes: tuple[str, ...]  # caveats a reader must see next to the numbers

    @property
    def baseline(self) -> RunComparison:
        return self.runs[0]


def compare_runs(records: Sequence[RunRecord], repeats: Mapping[str, Sequence[RunRecord]] | None = None) -> Comparison:
    """Compare `records`; the first is the baseline. `repeats` (run id -> its completed runs
    with the same name and tags, itself included: `repeat_groups`) gives each ratio the spread
    of the repeats beside the meters' bands."""
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
            band=(
                {}
                if i == 0
                else {
                    key: _band(key, _ratio(value, base[key]), r, records[0], repeats or {}, counters, same_currency)
                    for key, value in f.items()
                }
            ),
            coload=r.snapshot.coload,
            repeats=len((repeats or {}).get(r.start.run_id, ())) or 1,
        )
        for i, (r, f) in enumerate(zip(records, figures, strict=True))
    )
    return Comparison(runs=runs, counters=counters, notes=_notes(records))


class RunFinder(Protocol):
    """What `repeat_groups` needs of a ledger (store.Ledger has it)."""

    def list_runs(self, limit: int = ..., name: str | None = ..., status: str | None = ...) -> list[RunRecord]: ...


MAX_REPEATS = 100  # the newest repeats of a run looked at


def repeat_groups(ledger: RunFinder, records: Sequence[RunRecord]) -> dict[str, tuple[RunRecord, ...]]:
    """For each run, the completed runs of the ledger with its name and tags (itself included,
    the newest MAX_REPEATS): its repeats, whose spread is the noise of its figures."""
    groups: dict[str, tuple[RunRecord, ...]] = {}
    by_name: dict[str, list[RunRecord]] = {}
    for r in records:
        name = r.start.name
        if name not in by_name:
            by_name[name] = ledger.list_runs(limit=MAX_REPEATS, name=name, status=RunStatus.COMPLETED)
        same = [o for o in by_name[name] if o.start.tags == r.start.tags]
        if all(o.start.run_id != r.start.run_id for o in same):
            same.append(r)
        groups[r.start.run_id] = tuple(same)
    return groups


def _band(
    key: str,
    ratio: float | None,
    run: RunRecord,
    base: RunRecord,
    repeats: Mapping[str, Sequence[RunRecord]],
    counters: Sequence[str],
    same_currency: bool,
) -> RatioBand:
    same = same_meters(run, base)
    meters = None
    if key != "duration_s":
        meters = math.hypot(_rel(run), _rel(base)) * (SAME_METERS_SHARE if same else 1.0)
    mine, theirs = repeats.get(run.start.run_id, ()), repeats.get(base.start.run_id, ())
    spreads = [
        _spread([v for o in group if (v := _figures(o, counters, same_currency).get(key)) is not None])
        for group in (mine, theirs)
    ]
    known = [x for x in spreads if x is not None]
    spread = math.hypot(*known) if known else None
    parts = [x for x in (meters, spread) if x is not None]
    rel = math.hypot(*parts) if parts else None
    within = None
    if rel is not None and ratio is not None and ratio > 0:
        within = abs(math.log(ratio)) <= math.log1p(rel)
    return RatioBand(meters, spread, (max(len(mine), 1), max(len(theirs), 1)), rel, within, same)


def same_meters(a: RunRecord, b: RunRecord) -> bool:
    """Whether two runs were measured the same way: the same host, the same meters (name,
    devices, provenance, description, as the run's environment records them) and the same
    devices with the same provenance in their totals. False when either does not say."""
    if a.start.host != b.start.host or a.snapshot.provenance != b.snapshot.provenance:
        return False
    meters = _meters(a), _meters(b)
    if meters[0] is None or meters[0] != meters[1]:
        return False
    return _devices(a) == _devices(b)


def _meters(record: RunRecord) -> frozenset[tuple[str, ...]] | None:
    found = record.start.environment.get("meters")
    if not isinstance(found, list) or not found:
        return None
    out = set()
    for m in found:
        if not isinstance(m, dict) or not isinstance(m.get("devices"), list):
            return None
        out.add((str(m.get("name")), str(m.get("provenance")), str(m.get("detail")), *map(str, m["devices"])))
    return frozenset(out)


def _devices(record: RunRecord) -> frozenset[tuple[str, str, str]]:
    return frozenset((d.device, d.kind.value, d.provenance.value) for d in record.snapshot.devices)


def _rel(record: RunRecord) -> float:
    rel = record.snapshot.rel_uncertainty
    return rel if math.isfinite(rel) else 0.0


def _spread(values: Sequence[float]) -> float | None:
    """Half the range over the median of repeated figures; None for fewer than two."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return None
    mid = statistics.median(finite)
    return (max(finite) - min(finite)) / 2 / mid if mid > 0 else None


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
    for r in records:
        c = r.snapshot.coload
        if c is not None and c.disturbed:
            notes.append(
                f"run {r.start.run_id[:8]} ({r.start.name}) was measured on a busy machine, {c.describe()}: "
                "its figures and every ratio with it say as much about the machine as about the run; "
                "compare runs measured on a quiet machine"
            )
    return tuple(notes)
