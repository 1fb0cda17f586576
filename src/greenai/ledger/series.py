"""A run's samples read for drawing: per device, a shape-preserving reduction made by SQLite.

A run sampled at 10 Hz for a day has 864,000 rows per device; a chart 1,000 pixels wide shows
its shape, not its rows. `read_series` returns, per device, the first, lowest, highest and last
sample of each of about `buckets` time buckets (M4: Jugel et al., "M4: A Visualization-Oriented
Time Series Data Aggregation", PVLDB 7(10), 2014; the rule of `reports.downsample.minmax`), so
every peak and both ends are kept, as plain lists; and, per bucket, the phases that held it.
SQLite aggregates: Python sees at most a few rows per bucket, never one object per sample row of
a long series.

Where the aggregates come from:

- **the overview** (schema v9): for every run, device and fixed-width bucket of 1, 10, 100 and
  1000 s, the bucket's row count and its first, lowest, highest and last sample
  (`sample_overview`), and each phase's row count and first and last time (`phase_overview`),
  kept by a trigger on the samples table as rows are inserted, whoever inserts them. A read
  takes the coarsest width that still gives `buckets` buckets over the run and merges groups of
  k neighbouring ones (k <= 10 below 1000 s buckets): its cost follows `buckets`, not the run's
  length (about 10 x `buckets` rows per device at most, for runs up to 11.6 days).
- **the samples table**: read as they are when no device has more than 4 x `buckets` rows (the
  overview counts them); aggregated with one GROUP BY pass, then each bucket's first, last,
  lowest and highest sample found through the (run_id, t) index, for a run shorter than
  `buckets` / 2 seconds with more rows than that, for the rows written after a cursor (a live
  page's poll), and for runs the overview does not cover whole (`runs.overview` = 0: begun
  before v9) or a ledger read read-only at an older schema.

Buckets over the samples are `min(B - 1, floor((t - t0) x B / span))` with t0 and span the read's
first sample time and time span (all devices), the rule `reports.downsample.minmax` follows; over
the overview they are groups of whole overview buckets (aligned to multiples of the width), so
each is exact. Among equal values, the earlier sample stands for a bucket's lowest or highest.

The cursor a read returns is the largest rowid of the run's own rows it read, not the table's:
the samples table has no AUTOINCREMENT, so once the newest rows are deleted (another run's,
`runs delete`) SQLite gives their rowids to the next rows inserted, and a cursor at the table's
old top would skip the run's next rows. The run's own rows are never deleted while it is read,
so every row it gets later has a larger rowid than its newest one. A cursor past the table's
largest rowid (made up) reads on from the table's end.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from greenai.errors import RunNotFoundError
from greenai.meters.base import DeviceKind, Provenance

# the widths the overview is kept at (schema v9's trigger); coarsest first
OVERVIEW_WIDTHS_S = (1000, 100, 10, 1)
# a series of at most this many points per bucket is returned whole (minmax's rule)
POINTS_PER_BUCKET = 4

_OVERVIEW_COLUMNS = (
    "device, bucket, n, first_t, first_w, first_j, last_t, last_w, last_j, min_t, min_w, min_j, max_t, max_w, max_j"
)


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """One device's points: each bucket's first, lowest, highest and last sample, in time
    order (every sample when there are few). `rows`: the sample rows they stand for."""

    device: str
    kind: DeviceKind
    provenance: Provenance  # the weakest of the device's (its total's, as the run recorded it)
    t: list[float]  # unix times
    power_w: list[float]  # NaN where a NaN was recorded
    energy_j: list[float]  # cumulative since the run started, at each point
    rows: int


@dataclass(frozen=True, slots=True)
class PhaseShare:
    """A phase's rows in one bucket: how many (all devices), its first and last sample time."""

    phase: str | None  # None: outside any phase
    rows: int
    first_t: float
    last_t: float


@dataclass(frozen=True, slots=True)
class PhaseBucket:
    """The phases sample rows named within one bucket, by first time."""

    start_t: float  # the bucket's first and last sample time
    end_t: float
    phases: tuple[PhaseShare, ...]


