"""What a report shows, computed from the ledger: plain data, no HTML and no plotting.

`run_view` turns one recorded run (its totals, its samples as the ledger reads them for a chart,
forecasts and environment) into the figures a run's report prints and the series its charts
draw. The samples come downsampled from the ledger (`Ledger.power_series`: each time bucket's
first, lowest, highest and last sample per device, aggregated by SQLite), so a run of a million
samples per device is read and drawn as a few thousand points; every energy figure comes from
the run's totals, never from those points.
Everything a user wrote (run names, tags, phase names) stays a plain string here; escaping
is the templates' job (Jinja2 autoescaping) and the charts' (`charts.text`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from greenai.carbon import configured_intensity
from greenai.carbon.held import HeldIntensity
from greenai.errors import GreenAIError
from greenai.hardware.coload import CoLoadSummary, CoLoadWindow
from greenai.ledger.export import iso_utc, run_cost
from greenai.ledger.records import RunRecord, RunStatus
from greenai.ledger.run_forecasts import ForecastRow
from greenai.meters.base import Provenance
from greenai.reports.downsample import minmax
from greenai.reports.metrics import Metric, seed_metrics
from greenai.tracking.budget import COUNTER_PREFIX
from greenai.tracking.forecast import MIN_PROGRESS
from greenai.tracking.phases import NO_PHASE, SEPARATOR, inclusive_totals
from greenai.units import J_PER_KWH

if TYPE_CHECKING:
    from greenai.ledger.series import DeviceSeries, PhaseBucket, SampleSeries

# One bucket per ~pixel column of a chart 1,000 px wide: the drawn line is the full series'.
POWER_BUCKETS = 1000
LINE_BUCKETS = 600  # cumulative energy and carbon intensity: smooth, fewer points suffice
MAX_PHASE_SPANS = 400  # shaded phase spans drawn under the power chart
SHORT_SPAN_INTERVALS = 3  # spans shorter than this many sampling intervals are merged
DEFAULT_INTERVAL_S = 0.1  # the sampling interval assumed when a run has too few samples to tell


@dataclass(frozen=True)
class DeviceRow:
    device: str
    kind: str
    energy_j: float
    share: float  # of the run's IT energy
    provenance: str
    rel_uncertainty: float
    mean_power_w: float
    max_power_w: float | None  # the device's maximum (TDP, power limit, model max), if known
    max_source: str  # where max_power_w comes from, or why it is unknown


@dataclass(frozen=True)
class PhaseRow:
    """A phase with its nested phases rolled up (inclusive figures)."""

    path: str
    name: str  # last path segment
    depth: int
    energy_j: float
    exclusive_j: float  # energy apportioned to this phase itself, not to nested ones
    duration_s: float
    calls: int
    share: float
    provenance: str  # weakest provenance of the devices that put energy in it
    rel_uncertainty: float  # linear sum of the devices' bands, as for run totals


@dataclass(frozen=True)
class UnitFigure:
    counter: str
    count: float
    j_per_unit: float | None
    units_per_kj: float | None


@dataclass(frozen=True)
class PowerSeries:
    device: str
    kind: str
    provenance: str
    t_s: Any  # numpy float array, seconds since the run started
    power_w: Any
    raw_points: int  # the sample rows the points stand for


@dataclass(frozen=True)
class PhaseSpan:
    start_s: float
    end_s: float
    label: str  # a phase path, or several joined with " / " when they alternate faster than shown
    phases: tuple[str, ...]


@dataclass(frozen=True)
class BudgetMark:
    description: str  # e.g. "stop at energy_kwh=0.5"
    quantity: str
    limit: float  # in the budget's unit
    limit_j: float | None  # the energy limit in joules (energy budgets), for the energy chart
    fired: str | None  # "warn" / "stop" when it fired, else None
    at_s: float | None  # when it fired (from the samples or forecasts); None if not known
    how: str  # how at_s was found


@dataclass(frozen=True)
class ForecastPoint:
    made_at_s: float
    progress: float
    energy_j: float
    low_j: float
    high_j: float
    error: float | None  # (forecast - actual) / actual, only for a completed run
    held: bool | None  # the actual total inside [low, high]


@dataclass(frozen=True)
class IntensityView:
    source: str  # as the run recorded it
    spec: str  # the configured spec ("" = world average)
    t_s: Any | None  # None when the series cannot be rebuilt (note says why)
    g_per_kwh: Any | None
    mean_g_per_kwh: float | None  # carbon / facility kWh, from the run's totals
    varies: bool
    note: str


@dataclass(frozen=True)
class EnvironmentView:
    rows: tuple[tuple[str, str], ...]  # (label, value)
    meters: tuple[dict[str, Any], ...]
    unavailable: tuple[dict[str, Any], ...]


@dataclass
class RunView:
    record: RunRecord
    run_id: str
    short_id: str
    name: str
    status: str
    status_note: str
    started_utc: str
    ended_utc: str | None
    host: str
    tags: dict[str, str]
    energy_j: float
    rel_uncertainty: float
    provenance: str
    facility_energy_j: float
    duration_s: float
    carbon_g: float
    cost: float | None  # None when no price was configured
    currency: str
    carbon_source: str
    pue: float
    units: tuple[UnitFigure, ...]
    devices: tuple[DeviceRow, ...]
    phases: tuple[PhaseRow, ...]
    metrics: tuple[Metric, ...]
    power: tuple[PowerSeries, ...]
    spans: tuple[PhaseSpan, ...]
    cumulative_t_s: Any
    cumulative_j: Any
    budgets: tuple[BudgetMark, ...]
    forecasts: tuple[ForecastPoint, ...]
    forecast_note: str
    intensity: IntensityView
    environment: EnvironmentView
    notes: list[str] = field(default_factory=list)
    sample_count: int = 0
    # the co-load the run ran under (hardware/coload.py): its summary, and the CPUs other
    # processes (steal included) kept busy per window of about a second, at the windows' middles
    coload: CoLoadSummary | None = None
    coload_t_s: tuple[float, ...] = ()
    coload_cores: tuple[float, ...] = ()

    @property
    def band_j(self) -> float:
        return self.energy_j * self.rel_uncertainty

    @property
    def coload_line(self) -> str:
        """The headline's co-load line, in words ("" when it was not measured)."""
        if self.coload is None:
            return ""
        if self.coload.disturbed:
            return (
                f"Co-load: {self.coload.describe()}. Its figures say as much about the machine as about "
                "the run: compare it only with runs measured on a quiet machine."
            )
        return f"Co-load: {self.coload.describe()}."


