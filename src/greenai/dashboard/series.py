"""A run's samples for the dashboard: read into numpy, downsampled on the server, extended as a
live run flushes.

A run of a million samples per device cannot be drawn, nor sent, point by point. Its samples
are read into numpy arrays per device, then reduced with the reports' own shape-preserving
downsampling (`reports.downsample.minmax`: each time bucket's first, lowest, highest and
last point), so the report's figures are computed from a few thousand rows that draw the
same lines (`SeriesCache.load`, whose rows go to `reports.model.run_view`).

Reading is the slow part: SQLite hands Python every row (about a second per million rows on
a quiet core, only numbers cross: see `read_rows`). So `SeriesCache` keeps what was read
per run and, on the next request, reads only the rows written since: rows are taken by
`rowid` past a cursor (the samples table's largest rowid when the last read was made, in
the same read transaction), which is also how a live page asks for "what is new since I
looked". A finished run's reduced rows are kept and its arrays dropped; a running run keeps
its arrays (bounded by `max_rows` in all) so that each flush costs only its own rows.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greenai.ledger.records import RunRecord, RunStatus, SampleRow
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.reports.downsample import minmax
from greenai.reports.model import POWER_BUCKETS

LIVE_BUCKETS = 500  # a live poll bringing more than 4x this many rows per device is downsampled too


@dataclass
class DeviceSeries:
    """The samples read of one device of one run, in time order."""

    device: str
    kind: DeviceKind
    provenance: Provenance
    t: Any  # float64 unix times
    power_w: Any
    energy_j: Any  # cumulative since the run started

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True)
class NewRows:
    """Rows read in one go (all of a run's, or those written after a cursor), per device."""

    cursor: int
    devices: dict[str, DeviceSeries]

    @property
    def rows(self) -> int:
        return sum(len(d) for d in self.devices.values())


@dataclass
class RunSeries:
    """What has been read of a run's samples, and where to read on from."""

    run_id: str
    cursor: int  # the samples table's largest rowid when last read
    devices: dict[str, DeviceSeries] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # rows per device
    reduced: list[SampleRow] | None = None  # kept for a finished run whose arrays were dropped
    final: bool = False  # the run had ended when last read: nothing more will come

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Loaded:
    """What a page draws a run from: reduced rows, the run's own row counts, and the cursor
    a live page polls from."""

    samples: list[SampleRow]
    rows: int
    counts: dict[str, int]
    cursor: int


def read_rows(store: Ledger, run_id: str, devices: Sequence[Any] = (), after: int | None = None) -> NewRows:
    """The run's sample rows (all, or those with rowid > `after`) and the table's largest
    rowid, read in one transaction so that the next read can start where this one ended.

    Only numbers cross into Python: each row's device comes as its index among the run's
    devices (`devices`: the run's DeviceTotals, with .device, .kind and .provenance), so a
    million rows cost a million small tuples and no strings. A device not among them (one
    that appeared since the run's last flush of totals) is looked up and the rows read
    again. Phases are not read here: see `phases_at`."""
    known = [_Device(d.device, _kind(d.kind), _weakest([d.provenance])) for d in devices]

    def work(conn: sqlite3.Connection) -> tuple[int, list[tuple]]:
        cur = conn.cursor()
        cur.row_factory = None  # plain tuples: a million sqlite3.Row objects cost seconds
        params: list[object] = [run_id] if after is None else [after, run_id]
        since = "run_id = ?" if after is None else "rowid > ? AND +run_id = ?"
        rows = _numeric(cur, known, since, params)
        if any(r[1] == -1 for r in rows):
            names = {d.device for d in known}
            for (name,) in cur.execute(f"SELECT DISTINCT device FROM samples WHERE {since}", params).fetchall():
                if _text(name) in names:
                    continue
                kind, prov = cur.execute(
                    "SELECT kind, provenance FROM samples WHERE run_id = ? AND device = ? LIMIT 1", (run_id, name)
                ).fetchone()
                known.append(_Device(_text(name), _kind(kind), _weakest([prov])))
            rows = _numeric(cur, known, since, params)
        top = cur.execute("SELECT max(rowid) FROM samples").fetchone()[0]
        return int(top or 0), rows

    cursor, rows = store.transaction(work, write=False)
    out: dict[str, DeviceSeries] = {}
    if rows:
        a = np.array(rows, dtype=float)  # NULL (a NaN stored) reads as nan
        codes = a[:, 1].astype(np.int64)
        for i, d in enumerate(known):
            idx = np.flatnonzero(codes == i)
            if len(idx):
                out[d.device] = DeviceSeries(d.device, d.kind, d.provenance, a[idx, 0], a[idx, 2], a[idx, 3])
    return NewRows(cursor if after is None else max(cursor, after), out)


@dataclass(frozen=True)
class _Device:
    device: str
    kind: DeviceKind
    provenance: Provenance


def _numeric(cur: sqlite3.Cursor, known: Sequence[_Device], where: str, params: list[object]) -> list[tuple]:
    """(t, device index or -1, power, energy) rows in time order (ties by rowid: the (run_id, t)
    index gives that order without a sort; a read past a cursor walks the table's tail, kept
    on rowid by `+run_id`, and is sorted)."""
    names = [d.device for d in known]
    code = (
        ("CASE device " + " ".join(f"WHEN ? THEN {i}" for i in range(len(names))) + " ELSE -1 END") if names else "-1"
    )
    return cur.execute(
        f"SELECT t, {code}, power_w, energy_j FROM samples WHERE {where} ORDER BY t, rowid", (*names, *params)
    ).fetchall()


def phases_at(store: Ledger, run_id: str, times: Sequence[float], chunk: int = 500) -> dict[float, str | None]:
    """The phase each sampling instant in `times` was recorded under (whichever device's row
    names one), read by index for just those instants."""
    wanted = sorted(set(times))

    def work(conn: sqlite3.Connection) -> dict[float, str | None]:
        if not conn.execute("SELECT 1 FROM pragma_table_info('samples') WHERE name = 'phase'").fetchone():
            return {}  # a ledger read-only at a schema before V4: no phases kept
        found: dict[float, str | None] = {}
        for i in range(0, len(wanted), chunk):
            part = wanted[i : i + chunk]
            for t, phase in conn.execute(
                f"SELECT t, phase FROM samples WHERE run_id = ? AND t IN ({','.join('?' * len(part))})",
                (run_id, *part),
            ):
                if found.get(t) is None:
                    found[t] = None if phase is None else _text(phase)
        return found

    return store.transaction(work, write=False) if wanted else {}


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _kind(value: object) -> DeviceKind:
    try:
        return DeviceKind(value)
    except ValueError:
        return DeviceKind.CPU


def _weakest(values: Any) -> Provenance:
    known = []
    for v in values:
        try:
            known.append(Provenance(v))
        except ValueError:
            continue
    return max(known, key=lambda p: p.rank, default=Provenance.ESTIMATED)


def merge(series: RunSeries, new: NewRows) -> None:
    """Append rows read after `series.cursor`."""
    for name, part in new.devices.items():
        series.counts[name] = series.counts.get(name, 0) + len(part)
        have = series.devices.get(name)
        if have is None:
            series.devices[name] = part
            continue
        t = np.concatenate((have.t, part.t))
        power = np.concatenate((have.power_w, part.power_w))
        energy = np.concatenate((have.energy_j, part.energy_j))
        if len(part.t) and len(have.t) and part.t[0] < have.t[-1]:
            order = np.argsort(t, kind="stable")
            t, power, energy = t[order], power[order], energy[order]
        have.t, have.power_w, have.energy_j = t, power, energy
        have.provenance = max((have.provenance, part.provenance), key=lambda p: p.rank)
    series.cursor = max(series.cursor, new.cursor)


def keep_index(t: Any, y: Any, buckets: int) -> Any:
    """Indices of the points `reports.downsample.minmax` keeps (every point when few)."""
    if len(t) <= 4 * buckets:
        return np.arange(len(t))
    kept_t, _ = minmax(t, np.nan_to_num(y, nan=0.0), buckets)
    return np.unique(np.searchsorted(t, kept_t, side="left"))


def reduce(store: Ledger, series: RunSeries, buckets: int = POWER_BUCKETS) -> list[SampleRow]:
    """Sample rows the report's figures can be drawn from: per device, the points of the
    shape-preserving downsampling of its power (all points of a short series), with their
    cumulative energy and the phase recorded at each. In time order, as the ledger gives them."""
    picked = []
    for d in series.devices.values():
        idx = keep_index(d.t, d.power_w, buckets)
        picked.append((d, d.t[idx].tolist(), d.power_w[idx].tolist(), d.energy_j[idx].tolist()))
    phases = phases_at(store, series.run_id, [x for _, t, _, _ in picked for x in t])
    rows = [
        SampleRow(t[i], d.device, d.kind, p[i], e[i], d.provenance, phases.get(t[i]))
        for d, t, p, e in picked
        for i in range(len(t))
    ]
    rows.sort(key=lambda s: s.t)
    return rows


class SeriesCache:
    """Reduced samples per run, read incrementally (see the module's docstring). Thread-safe:
    one lock per run, so a slow first read of one run does not hold up another's."""

    def __init__(self, max_rows: int = 6_000_000, max_runs: int = 64) -> None:
        self.max_rows = max_rows
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, RunSeries] = OrderedDict()
        self._run_locks: dict[str, threading.Lock] = {}

    def load(self, store: Ledger, record: RunRecord) -> Loaded:
        """The run's reduced rows, read on from where the last read of it ended."""
        run_id = record.start.run_id
        with self._run_lock(run_id):
            series = self._get(run_id)
            if series is not None and series.final and series.reduced is not None:
                return Loaded(series.reduced, series.rows, dict(series.counts), series.cursor)
            if series is None or series.reduced is not None:
                new = read_rows(store, run_id, record.snapshot.devices)
                series = RunSeries(run_id, new.cursor)
            else:
                known = [*record.snapshot.devices, *(d for n, d in series.devices.items() if n not in _names(record))]
                new = read_rows(store, run_id, known, after=series.cursor)
            merge(series, new)
            reduced = reduce(store, series)
            if record.status != RunStatus.RUNNING:  # nothing more will come: keep the reduced rows only
                series.final, series.reduced, series.devices = True, reduced, {}
            self._put(series)
            return Loaded(reduced, series.rows, dict(series.counts), series.cursor)

    def _run_lock(self, run_id: str) -> threading.Lock:
        with self._lock:
            return self._run_locks.setdefault(run_id, threading.Lock())

    def _get(self, run_id: str) -> RunSeries | None:
        with self._lock:
            series = self._runs.get(run_id)
            if series is not None:
                self._runs.move_to_end(run_id)
            return series

    def _put(self, series: RunSeries) -> None:
        with self._lock:
            self._runs[series.run_id] = series
            self._runs.move_to_end(series.run_id)
            while len(self._runs) > self.max_runs or (
                len(self._runs) > 1 and sum(_held(s) for s in self._runs.values()) > self.max_rows
            ):
                old, _ = self._runs.popitem(last=False)
                self._run_locks.pop(old, None)


def _names(record: RunRecord) -> set[str]:
    return {d.device for d in record.snapshot.devices}


def _held(series: RunSeries) -> int:
    return sum(len(d) for d in series.devices.values()) + len(series.reduced or ())


def live_payload(new: NewRows, t0: float, buckets: int = LIVE_BUCKETS) -> list[dict[str, Any]]:
    """New rows per device for a live page: times since the run's start, power and cumulative
    energy, downsampled when a poll brings many (a page left in the background)."""
    out = []
    for d in new.devices.values():
        idx = keep_index(d.t, d.power_w, buckets)
        out.append(
            {
                "device": d.device,
                "kind": d.kind.value,
                "provenance": d.provenance.value,
                "t": [round(float(x) - t0, 6) for x in d.t[idx]],
                "power_w": [_finite(x) for x in d.power_w[idx]],
                "energy_j": [_finite(x) for x in d.energy_j[idx]],
            }
        )
    return out


def _finite(value: Any) -> float | None:
    x = float(value)
    return x if math.isfinite(x) else None
