from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
from ledger_factories import make_samples, make_snapshot, make_start, raw

from greenai.errors import LedgerError, RunNotFoundError
from greenai.ledger import Ledger, default_ledger_path
from greenai.ledger.records import RunSnapshot, RunStatus
from greenai.ledger.schema import MIGRATIONS
from greenai.meters.base import Provenance


def test_round_trip_of_every_field(ledger: Ledger) -> None:
    start = make_start()
    snapshot = make_snapshot(250.0)
    samples = make_samples(start.started_at, 7)
    before = time.time()
    ledger.begin_run(start)
    ledger.flush(start.run_id, snapshot, samples)
    after = time.time()

    record = ledger.get_run(start.run_id)
    assert record.start == start
    assert record.snapshot == snapshot
    assert record.status == RunStatus.RUNNING
    assert record.ended_at is None
    assert before <= record.updated_at <= after
    assert ledger.samples(start.run_id) == samples

    final = make_snapshot(300.0, counters={"samples": 2560.0}, provenance=Provenance.MEASURED)
    more = make_samples(start.started_at + 1, 3, energy0=samples[-1].energy_j)
    ledger.end_run(start.run_id, RunStatus.COMPLETED, after + 5.5, final, more)

    ended = ledger.get_run(start.run_id)
    assert ended.status == RunStatus.COMPLETED
    assert ended.ended_at == after + 5.5
    assert ended.snapshot == final
    assert ledger.samples(start.run_id) == samples + more


def test_begun_run_reads_back_with_zero_totals(ledger: Ledger) -> None:
    start = make_start()
    ledger.begin_run(start)
    record = ledger.get_run(start.run_id)
    assert record.status == RunStatus.RUNNING
    assert record.snapshot == RunSnapshot(
        duration_s=0.0,
        energy_j=0.0,
        rel_uncertainty=0.0,
        provenance=Provenance.ESTIMATED,
        facility_energy_j=0.0,
        carbon_g=0.0,
        cost=0.0,
        currency="",
        pue=1.0,
    )
    assert ledger.samples(start.run_id) == []


def test_flush_replaces_totals_and_appends_samples(ledger: Ledger) -> None:
    start = make_start()
    ledger.begin_run(start)
    first = make_samples(start.started_at, 4)
    ledger.flush(start.run_id, make_snapshot(10.0), first)
    second = make_samples(start.started_at + 0.4, 4, energy0=60.0)
    smaller = make_snapshot(70.0, devices=make_snapshot().devices[:1], phases=(), counters={"steps": 3.0})
    ledger.flush(start.run_id, smaller, second)

    record = ledger.get_run(start.run_id)
    assert record.snapshot == smaller
    assert [d.device for d in record.snapshot.devices] == ["cpu:0"]
    assert record.snapshot.phases == ()
    assert record.snapshot.counters == {"steps": 3.0}
    assert ledger.samples(start.run_id) == first + second


def test_nan_figures_do_not_fail_a_flush(ledger: Ledger) -> None:
    start = make_start()
    ledger.begin_run(start)
    ledger.flush(start.run_id, make_snapshot(5.0, carbon_g=math.nan, rel_uncertainty=math.inf), [])
    snap = ledger.get_run(start.run_id).snapshot
    assert math.isnan(snap.carbon_g)
    assert snap.rel_uncertainty == math.inf
    assert snap.energy_j == 5.0


def test_writes_to_unknown_runs_and_bad_statuses_are_refused(ledger: Ledger) -> None:
    with pytest.raises(RunNotFoundError):
        ledger.flush("0" * 32, make_snapshot(), [])
    start = make_start()
    ledger.begin_run(start)
    with pytest.raises(LedgerError, match="UNIQUE"):
        ledger.begin_run(start)
    with pytest.raises(ValueError, match="running"):
        ledger.end_run(start.run_id, RunStatus.RUNNING, time.time(), make_snapshot())
    assert ledger.get_run(start.run_id).status == RunStatus.RUNNING
    assert ledger.samples(start.run_id) == []