def run_view(
    record: RunRecord,
    series: SampleSeries,
    forecasts: Sequence[ForecastRow],
    coload: Sequence[CoLoadWindow] = (),
) -> RunView:
    """Everything a run's report shows, from its ledger record, its samples as the ledger reads
    them for a chart (`Ledger.power_series(run_id, POWER_BUCKETS)`), its forecasts and its
    co-load windows (`Ledger.coload(run_id)`)."""
    start, snap = record.start, record.snapshot
    env = start.environment if isinstance(start.environment, dict) else {}
    config: dict[str, Any] = env["config"] if isinstance(env.get("config"), dict) else {}
    t0 = start.started_at
    maxima = _device_maxima(env)
    duration = snap.duration_s if math.isfinite(snap.duration_s) and snap.duration_s > 0 else 0.0
    devices = tuple(
        DeviceRow(
            device=d.device,
            kind=d.kind.value,
            energy_j=d.energy_j,
            share=d.energy_j / snap.energy_j if snap.energy_j > 0 else math.nan,
            provenance=d.provenance.value,
            rel_uncertainty=d.rel_uncertainty,
            mean_power_w=d.energy_j / duration if duration > 0 else math.nan,
            max_power_w=maxima.get(d.device, (None, ""))[0],
            max_source=maxima.get(d.device, (None, _no_max_reason(d.device, env)))[1],
        )
        for d in snap.devices
    )
    cost = run_cost(record)
    power = tuple(_power_series(d, t0) for d in series.devices)
    cumulative_t, cumulative_j = _cumulative(series.devices, t0)
    forecast_points, forecast_note = _forecasts(forecasts, record)
    notes = []
    if snap.provenance is Provenance.SIMULATED:
        notes.append("simulated meters: these figures come from synthetic power traces, not from hardware")
    view = RunView(
        record=record,
        run_id=start.run_id,
        short_id=start.run_id[:8],
        name=start.name,
        status=record.status,
        status_note=_status_note(record),
        started_utc=iso_utc(t0)[:19].replace("T", " ") + " UTC",
        ended_utc=None if record.ended_at is None else iso_utc(record.ended_at)[:19].replace("T", " ") + " UTC",
        host=start.host,
        tags=dict(start.tags),
        energy_j=snap.energy_j,
        rel_uncertainty=snap.rel_uncertainty,
        provenance=snap.provenance.value,
        facility_energy_j=snap.facility_energy_j,
        duration_s=snap.duration_s,
        carbon_g=snap.carbon_g,
        cost=cost,
        currency=snap.currency,
        carbon_source=snap.carbon_source,
        pue=snap.pue,
        units=_units(snap.counters, snap.energy_j),
        devices=devices,
        phases=phase_rows(record),
        metrics=seed_metrics(
            devices=[(d.device, d.energy_j, d.mean_power_w, d.max_power_w, d.max_source) for d in devices],
            duration_s=snap.duration_s,
            energy_j=snap.energy_j,
            facility_energy_j=snap.facility_energy_j,
            pue=snap.pue,
            heat_reuse_fraction=_config_float(config, "heat_reuse_fraction"),
        ),
        power=power,
        spans=phase_spans(series.phases, t0, series.interval_s),
        cumulative_t_s=cumulative_t,
        cumulative_j=cumulative_j,
        budgets=_budgets(env, snap.counters, cumulative_t, cumulative_j, snap, forecasts),
        forecasts=forecast_points,
        forecast_note=forecast_note,
        intensity=_intensity(config, snap, cumulative_t, t0),
        environment=_environment(env, start.host),
        notes=notes,
        sample_count=series.rows,
        coload=snap.coload,
        coload_t_s=tuple(w.t - w.span_s / 2 - t0 for w in coload),
        coload_cores=tuple(w.cores for w in coload),
    )
    return view


