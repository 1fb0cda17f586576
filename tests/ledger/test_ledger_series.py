"""`Ledger.power_series`: a run's samples read for a chart, downsampled by SQLite (from the samples,
or from the overview the ledger keeps as they are inserted), against the reports' own rule
(`reports.downsample.minmax`) and an M4 computed in numpy over the overview's grid."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from ledger_factories import make_snapshot, make_start, raw

from greenai.errors import RunNotFoundError
from greenai.ledger import Ledger
from greenai.ledger.records import RunStatus, SampleRow
from greenai.ledger.schema import MIGRATIONS, migrate
from greenai.meters.base import DeviceKind, Provenance

np = pytest.importorskip("numpy")

T0 = 1_700_000_000.0


def rows_of(t, power, device: str = "gpu:0", phases=None) -> list[SampleRow]:
    kind = DeviceKind(device.split(":")[0])
    energy = np.cumsum(np.nan_to_num(power)) * 0.1
    return [
        SampleRow(
            float(t[i]),
            device,
            kind,
            float(power[i]),
            float(energy[i]),
            Provenance.SIMULATED,
            None if phases is None else phases[i],
        )
        for i in range(len(t))
    ]


def new_run(ledger: Ledger, samples: list[SampleRow], flushes: int = 3, name: str = "train") -> str:
    start = make_start(name=name, started_at=T0)
    ledger.begin_run(start)
    for part in np.array_split(np.arange(len(samples)), flushes):
        ledger.flush(start.run_id, make_snapshot(), [samples[i] for i in part])
    return start.run_id


def m4(t, y, group) -> np.ndarray:
    """Indices numpy's M4 keeps: per group (nondecreasing ids), the first, the first lowest,
    the first highest (NaN left out) and the last."""
    keep: set[int] = set()
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        keep.update((int(idx[0]), int(idx[-1])))
        finite = idx[~np.isnan(y[idx])]
        if len(finite):
            keep.add(int(finite[np.argmin(y[finite])]))
            keep.add(int(finite[np.argmax(y[finite])]))
    return np.array(sorted(keep))


def test_a_short_run_is_reduced_in_sql_exactly_as_minmax_does(ledger: Ledger) -> None:
    from greenai.reports.downsample import minmax

    rng = np.random.default_rng(7)
    # 360 s at 33 Hz: more rows than 4 a bucket, too short for 500 one-second buckets: aggregated
    # from the samples
    n = 12_000
    t = T0 + 2 + 0.03 * np.arange(n)
    gpu, cpu = 100 + 50 * rng.random(n), 20 + 5 * rng.random(n)
    gpu[4_321], cpu[17] = 900.0, 0.5
    dram = np.round(3 * rng.random(n))  # four values: ties in every bucket go to the earlier sample
    samples = sorted(rows_of(t, gpu) + rows_of(t, cpu, "cpu:0") + rows_of(t, dram, "dram:0"), key=lambda s: s.t)
    run_id = new_run(ledger, samples)
    series = ledger.power_series(run_id, 1000)
    assert series.source == "samples" and series.rows == 3 * n
    assert [d.device for d in series.devices] == ["cpu:0", "gpu:0", "dram:0"]  # the totals' order, then the others
    for d, power in zip(series.devices, (cpu, gpu, dram), strict=True):
        td, pd = minmax(t, power, 1000)
        assert d.rows == n and len(d.t) <= 4 * 1000
        assert np.array_equal(np.array(d.t), td) and np.array_equal(np.array(d.power_w), pd)
        # each point keeps its own cumulative energy
        energy = {s.t: s.energy_j for s in samples if s.device == d.device}
        assert d.energy_j == [energy[x] for x in d.t]
    gpu_points = series.devices[1]
    assert max(gpu_points.power_w) == 900.0 and gpu_points.t[0] == t[0] and gpu_points.t[-1] == t[-1]


def test_a_long_run_is_read_from_the_overview_as_an_m4_of_its_grid(ledger: Ledger) -> None:
    rng = np.random.default_rng(11)
    n = 60_000  # 6,000 s at 10 Hz: 1 s buckets, merged 6 by 6 into 1,000
    t = T0 + 0.35 + 0.1 * np.arange(n)
    power = 100 + 20 * np.sin(np.arange(n) / 700.0) + rng.random(n)
    power[[123, 40_000]] = [2_000.0, -5.0]
    power[[5_000, 5_001, 5_002]] = np.nan  # NaN powers: never a lowest or highest
    steps = np.round(3 * rng.random(n))  # ties in every bucket: the earlier sample stands for them
    samples = sorted(rows_of(t, power) + rows_of(t, steps, "dram:0"), key=lambda s: s.t)
    run_id = new_run(ledger, samples, flushes=7)  # flushes split buckets: the trigger merges them
    series = ledger.power_series(run_id, 1000)
    assert series.source == "overview (1 s buckets)" and series.rows == 2 * n
    d, dram = series.devices
    keep = m4(t, steps, (t / 1).astype(np.int64) // math.ceil((t[-1] - t[0]) / 1000))
    assert np.array_equal(np.array(dram.t), t[keep]) and np.array_equal(np.array(dram.power_w), steps[keep])
    width, k = 1, math.ceil((t[-1] - t[0]) / 1000)
    keep = m4(t, power, (t / width).astype(np.int64) // k)
    assert np.array_equal(np.array(d.t), t[keep])
    assert np.array_equal(np.array(d.power_w), power[keep], equal_nan=True)
    # the peaks, the dip and both ends are kept; the points stand for every row
    assert max(d.power_w) == 2_000.0 and min(d.power_w) == -5.0
    assert (d.t[0], d.t[-1]) == (t[0], t[-1]) and d.rows == n
    assert d.energy_j[-1] == pytest.approx(float(np.nansum(power)) * 0.1)


@pytest.mark.parametrize("buckets", [10, 100, 1000])
@pytest.mark.parametrize("seconds", [500, 20_000, 250_000])
def test_the_output_is_bounded_by_the_buckets_whatever_the_run(ledger: Ledger, buckets: int, seconds: int) -> None:
    n = 20_000
    t = T0 + np.linspace(0, seconds, n)
    power = 50 + 10 * np.sin(np.arange(n) / 37.0) + (np.arange(n) % 13)  # a ragged series: 4 points a bucket
    run_id = new_run(ledger, rows_of(t, power) + rows_of(t, power / 2, "cpu:0"))
    series = ledger.power_series(run_id, buckets)
    assert series.rows == 2 * n and len(series.devices) == 2
    for d in series.devices:
        assert len(d.t) <= 4 * (buckets + 1) and d.t == sorted(d.t)
        assert d.t[0] == t[0] and d.t[-1] == t[-1]
    assert len(series.phases) <= buckets + 1


def test_a_run_with_no_samples_and_an_unknown_run(ledger: Ledger) -> None:
    start = make_start()
    ledger.begin_run(start)
    empty = ledger.power_series(start.run_id, 1000)
    assert (empty.devices, empty.phases, empty.rows) == ((), (), 0)
    assert math.isnan(empty.interval_s)
    ledger.end_run(start.run_id, RunStatus.COMPLETED, T0 + 1, make_snapshot())
    assert ledger.power_series(start.run_id, 1000).rows == 0
    with pytest.raises(RunNotFoundError):
        ledger.power_series("f" * 32, 1000)
    with pytest.raises(ValueError, match="buckets"):
        ledger.power_series(start.run_id, 0)


def test_a_live_run_is_read_on_past_a_cursor(ledger: Ledger) -> None:
    n = 3_000
    t = T0 + 0.1 * np.arange(n)
    power = 100 + np.arange(n) % 50
    samples = rows_of(t, power)
    start = make_start(started_at=T0)
    ledger.begin_run(start)
    ledger.flush(start.run_id, make_snapshot(), samples[:1000])
    first = ledger.power_series(start.run_id, 1000)
    assert first.rows == 1000 and first.cursor > 0
    other = make_start(name="other")
    ledger.begin_run(other)  # another run's rows, written meanwhile, are not this run's
    ledger.flush(other.run_id, make_snapshot(), rows_of(t[:50], power[:50]))
    ledger.flush(start.run_id, make_snapshot(), samples[1000:1010])
    new = ledger.power_series(start.run_id, 500, after=first.cursor)
    (d,) = new.devices
    assert new.rows == 10 and d.t == [s.t for s in samples[1000:1010]]
    assert d.energy_j == [s.energy_j for s in samples[1000:1010]] and new.cursor > first.cursor
    assert ledger.power_series(start.run_id, 500, after=new.cursor).rows == 0
    assert ledger.power_series(start.run_id, 500, after=new.cursor).cursor == new.cursor
    # a page left in the background: many new rows come downsampled, ends and extremes kept
    ledger.flush(start.run_id, make_snapshot(), samples[1010:])
    late = ledger.power_series(start.run_id, 100, after=new.cursor)
    (d,) = late.devices
    assert late.rows == n - 1010 and len(d.t) <= 400
    assert (d.t[0], d.t[-1]) == (samples[1010].t, samples[-1].t) and max(d.power_w) == 149
    # the whole run read again: every row counted, and a device the totals do not name is read too
    ledger.flush(
        start.run_id,
        make_snapshot(),
        [SampleRow(t[-1] + 0.1, "disk:0", DeviceKind.DISK, 2.0, 1.0, Provenance.ESTIMATED)],
    )
    whole = ledger.power_series(start.run_id, 1000)
    assert whole.rows == n + 1 and whole.counts == {"gpu:0": n, "disk:0": 1}
    disk = whole.devices[-1]
    assert (disk.kind, disk.provenance) == (DeviceKind.DISK, Provenance.ESTIMATED)


def test_a_live_read_never_skips_rows_that_reuse_a_deleted_runs_rowids(ledger: Ledger) -> None:
    # the samples table has no AUTOINCREMENT: once the newest rows are deleted, the next rows get
    # their rowids again; a cursor at the table's top then skipped the live run's next rows
    t = T0 + 0.1 * np.arange(300)
    samples = rows_of(t, np.full(300, 100.0))
    live = make_start(started_at=T0)
    ledger.begin_run(live)
    ledger.flush(live.run_id, make_snapshot(), samples[:100])
    other = make_start(name="other")
    ledger.begin_run(other)
    ledger.flush(other.run_id, make_snapshot(), rows_of(t[:50], np.full(50, 5.0)))  # the newest rows
    page = ledger.power_series(live.run_id, 500)
    assert page.rows == 100
    ledger.delete_run(other.run_id)  # the table's top goes back below the page's read
    ledger.flush(live.run_id, make_snapshot(), samples[100:110])  # rowids the other run had
    poll = ledger.power_series(live.run_id, 500, after=page.cursor)
    assert poll.rows == 10 and poll.devices[0].t == [s.t for s in samples[100:110]]
    assert ledger.power_series(live.run_id, 500, after=poll.cursor).rows == 0
    # a cursor past every row (made up) is not kept: the rows written next are read
    made_up = ledger.power_series(live.run_id, 500, after=10**12)
    assert made_up.rows == 0 and made_up.cursor <= poll.cursor
    ledger.flush(live.run_id, make_snapshot(), samples[110:120])
    assert ledger.power_series(live.run_id, 500, after=made_up.cursor).rows == 10


def test_phases_per_bucket(ledger: Ledger) -> None:
    n = 20_000  # 2,000 s: 1 s buckets, merged 2 by 2
    t = T0 + 0.05 + 0.1 * np.arange(n)
    phases = ["train/step" if i < 12_345 else ("eval" if i % 2 else None) for i in range(n)]
    run_id = new_run(ledger, rows_of(t, np.full(n, 10.0), phases=phases))
    series = ledger.power_series(run_id, 1000)
    assert series.source.startswith("overview") and len(series.phases) == 1000
    assert sum(s.rows for b in series.phases for s in b.phases) == n
    assert series.interval_s == pytest.approx(0.1)
    change = next(b for b in series.phases if len(b.phases) > 1 and b.start_t < t[12_345])
    (train, *_) = change.phases
    assert train.phase == "train/step" and train.last_t == t[12_344]
    late = series.phases[-1]
    assert {s.phase for s in late.phases} == {"eval", None}  # interleaved: first and last times overlap


def test_runs_begun_before_the_overview_are_read_from_their_samples(tmp_path: Path) -> None:
    path = tmp_path / "v8.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, MIGRATIONS[:8])
    conn.close()
    n = 20_000
    t = T0 + 0.1 * np.arange(n)
    power = 100 + np.sin(np.arange(n) / 100.0)
    power[777] = 500.0
    with Ledger(path) as ledger:  # migrates to the overview's schema
        old = new_run(ledger, rows_of(t, power), name="old")
        db = raw(path)
        db.execute("UPDATE runs SET overview = 0 WHERE run_id = ?", (old,))  # as if begun at v8
        db.close()
        new = new_run(ledger, rows_of(t, power), name="new")
        legacy, covered = ledger.power_series(old, 1000), ledger.power_series(new, 1000)
    assert legacy.source == "samples" and covered.source.startswith("overview")
    for s in (legacy, covered):
        (d,) = s.devices
        assert s.rows == n and max(d.power_w) == 500.0 and (d.t[0], d.t[-1]) == (t[0], t[-1])
        assert len(d.t) <= 4 * 1001
    # the migration marks the runs it finds as not covered
    path2 = tmp_path / "v8-with-a-run.db"
    conn = sqlite3.connect(path2, isolation_level=None)
    migrate(conn, path2, MIGRATIONS[:8])
    conn.execute(
        "INSERT INTO runs (run_id, name, status, started_at, updated_at, host, pid, provenance)"
        " VALUES ('r1', 'legacy', 'completed', 1.0, 2.0, 'h', 1, 'measured')"
    )
    conn.close()
    Ledger(path2).close()
    db = raw(path2)
    assert db.execute("SELECT overview FROM runs").fetchall() == [(0,)]
    db.close()


def test_deleting_a_run_deletes_its_overview(ledger: Ledger, db_path: Path) -> None:
    n = 5_000
    run_id = new_run(ledger, rows_of(T0 + 0.1 * np.arange(n), np.full(n, 3.0), phases=["a"] * n))
    db = raw(db_path)
    assert db.execute("SELECT sum(n) FROM sample_overview WHERE width_s = 1").fetchone() == (n,)
    ledger.delete_run(run_id)
    assert db.execute("SELECT count(*) FROM sample_overview").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM phase_overview").fetchone() == (0,)
    db.close()