@dataclass(frozen=True, slots=True)
class SampleSeries:
    """A run's samples, downsampled (all of them, or those written after a cursor)."""

    run_id: str
    devices: tuple[DeviceSeries, ...]
    phases: tuple[PhaseBucket, ...]
    rows: int  # sample rows read (all devices)
    # the largest rowid of the run's rows read (the table's largest if the run had none): a later
    # read `after` it gets what is new
    cursor: int
    interval_s: float  # the sampling interval (the span over the busiest device's rows); NaN for < 2 rows
    source: str  # "samples" or "overview (N s buckets)"

    @property
    def counts(self) -> dict[str, int]:
        return {d.device: d.rows for d in self.devices}


def read_series(
    conn: sqlite3.Connection, run_id: str, buckets: int, after: int | None = None, phases: bool = True
) -> SampleSeries:
    """The run's samples (all, or those with rowid > `after`) as at most about 4 x `buckets`
    points per device, and the phases per bucket (`phases`). RunNotFoundError for an unknown
    run id (a full id: resolve prefixes first)."""
    if buckets < 1:
        raise ValueError("buckets must be >= 1")
    if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
        raise RunNotFoundError(f"no run {run_id} in the ledger")
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples
    top = int(cur.execute("SELECT max(rowid) FROM samples").fetchone()[0] or 0)
    if after is None:  # each a single min() or max() over the (run_id, t) index: one seek
        first = cur.execute("SELECT min(t) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
        last = cur.execute("SELECT max(t) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
        # the run's newest row: its latest, the last written of those (a tracker writes in time order)
        newest = cur.execute(
            "SELECT rowid FROM samples WHERE run_id = ? ORDER BY t DESC, rowid DESC LIMIT 1", (run_id,)
        ).fetchone()
        cursor = int(newest[0]) if newest is not None else top
    else:
        after = min(max(after, 0), top)  # a cursor past every row (made up, or a row deleted) reads on from the end
        first, last, newest = cur.execute(
            "SELECT min(t), max(t), max(rowid) FROM samples WHERE rowid > ? AND +run_id = ?", (after, run_id)
        ).fetchone()
        cursor = int(newest) if newest is not None else after
    t0, t1 = _number(first), _number(last)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        return SampleSeries(run_id, (), (), 0, cursor, math.nan, "samples")
    span = max(t1 - t0, 0.0)
    width: int | None = None
    counts: dict[str, int] | None = None
    if after is None and _covered(cur, run_id):
        counts = _overview_counts(cur, run_id)
        if any(n > POINTS_PER_BUCKET * buckets for n in counts.values()):
            width = _overview_width(span, buckets)
    if width is not None:
        k = max(1, math.ceil(span / (buckets * width)))
        points = _from_overview(cur, run_id, width, k)
        tallies = _phases_from_overview(cur, run_id, width, k) if phases else []
        source = f"overview ({width} s buckets)"
    else:
        key = f"min({buckets - 1}, CAST((t - ?) * ? AS INTEGER))"
        scale = buckets / span if span > 0 else 0.0
        points, tallies = _from_samples(cur, run_id, after, key, [t0, scale], buckets, counts, phases)
        source = "samples"
    devices = _devices(cur, run_id, points)
    busiest = max((d.rows for d in devices), default=0)
    interval = span / (busiest - 1) if busiest > 1 else math.nan
    return SampleSeries(
        run_id=run_id,
        devices=devices,
        phases=_phase_buckets(tallies),
        rows=sum(d.rows for d in devices),
        cursor=cursor,
        interval_s=interval,
        source=source,
    )


# -- the overview ------------------------------------------------------------------------------


def _covered(cur: sqlite3.Cursor, run_id: str) -> bool:
    """Whether the overview holds every sample of the run (it was begun at schema v9 or later)."""
    if cur.execute("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'overview'").fetchone() is None:
        return False  # a ledger read read-only at a schema before v9
    found = cur.execute("SELECT overview FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return found is not None and found[0] == 1


def _overview_counts(cur: sqlite3.Cursor, run_id: str) -> dict[str, int]:
    """Sample rows per device, from the overview's widest buckets (a few rows)."""
    widest = OVERVIEW_WIDTHS_S[0]
    rows = cur.execute(
        "SELECT device, sum(n) FROM sample_overview WHERE run_id = ? AND width_s = ? GROUP BY device", (run_id, widest)
    )
    return {device: int(n) for device, n in rows}


def _overview_width(span: float, buckets: int) -> int | None:
    """The coarsest overview width giving `buckets` buckets over `span`; the finest when it gives
    at least half of them (a run of 500 to 1,000 s at 1,000 buckets); None: read the samples."""
    fits = [w for w in OVERVIEW_WIDTHS_S if w * buckets <= span]
    if fits:
        return fits[0]
    finest = OVERVIEW_WIDTHS_S[-1]
    return finest if 2 * finest * math.floor(span / finest) >= buckets else None


def _from_overview(cur: sqlite3.Cursor, run_id: str, width: int, k: int) -> dict[str, _Points]:
    """Each device's points from its overview rows at `width`, k neighbouring buckets merged."""
    rows = cur.execute(
        f"SELECT {_OVERVIEW_COLUMNS} FROM sample_overview WHERE run_id = ? AND width_s = ? ORDER BY device, bucket",
        (run_id, width),
    )
    out: dict[str, _Points] = {}
    group: list = []  # [device, group, rows, first, lowest, highest, last]; each point (t, w, j)
    for name, bucket, n, ft, fw, fj, lt, lw, lj, mint, minw, minj, maxt, maxw, maxj in rows:
        device = _text(name)
        g = bucket // k
        low = (mint, minw, minj) if _is_number(minw) else None
        high = (maxt, maxw, maxj) if _is_number(maxw) else None
        if group and group[0] == device and group[1] == g:
            group[2] += n
            group[6] = (lt, lw, lj)
            if low is not None and (group[4] is None or low[1] < group[4][1]):
                group[4] = low
            if high is not None and (group[5] is None or high[1] > group[5][1]):
                group[5] = high
            continue
        if group:
            _add_group(out, group)
        group = [device, g, n, (ft, fw, fj), low, high, (lt, lw, lj)]
    if group:
        _add_group(out, group)
    return out


def _add_group(out: dict[str, _Points], group: list) -> None:
    """A group's points in time order (the first and last bound the lowest and highest), each once."""
    device, _, n, first, low, high, last = group
    points = out.get(device)
    if points is None:
        points = out[device] = _Points()
    points.rows += n
    if low is None or high is None:
        middle = [p for p in (low, high) if p is not None]
    else:
        middle = [low, high] if low[0] <= high[0] else [high, low]
    previous = None
    for t, w, j in (first, *middle, last):
        if t != previous:
            points.add(t, w, j, count=False)
            previous = t


def _phases_from_overview(cur: sqlite3.Cursor, run_id: str, width: int, k: int) -> list[tuple]:
    """(group, phase, rows, first t, last t) from the phase overview at `width`."""
    rows = cur.execute(
        "SELECT bucket, phase, n, first_t, last_t FROM phase_overview WHERE run_id = ? AND width_s = ?"
        " ORDER BY bucket, phase",
        (run_id, width),
    )
    merged: dict[tuple, list] = {}
    for bucket, phase, n, first_t, last_t in rows:
        key = (bucket // k, phase)
        have = merged.get(key)
        if have is None:
            merged[key] = [n, first_t, last_t]
        else:
            have[0] += n
            have[1] = min(have[1], first_t)
            have[2] = max(have[2], last_t)
    return [(g, phase, n, first_t, last_t) for (g, phase), (n, first_t, last_t) in merged.items()]


# -- the samples themselves ---------------------------------------------------------------------


def _from_samples(
    cur: sqlite3.Cursor,
    run_id: str,
    after: int | None,
    key: str,
    key_params: list,
    buckets: int,
    counts: dict[str, int] | None,
    phases: bool,
) -> tuple[dict[str, _Points], list[tuple]]:
    """Each device's points and the phases per bucket, from the sample rows of the run (those
    after rowid `after`). One GROUP BY pass gives, per device, bucket and phase, the rows and
    their first and last time and lowest and highest power; a device with at most 4 x `buckets`
    rows is then read as it is, and for the others each bucket's first, last, lowest and
    highest sample is found through the (run_id, t) index within the bucket's times (ties go to
    the earlier sample, as in minmax). `counts` (rows per device, from the overview): when no
    device has more than 4 x `buckets`, the rows are read as they are, with no pass."""
    where, params = ("run_id = ?", [run_id]) if after is None else ("rowid > ? AND +run_id = ?", [after, run_id])
    few_rows = POINTS_PER_BUCKET * buckets
    with_phase = phases and _has_phase(cur)
    phase = "coalesce(phase, '')" if with_phase else "''"
    out: dict[str, _Points] = {}
    if counts is not None and all(n <= few_rows for n in counts.values()):
        tally: dict[tuple, list] = {}
        k_max, t0, scale = buckets - 1, key_params[0], key_params[1]
        for device, t, w, j, p in cur.execute(
            f"SELECT device, t, power_w, energy_j, {phase} FROM samples WHERE {where} ORDER BY t, rowid", params
        ):
            out.setdefault(_text(device), _Points()).add(t, w, j)
            if with_phase and _is_number(t):
                _tally(tally, (min(k_max, int((t - t0) * scale)), p), 1, t, t)
        return out, [(k, p, n, first, last) for (k, p), (n, first, last) in tally.items()]
    groups: dict[tuple, list] = {}  # (device, bucket) -> [rows, first t, last t, lowest, highest]
    tally = {}
    for device, k, p, n, first, last, low, high in cur.execute(
        f"SELECT device, {key} AS k, {phase} AS p, count(*), min(t), max(t), min(power_w), max(power_w)"
        f" FROM samples WHERE {where} GROUP BY device, k, p",
        (*key_params, *params),
    ):
        _tally(tally, (k, p), n, first, last)
        have = groups.get((device, k))
        if have is None:
            groups[(device, k)] = [n, first, last, low, high]
            continue
        have[0] += n
        have[1], have[2] = min(have[1], first), max(have[2], last)
        if low is not None:
            have[3] = low if have[3] is None else min(have[3], low)
        if high is not None:
            have[4] = high if have[4] is None else max(have[4], high)
    tallies = [(k, p, n, first, last) for (k, p), (n, first, last) in tally.items()] if with_phase else []
    totals: dict[str, int] = {}
    for (device, _), group in groups.items():
        totals[device] = totals.get(device, 0) + group[0]
    few = sorted(d for d, n in totals.items() if n <= few_rows)
    if few:
        for device, t, w, j in cur.execute(
            f"SELECT device, t, power_w, energy_j FROM samples WHERE {where} AND device IN ({','.join('?' * len(few))})"
            " ORDER BY t, rowid",
            (*params, *few),
        ):
            out.setdefault(_text(device), _Points()).add(t, w, j)
    since = "" if after is None else " AND rowid > ?"
    tail = [] if after is None else [after]
    at = f"SELECT rowid, t, power_w, energy_j FROM samples WHERE run_id = ? AND t = ? AND device = ?{since}"
    extreme = (
        "SELECT rowid, t, power_w, energy_j FROM samples WHERE run_id = ? AND t BETWEEN ? AND ? AND device = ?"
        f" AND power_w = ?{since} ORDER BY t, rowid LIMIT 1"
    )
    for (device, _), (_, first, last, low, high) in sorted(
        ((g, v) for g, v in groups.items() if g[0] not in few), key=lambda item: (item[0][0], item[0][1])
    ):
        points = out.get(_text(device))
        if points is None:
            points = out[_text(device)] = _Points(rows=totals[device])
        found = [
            cur.execute(f"{at} ORDER BY rowid LIMIT 1", (run_id, first, device, *tail)).fetchone(),
            cur.execute(f"{at} ORDER BY rowid DESC LIMIT 1", (run_id, last, device, *tail)).fetchone(),
        ]
        for value in (low, high):  # a bucket of NaN powers has no lowest or highest
            if value is not None:
                found.append(cur.execute(extreme, (run_id, first, last, device, value, *tail)).fetchone())
        seen: set[int] = set()
        for rowid, t, w, j in sorted((f for f in found if f is not None), key=lambda f: (_number(f[1]), f[0])):
            if rowid not in seen:
                seen.add(rowid)
                points.add(t, w, j, count=False)
    return out, tallies


def _tally(tally: dict[tuple, list], key: tuple, n: int, first: object, last: object) -> None:
    have = tally.get(key)
    if have is None:
        tally[key] = [n, first, last]
    else:
        have[0] += n
        have[1], have[2] = min(have[1], first), max(have[2], last)


def _has_phase(cur: sqlite3.Cursor) -> bool:
    """Whether the samples keep phases (a ledger read read-only at a schema before v4 does not)."""
    return cur.execute("SELECT 1 FROM pragma_table_info('samples') WHERE name = 'phase'").fetchone() is not None


# -- shared ----------------------------------------------------------------------------------------


class _Points:
    """A device's points as three lists (and the sample rows they stand for)."""

    __slots__ = ("energy_j", "power_w", "rows", "t")

    def __init__(self, rows: int = 0) -> None:
        self.t: list[float] = []
        self.power_w: list[float] = []
        self.energy_j: list[float] = []
        self.rows = rows

    def add(self, t: object, w: object, j: object, count: bool = True) -> None:
        time = _number(t)
        if not math.isfinite(time):
            return  # a damaged row (a time that is not a number) draws nothing
        self.t.append(time)
        self.power_w.append(_number(w))
        self.energy_j.append(_number(j))
        if count:
            self.rows += 1


def _devices(cur: sqlite3.Cursor, run_id: str, points: dict[str, _Points]) -> tuple[DeviceSeries, ...]:
    """DeviceSeries in the order of the run's device totals (then any other device by its
    first time), each with the kind and provenance of its total (or, for a device without one,
    of its first sample row)."""
    known: dict[str, tuple[object, object]] = {}
    for device, kind, provenance in cur.execute(
        "SELECT device, kind, provenance FROM devices WHERE run_id = ? ORDER BY rowid", (run_id,)
    ):
        known.setdefault(_text(device), (kind, provenance))
    order = [d for d in known if d in points]
    order += sorted((d for d in points if d not in known), key=lambda d: points[d].t[0] if points[d].t else math.inf)
    out = []
    for device in order:
        p = points[device]
        if not p.t:
            continue
        meta = known.get(device)
        if meta is None:
            meta = cur.execute(
                "SELECT kind, provenance FROM samples WHERE run_id = ? AND t = ? AND device = ? LIMIT 1",
                (run_id, p.t[0], device),
            ).fetchone() or ("", "")
        out.append(DeviceSeries(device, _kind(meta[0]), _provenance(meta[1]), p.t, p.power_w, p.energy_j, p.rows))
    return tuple(out)


def _phase_buckets(tallies: Sequence[tuple]) -> tuple[PhaseBucket, ...]:
    by_bucket: dict[int, list[PhaseShare]] = {}
    for bucket, phase, n, first_t, last_t in tallies:
        first, last = _number(first_t), _number(last_t)
        if math.isfinite(first) and math.isfinite(last):
            name = _text(phase) if phase not in (None, "") else None
            by_bucket.setdefault(int(bucket), []).append(PhaseShare(name, int(n), first, last))
    out = []
    for bucket in sorted(by_bucket):
        shares = sorted(by_bucket[bucket], key=lambda s: (s.first_t, s.last_t))
        out.append(PhaseBucket(min(s.first_t for s in shares), max(s.last_t for s in shares), tuple(shares)))
    return tuple(sorted(out, key=lambda b: b.start_t))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: object) -> float:
    """A number as SQLite returned it (NULL, a NaN stored, reads as NaN; so does a damaged value)."""
    return float(value) if _is_number(value) else math.nan  # type: ignore[arg-type]


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _kind(value: object) -> DeviceKind:
    try:
        return DeviceKind(value)
    except ValueError:
        return DeviceKind.CPU


def _provenance(value: object) -> Provenance:
    try:
        return Provenance(value)
    except ValueError:
        return Provenance.ESTIMATED