# -- devices, units, phases -------------------------------------------------------------------


def _config_float(config: dict[str, Any], key: str) -> float | None:
    raw = config.get(key)
    if raw in (None, "", "None"):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _device_maxima(env: dict[str, Any]) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    for meter in env.get("meters") or ():
        if not isinstance(meter, dict):
            continue
        for device, peak in (meter.get("max_power_w") or {}).items():
            try:
                out[str(device)] = (float(peak["watts"]), str(peak.get("source", "")))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _no_max_reason(device: str, env: dict[str, Any]) -> str:
    meters = [m for m in env.get("meters") or () if isinstance(m, dict) and device in (m.get("devices") or ())]
    if not meters:
        return "no maximum recorded (run recorded before greenai kept device maxima)"
    if "max_power_w" not in meters[0]:
        return "no maximum recorded (run recorded before greenai kept device maxima)"
    return f"{meters[0].get('name', 'its meter')} knows no maximum for this device"


def _units(counters: dict[str, float], energy_j: float) -> tuple[UnitFigure, ...]:
    out = []
    for name, count in sorted(counters.items()):
        if name.startswith(COUNTER_PREFIX + ".") or not math.isfinite(count):
            continue
        per = energy_j / count if count > 0 and energy_j > 0 else None
        out.append(UnitFigure(name, count, per, 1000.0 / per if per else None))
    return tuple(out)


