"""The ledger keeps each run's co-load (summary and windows), exports it, and comparisons give
each ratio its uncertainty (meters' bands, spread of repeats) and say which runs were
measured on a busy machine."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import sqlite3

import pytest
from ledger_factories import make_snapshot, make_start

from greenai.hardware.coload import CoLoadSummary, CoLoadWindow
from greenai.ledger import compare_runs, export_runs, record_to_dict
from greenai.ledger.compare import repeat_groups
from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger

BUSY = CoLoadSummary(1.9, 2.0, 0.0, 0.0, busy_share=0.85, threshold_cores=0.5, seconds=20.0)
QUIET = CoLoadSummary(0.05, 0.3, 0.0, 0.01, busy_share=0.0, threshold_cores=0.5, seconds=20.0)


def store(
    ledger: Ledger,
    energy_j: float,
    name: str = "train",
    coload: CoLoadSummary | None = QUIET,
    tags: dict[str, str] | None = None,
    **kw,
) -> str:
    start = make_start(name=name)
    if tags is not None:
        start = dataclasses.replace(start, tags=tags)
    ledger.begin_run(start)
    windows = [CoLoadWindow(start.started_at + i, 1.0, coload.median_cores, 0.0) for i in range(3)] if coload else []
    ledger.end_run(
        start.run_id,
        RunStatus.COMPLETED,
        start.started_at + 20,
        make_snapshot(energy_j, coload=coload, **kw),
        coload=windows,
    )
    return start.run_id


def test_the_summary_and_the_windows_are_stored_and_read_back(ledger: Ledger, db_path) -> None:
    run_id = store(ledger, 100.0, coload=BUSY)
    record = ledger.get_run(run_id)
    assert record.snapshot.coload == BUSY and record.snapshot.coload.disturbed
    assert [w.others_cores for w in ledger.coload(run_id)] == [1.9, 1.9, 1.9]
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT disturbed, coload_median_cores FROM runs").fetchone() == (1, 1.9)
    conn.close()
    data = record_to_dict(record)
    assert data["coload"]["disturbed"] is True and data["coload"]["median_cores"] == 1.9
    assert data["coload"]["summary"].startswith("disturbed: other processes kept 0.5 or more CPUs busy for 85%")
    out = io.StringIO()
    export_runs([record], "csv", out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["coload_median_cores"], row["disturbed"]) == ("1.9", "true")
    ledger.delete_run(run_id)  # the windows go with the run
    assert ledger.coload(run_id) == []


def test_a_run_without_coload_reads_back_as_none(ledger: Ledger) -> None:
    run_id = store(ledger, 100.0, coload=None)
    assert ledger.get_run(run_id).snapshot.coload is None
    assert record_to_dict(ledger.get_run(run_id))["coload"] is None


def test_each_ratio_carries_the_meters_bands_and_a_difference_inside_them_is_noise(ledger: Ledger) -> None:
    base, near, far = (
        store(ledger, e, name=n, rel_uncertainty=0.1) for e, n in ((100.0, "a"), (95.0, "b"), (50.0, "c"))
    )
    result = compare_runs([ledger.get_run(r) for r in (base, near, far)])
    assert result.baseline.band == {}
    near_band, far_band = result.runs[1].band["energy_j"], result.runs[2].band["energy_j"]
    assert near_band.meters_rel == pytest.approx(math.hypot(0.1, 0.1)) and near_band.repeats_rel is None
    assert near_band.within_noise and not far_band.within_noise
    assert near_band.describe() == "±14% (meters ±14%): within the noise"
    assert result.runs[1].band["duration_s"].rel is None  # time: no meter band, no repeats
    assert result.notes == ()  # quiet runs: nothing to say


def test_repeats_of_a_run_give_the_spread_of_its_figures(ledger: Ledger) -> None:
    base = [store(ledger, e, name="fp32", rel_uncertainty=0.0) for e in (100.0, 110.0, 90.0)]
    other = [store(ledger, e, name="int8", rel_uncertainty=0.0) for e in (95.0, 105.0)]
    store(ledger, 10.0, name="fp32", tags={"model": "other"})  # same name, other tags: not a repeat
    failed = make_start(name="fp32")
    ledger.begin_run(failed)
    ledger.end_run(failed.run_id, RunStatus.FAILED, failed.started_at + 1, make_snapshot(1.0))  # nor a failed run
    records = [ledger.get_run(base[0]), ledger.get_run(other[0])]
    groups = repeat_groups(ledger, records)
    assert sorted(r.snapshot.energy_j for r in groups[base[0]]) == [90.0, 100.0, 110.0]
    assert len(groups[other[0]]) == 2
    result = compare_runs(records, groups)
    b = result.runs[1].band["energy_j"]
    assert b.repeats == (2, 3) and b.repeats_rel == pytest.approx(math.hypot(10 / 2 / 100, 20 / 2 / 100))
    assert result.runs[1].ratio["energy_j"] == pytest.approx(0.95) and b.within_noise
    assert result.runs[1].repeats == 2 and result.baseline.repeats == 3
    assert "repeats ±11%, 2 and 3 runs" in b.describe()


def test_a_comparison_with_a_disturbed_run_says_so_in_plain_words(ledger: Ledger) -> None:
    quiet, busy = store(ledger, 20.6, name="quiet"), store(ledger, 413.0, name="busy", coload=BUSY)
    result = compare_runs([ledger.get_run(quiet), ledger.get_run(busy)])
    assert result.runs[1].disturbed and not result.baseline.disturbed
    (note,) = result.notes
    assert note.startswith(f"run {busy[:8]} (busy) was measured on a busy machine, disturbed:")
    assert "85% of the run (median 1.90" in note and "compare runs measured on a quiet machine" in note


CPU_MODEL = {
    "name": "cpu-model",
    "devices": ["cpu:0"],
    "provenance": "estimated",
    "detail": "2 usable CPUs, 0.74-3.5 W each",
    "max_power_w": {},
}


def model_run(ledger: Ledger, energy_j: float, name: str, host: str = "node-1", meters=(CPU_MODEL,)) -> str:
    """A run measured by the CPU model alone (±50 %), as its environment and totals record it."""
    from greenai.ledger.records import DeviceTotal
    from greenai.meters.base import DeviceKind, Provenance

    start = dataclasses.replace(make_start(name=name, host=host), environment={"meters": [dict(m) for m in meters]})
    ledger.begin_run(start)
    snapshot = make_snapshot(
        energy_j,
        coload=QUIET,
        rel_uncertainty=0.5,
        provenance=Provenance.ESTIMATED,
        devices=(DeviceTotal("cpu:0", DeviceKind.CPU, energy_j, Provenance.ESTIMATED, 0.5),),
    )
    ledger.end_run(start.run_id, RunStatus.COMPLETED, start.started_at + 20, snapshot)
    return start.run_id


def test_runs_on_the_same_meters_are_judged_without_the_meters_systematic_error(ledger: Ledger) -> None:
    # two runs on one machine's CPU model (±50 % each): its error scales both alike and cancels in
    # the ratio; quadrature (±71 %) called every ratio from 0.59 to 1.71 "within the noise"
    base, cheaper, close = (model_run(ledger, e, n) for e, n in ((100.0, "a"), (60.0, "b"), (97.0, "c")))
    result = compare_runs([ledger.get_run(r) for r in (base, cheaper, close)])
    cheaper_band, close_band = result.runs[1].band["energy_j"], result.runs[2].band["energy_j"]
    assert cheaper_band.same_meters and cheaper_band.meters_rel == pytest.approx(0.1 * math.hypot(0.5, 0.5))
    assert not cheaper_band.within_noise and close_band.within_noise
    assert cheaper_band.describe() == "±7% (meters ±7%, same meters): beyond the noise"


def test_repeats_widen_the_same_meters_band_by_their_spread(ledger: Ledger) -> None:
    base = [model_run(ledger, e, "fp32") for e in (100.0, 70.0, 130.0)]  # ±30 %: a noisy job
    other = model_run(ledger, 80.0, "int8")
    records = [ledger.get_run(base[0]), ledger.get_run(other)]
    band = compare_runs(records, repeat_groups(ledger, records)).runs[1].band["energy_j"]
    assert band.same_meters and band.repeats_rel == pytest.approx(0.3)
    assert band.rel == pytest.approx(math.hypot(0.1 * math.hypot(0.5, 0.5), 0.3)) and band.within_noise


def test_runs_on_different_meters_keep_both_bands_in_quadrature(ledger: Ledger) -> None:
    base = model_run(ledger, 100.0, "a")
    elsewhere = model_run(ledger, 60.0, "b", host="node-2")
    other_meter = model_run(ledger, 60.0, "c", meters=({**CPU_MODEL, "detail": "8 usable CPUs, TDP 65 W"},))
    unknown = model_run(ledger, 60.0, "d", meters=())  # the environment names no meters
    result = compare_runs([ledger.get_run(r) for r in (base, elsewhere, other_meter, unknown)])
    for r in result.runs[1:]:
        band = r.band["energy_j"]
        assert not band.same_meters and band.meters_rel == pytest.approx(math.hypot(0.5, 0.5))
        assert band.within_noise  # 0.6 is inside ±71 %: different meters' errors do not cancel