def test_prefix_lookup(ledger: Ledger) -> None:
    for run_id in ("abc111", "abc222", "def333"):
        ledger.begin_run(make_start(run_id=run_id))
    assert ledger.get_run("abc1").start.run_id == "abc111"
    assert ledger.get_run("def333").start.run_id == "def333"
    with pytest.raises(LedgerError, match=r"ambiguous.*abc(111|222), abc(111|222)"):
        ledger.get_run("abc")
    with pytest.raises(RunNotFoundError, match="zzz"):
        ledger.get_run("zzz")
    with pytest.raises(RunNotFoundError):
        ledger.get_run("")
    with pytest.raises(RunNotFoundError):
        ledger.samples("abc")  # samples() takes a full id only


def test_delete_cascades_to_every_child_table(ledger: Ledger, db_path: Path) -> None:
    keep, drop = make_start(), make_start()
    for start in (keep, drop):
        ledger.begin_run(start)
        ledger.flush(start.run_id, make_snapshot(), make_samples(start.started_at, 5))

    assert ledger.delete_run(drop.run_id[:10]) == drop.run_id

    with pytest.raises(RunNotFoundError):
        ledger.get_run(drop.run_id)
    conn = raw(db_path)
    for table, per_run in (
        ("tags", 2),
        ("devices", 2),
        ("phases", 2),
        ("counters", 2),
        ("samples", 5),
    ):
        counts = dict(conn.execute(f"SELECT run_id, count(*) FROM {table} GROUP BY run_id"))
        assert counts == {keep.run_id: per_run}, table
    conn.close()
    assert ledger.get_run(keep.run_id).snapshot == make_snapshot()


def test_list_runs_newest_first_with_filters(ledger: Ledger) -> None:
    t0 = time.time() - 100
    starts = [make_start(name="a" if i % 2 else "b", started_at=t0 + i) for i in range(5)]
    for start in starts:
        ledger.begin_run(start)
    ledger.end_run(starts[1].run_id, RunStatus.FAILED, t0 + 50, make_snapshot(1.0))

    ids = [r.start.run_id for r in ledger.list_runs()]
    assert ids == [s.run_id for s in reversed(starts)]
    assert [r.start.run_id for r in ledger.list_runs(limit=2)] == ids[:2]
    assert [r.start.run_id for r in ledger.list_runs(name="a")] == [
        starts[3].run_id,
        starts[1].run_id,
    ]
    failed = ledger.list_runs(status=RunStatus.FAILED)
    assert [r.start.run_id for r in failed] == [starts[1].run_id]
    assert failed[0].snapshot == make_snapshot(1.0)
    assert [r.start.run_id for r in ledger.list_runs(since=t0 + 3)] == ids[:2]


def test_wal_mode_schema_version_and_app_marker(ledger: Ledger, db_path: Path) -> None:
    conn = raw(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert conn.execute("SELECT value FROM greenai_meta WHERE key = 'app'").fetchone() == ("greenai",)
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "samples_run_t" in indexes
    conn.close()


def test_threads_share_one_ledger(ledger: Ledger) -> None:
    starts = [make_start() for _ in range(4)]

    def work(start_index: int) -> None:
        start = starts[start_index]
        ledger.begin_run(start)
        for k in range(25):
            ledger.flush(start.run_id, make_snapshot(float(k)), make_samples(start.started_at + k, 4))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for start in starts:
        assert len(ledger.samples(start.run_id)) == 100
        assert ledger.get_run(start.run_id).snapshot.energy_j == 24.0


def test_closed_ledger_refuses_use(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.begin_run(make_start(run_id="r1"))
    with pytest.raises(LedgerError, match="closed"):
        ledger.get_run("r1")
    ledger.close()  # idempotent
    with Ledger(db_path) as reopened:
        assert reopened.get_run("r1").start.run_id == "r1"


def test_default_ledger_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GREENAI_LEDGER", str(tmp_path / "x.db"))
    assert default_ledger_path() == tmp_path / "x.db"
    monkeypatch.delenv("GREENAI_LEDGER")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_ledger_path() == tmp_path / "data" / "greenai" / "ledger.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_ledger_path() == tmp_path / "home" / ".local" / "share" / "greenai" / "ledger.db"