def phase_rows(record: RunRecord) -> tuple[PhaseRow, ...]:
    """Phases as a tree in depth-first order (largest first), each with its nested phases
    rolled up (`tracking.phases.inclusive_totals`, the one rule for a phase's totals);
    `(no phase)` last."""
    snap = record.snapshot
    rel = {d.device: d.rel_uncertainty for d in snap.devices}
    prov = {d.device: d.provenance for d in snap.devices}
    finite = [p for p in snap.phases if math.isfinite(p.energy_j)]
    totals = inclusive_totals(finite)
    exclusive: dict[str, float] = defaultdict(float)
    for p in finite:
        exclusive[p.phase] += p.energy_j
    children: dict[str, list[str]] = defaultdict(list)
    for path in totals:
        children[path.rpartition(SEPARATOR)[0] if path != NO_PHASE else ""].append(path)
    rows: list[PhaseRow] = []

    def visit(path: str, depth: int) -> None:
        total = totals[path]
        devs = total.energy_j_by_device
        energy = total.energy_j
        active = [d for d, j in devs.items() if j > 0] or list(devs)
        weakest = max((prov[d] for d in active if d in prov), key=lambda p: p.rank, default=Provenance.ESTIMATED)
        band = sum(j * rel.get(d, 0.0) for d, j in devs.items())
        rows.append(
            PhaseRow(
                path=path,
                name=path.rpartition(SEPARATOR)[2] if path != NO_PHASE else NO_PHASE,
                depth=depth,
                energy_j=energy,
                exclusive_j=exclusive.get(path, 0.0),
                duration_s=total.duration_s,
                calls=total.calls,
                share=energy / snap.energy_j if snap.energy_j > 0 else math.nan,
                provenance=weakest.value,
                rel_uncertainty=band / energy if energy > 0 else 0.0,
            )
        )
        for child in sorted(children.get(path, ()), key=lambda c: -totals[c].energy_j):
            visit(child, depth + 1)

    for top in sorted(children.get("", ()), key=lambda c: (c == NO_PHASE, -totals[c].energy_j)):
        visit(top, 0)
    return tuple(rows)


# -- series ------------------------------------------------------------------------------------


def _power_series(d: DeviceSeries, t0: float) -> PowerSeries:
    t = np.asarray(d.t, dtype=float) - t0
    return PowerSeries(d.device, d.kind.value, d.provenance.value, t, np.asarray(d.power_w, dtype=float), d.rows)


def _cumulative(devices: Sequence[DeviceSeries], t0: float) -> tuple[Any, Any]:
    """The run's energy so far (all devices) over time: each device's cumulative energy
    interpolated at the union of its points' times, summed, then downsampled."""
    if not devices:
        return np.zeros(0), np.zeros(0)
    series = []
    for d in devices:
        t = np.asarray(d.t, dtype=float) - t0
        series.append((t, np.nan_to_num(np.asarray(d.energy_j, dtype=float))))
    grid = np.unique(np.concatenate([t for t, _ in series]))
    total = np.zeros_like(grid)
    for t, e in series:
        total += np.interp(grid, np.concatenate(([0.0], t)), np.concatenate(([0.0], e)))
    return minmax(grid, total, LINE_BUCKETS)


def phase_spans(buckets: Sequence[PhaseBucket], t0: float, interval_s: float) -> tuple[PhaseSpan, ...]:
    """Spans of time each phase held, from the phases the sample rows of each time bucket named
    (each row names the phase that held most of its sampling interval; the ledger gives, per
    bucket, each phase's rows and first and last time). Within a bucket, phases whose times do
    not interleave follow one another; phases that interleave are one mixed span, shared by
    their rows. Phases that alternate faster than the sampler (a forward, a backward and an
    optimizer step within 100 ms) come out as spans shorter than a few sampling intervals; runs
    of those are merged into one span labelled with all of them, so the shading shows what the
    sampler (and the chart's buckets) can resolve and no more."""
    raw: list[list[Any]] = []  # [start, end, phase, or {phase: rows} for a mixed bucket]
    previous = t0
    for bucket in buckets:
        shares = bucket.phases
        if all(a.last_t < b.first_t for a, b in zip(shares, shares[1:], strict=False)):
            for share in shares:
                if raw and raw[-1][2] == share.phase and abs(raw[-1][1] - previous) < 1e-9:
                    raw[-1][1] = share.last_t
                else:
                    raw.append([previous, share.last_t, share.phase])
                previous = share.last_t
        else:
            named = {s.phase: s.rows for s in shares if s.phase is not None}
            raw.append([previous, bucket.end_t, named or None])
            previous = bucket.end_t
    if not raw:
        return ()
    interval = interval_s if math.isfinite(interval_s) and interval_s > 0 else DEFAULT_INTERVAL_S
    short = SHORT_SPAN_INTERVALS * max(interval, 1e-6)
    merged: list[list[Any]] = []  # [start, end, {phase: seconds} or None, made of short spans]
    for start, end, phase in raw:
        last = merged[-1] if merged else None
        if phase is None:
            merged.append([start, end, None, False])
        elif isinstance(phase, dict):  # phases interleaved within one bucket: shared by their rows
            rows = sum(phase.values())
            seconds = {k: (end - start) * v / rows for k, v in phase.items()}
            if last is not None and last[3]:
                last[1] = end
                for k, v in seconds.items():
                    last[2][k] = last[2].get(k, 0.0) + v
            else:
                merged.append([start, end, seconds, True])
        elif end - start < short and last is not None and last[3]:
            last[1] = end  # short spans run together into one mixed span
            last[2][phase] = last[2].get(phase, 0.0) + end - start
        else:
            merged.append([start, end, {phase: end - start}, end - start < short])
    # a short span followed by long ones stays its own span; coalesce for the drawing budget
    while len(merged) > MAX_PHASE_SPANS:
        merged = _halve(merged)
    spans = []
    for start, end, shares, _ in merged:
        if shares is None:
            continue
        names = tuple(sorted(shares, key=lambda k: -shares[k]))
        label = names[0] if len(names) == 1 else " / ".join(names)
        spans.append(PhaseSpan(start - t0 if start >= t0 else 0.0, end - t0, label, names))
    return tuple(spans)


def _halve(spans: list[list[Any]]) -> list[list[Any]]:
    """Merge neighbouring spans pairwise (keeping the time shares), halving their number."""
    out: list[list[Any]] = []
    for i in range(0, len(spans), 2):
        pair = spans[i : i + 2]
        start, end = pair[0][0], pair[-1][1]
        shares: dict[str, float] | None = None
        for _, _, part, _ in pair:
            if part is not None:
                shares = dict(shares or {})
                for k, v in part.items():
                    shares[k] = shares.get(k, 0.0) + v
        out.append([start, end, shares, True])
    return out


# -- forecasts and budgets --------------------------------------------------------------------
def _plan_progress(record: RunRecord, plan: dict[str, Any]) -> float | None:
    """How far through its plan the run got (its progress counter over the planned steps, or
    its epochs over the planned epochs), or None when the ledger does not say."""
    counters = record.snapshot.counters
    steps, epochs = plan.get("planned_steps"), plan.get("planned_epochs")
    if isinstance(steps, (int, float)) and steps > 0:
        done = counters.get(str(plan.get("progress_counter") or "steps"))
        return done / steps if done is not None else None
    if isinstance(epochs, (int, float)) and epochs > 0 and "epochs" in counters:
        return counters["epochs"] / epochs
    return None


def _why_no_forecast(record: RunRecord) -> str:
    """Why a run has no recorded forecast, as far as the ledger tells (the tracker's own
    reason, `Tracker.forecast_reason`, is not stored)."""
    plan = (record.start.environment or {}).get("plan")
    if not isinstance(plan, dict):
        return "no forecast: the run had no plan (planned_steps or planned_epochs)"
    progress = _plan_progress(record, plan)
    if progress is not None and progress < MIN_PROGRESS:
        # rounded down: 4.6 % must not read "at 5 %, before the 5 % a forecast needs"
        done = math.floor(progress * 1000) / 10
        return f"no forecast was recorded: the run ended at {done:g}% of its plan, before the {MIN_PROGRESS:.0%} a forecast needs"
    coload = record.snapshot.coload
    if coload is not None and coload.disturbed:
        return (
            "no forecast was recorded: the machine was busy while the run ran (co-load above), and a forecast "
            "is made only once part of a run has been measured on a quiet machine"
        )
    return (
        "no forecast was recorded: the run had a plan, but never enough steps for a steady per-step energy "
        "(too few steps counted, or too few samples between them)"
    )


def _forecasts(rows: Sequence[ForecastRow], record: RunRecord) -> tuple[tuple[ForecastPoint, ...], str]:
    if not rows:
        return (), _why_no_forecast(record)
    actual = record.snapshot.energy_j
    completed = record.status == RunStatus.COMPLETED
    points = tuple(
        ForecastPoint(
            made_at_s=r.made_at_s,
            progress=r.progress,
            energy_j=r.energy_j,
            low_j=r.energy_low_j,
            high_j=r.energy_high_j,
            error=(r.energy_j - actual) / actual if completed and actual > 0 else None,
            held=(r.energy_low_j <= actual <= r.energy_high_j) if completed else None,
        )
        for r in rows
    )
    if completed:
        held = sum(1 for p in points if p.held)
        note = f"the ~95 % band held the final total in {held} of {len(points)} forecasts"
    else:
        note = f"the run is {record.status}: its total is not the planned run's, so forecasts are not scored"
    return points, note


def _budgets(
    env: dict[str, Any],
    counters: dict[str, float],
    cum_t: Any,
    cum_j: Any,
    snap: Any,
    forecasts: Sequence[ForecastRow],
) -> tuple[BudgetMark, ...]:
    marks = []
    carbon_per_j = snap.carbon_g / snap.energy_j if snap.energy_j > 0 else 0.0
    for spec in env.get("budgets") or ():
        if not isinstance(spec, dict):
            continue
        action = str(spec.get("action", "warn"))
        for quantity in ("energy_kwh", "carbon_g", "time_s"):
            limit = spec.get(quantity)
            if limit is None:
                continue
            limit = float(limit)
            fired = action if counters.get(f"{COUNTER_PREFIX}.{action}.{quantity}", 0) > 0 else None
            limit_j = limit * J_PER_KWH if quantity == "energy_kwh" else None
            at_s, how = None, ""
            if fired:
                at_s, how = _crossing(quantity, limit, cum_t, cum_j, carbon_per_j)
                if at_s is None and spec.get("on_forecast"):
                    at_s, how = _forecast_crossing(quantity, limit, forecasts, carbon_per_j)
            on = " (or on forecast)" if spec.get("on_forecast") else ""
            marks.append(
                BudgetMark(f"{action} at {quantity}={limit:g}{on}", quantity, limit, limit_j, fired, at_s, how)
            )
    return tuple(marks)


def _crossing(quantity: str, limit: float, cum_t: Any, cum_j: Any, carbon_per_j: float) -> tuple[float | None, str]:
    if quantity == "time_s":
        return limit, "at its time limit"
    if not len(cum_t):
        return None, ""
    values = cum_j / J_PER_KWH if quantity == "energy_kwh" else cum_j * carbon_per_j
    over = np.flatnonzero(values > limit)
    if not len(over):
        return None, ""
    how = "where the energy so far passed it" if quantity == "energy_kwh" else "where the carbon so far passed it"
    if quantity == "carbon_g":
        how += " (carbon so far taken as energy so far x the run's mean gCO2e/J)"
    return float(cum_t[over[0]]), how


def _forecast_crossing(
    quantity: str, limit: float, forecasts: Sequence[ForecastRow], carbon_per_j: float
) -> tuple[float | None, str]:
    for f in forecasts:
        low = {"energy_kwh": f.energy_low_j / J_PER_KWH, "carbon_g": f.energy_low_j * carbon_per_j}.get(quantity)
        if low is not None and low > limit:
            return f.made_at_s, "at the first recorded forecast whose lower bound passed it"
    return None, ""


# -- carbon intensity, environment -------------------------------------------------------------


def _intensity(config: dict[str, Any], snap: Any, cum_t: Any, t0: float) -> IntensityView:
    spec = str(config.get("intensity") or "")
    kwh = snap.facility_energy_j / J_PER_KWH if math.isfinite(snap.facility_energy_j) else 0.0
    mean = snap.carbon_g / kwh if kwh > 0 else None
    if len(cum_t) == 0:
        return IntensityView(snap.carbon_source, spec, None, None, mean, False, "the run has no samples")
    t = np.linspace(float(cum_t[0]), float(cum_t[-1]), min(LINE_BUCKETS, max(len(cum_t), 2)))
    try:  # as the tracker charged it: a trace that ended during the run held at its last value
        source = HeldIntensity.started(configured_intensity(spec), t0, warn=False)
        g = np.array([source.intensity_at(t0 + float(x)) for x in t])
    except (GreenAIError, OSError, ValueError) as e:
        return IntensityView(snap.carbon_source, spec, None, None, mean, False, f"cannot rebuild the series: {e}")
    varies = bool(np.nanmax(g) - np.nanmin(g) > 1e-9) if len(g) else False
    note = (
        "a time series, followed sample by sample (carbon = facility kWh x intensity at each interval's midpoint)"
        if varies
        else "constant over the run"
    )
    held = source.held()
    if held:
        note += f"; the trace {held}, as the run was charged"
    return IntensityView(snap.carbon_source, spec, t, g, mean, varies, note)


def _environment(env: dict[str, Any], host: str) -> EnvironmentView:
    cpu: dict[str, Any] = env["cpu"] if isinstance(env.get("cpu"), dict) else {}
    meters = tuple(m for m in env.get("meters") or () if isinstance(m, dict))
    gpus = [m for m in meters if str(m.get("name", "")).startswith("nvml") or "gpu" in " ".join(m.get("devices", []))]
    unavailable = tuple(u for u in env.get("unavailable") or () if isinstance(u, dict))
    if gpus:
        gpu = "; ".join(str(m.get("detail", "")) for m in gpus)
    else:
        why = next((u.get("reason") for u in unavailable if u.get("name") == "nvml"), None)
        gpu = f"none in use ({why})" if why else "none in use"
    hypervisor = cpu.get("hypervisor")
    rows = (
        ("host", str(env.get("host") or host)),
        ("platform", str(env.get("platform", "unknown"))),
        (
            "CPU",
            f"{cpu.get('model', 'unknown')}; {_count(cpu.get('usable_cpus'))} usable CPUs"
            + (
                "; under a hypervisor"
                if hypervisor is True
                else f"; under a hypervisor ({hypervisor})"
                if hypervisor
                else ""
            ),
        ),
        ("GPU", gpu),
        ("Python", str(env.get("python", "unknown"))),
        ("torch", str(env.get("torch") or "not imported by the tracked code")),
        ("greenai", str(env.get("greenai", "unknown"))),
    )
    return EnvironmentView(rows, meters, unavailable)


def _count(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "?"


def _status_note(record: RunRecord) -> str:
    status = record.status
    if status == RunStatus.INCOMPLETE:
        return (
            "the process died without ending the run (killed, or the machine stopped): "
            "figures are up to its last flush to the ledger"
        )
    if status == RunStatus.INTERRUPTED:
        return "ended early but cleanly (a signal, Ctrl-C or a stop budget)"
    if status == RunStatus.FAILED:
        return "the tracked code raised, or the tracked command exited non-zero"
    if status == RunStatus.RUNNING:
        return "still running: figures are up to its last flush"
    return ""
