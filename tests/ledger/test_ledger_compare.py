from __future__ import annotations

import pytest
from ledger_factories import make_snapshot, make_start

from greenai.ledger import compare_runs
from greenai.ledger.records import RunRecord, RunSnapshot, RunStatus
from greenai.meters.base import Provenance


def _record(snapshot: RunSnapshot, status: str = RunStatus.COMPLETED, name: str = "run") -> RunRecord:
    start = make_start(name=name)
    return RunRecord(
        start=start,
        status=status,
        ended_at=start.started_at + 1,
        updated_at=start.started_at + 1,
        snapshot=snapshot,
    )


def test_ratios_to_the_baseline() -> None:
    base = _record(
        make_snapshot(
            1000.0,
            duration_s=10.0,
            carbon_g=4.0,
            cost=0.5,
            counters={"samples": 100.0, "steps": 10.0},
        ),
        name="fp32",
    )
    half = _record(
        make_snapshot(
            500.0,
            duration_s=12.5,
            carbon_g=2.0,
            cost=0.25,
            counters={"samples": 200.0, "tokens": 7.0},
        ),
        name="int8",
    )
    result = compare_runs([base, half])

    assert result.baseline.name == "fp32"
    assert result.counters == ("samples",)  # the only counter both runs have
    assert result.baseline.ratio == {
        "energy_j": 1.0,
        "duration_s": 1.0,
        "carbon_g": 1.0,
        "cost": 1.0,
        "j_per_samples": 1.0,
    }
    other = result.runs[1]
    assert (other.energy_j, other.duration_s, other.carbon_g, other.cost) == (
        500.0,
        12.5,
        2.0,
        0.25,
    )
    assert other.j_per == {"samples": 2.5}
    assert result.baseline.j_per == {"samples": 10.0}
    assert other.ratio == {
        "energy_j": 0.5,
        "duration_s": 1.25,
        "carbon_g": 0.5,
        "cost": 0.5,
        "j_per_samples": 0.25,
    }
    assert result.notes == ()


def test_notes_for_mixed_provenance_currency_and_unfinished_runs() -> None:
    measured = _record(make_snapshot(100.0, provenance=Provenance.MEASURED))
    estimated = _record(
        make_snapshot(80.0, provenance=Provenance.ESTIMATED, currency="USD"),
        status=RunStatus.INCOMPLETE,
    )
    result = compare_runs([measured, estimated])
    assert result.notes == (
        "comparing measured with estimated energy",
        "costs are in different currencies; cost ratios are not given",
        f"run {estimated.start.run_id[:8]} is incomplete; its totals may be partial",
    )
    assert result.runs[1].ratio["cost"] is None
    assert result.runs[1].ratio["energy_j"] == 0.8


def test_zero_baseline_and_zero_counts_give_no_ratio() -> None:
    empty = _record(make_snapshot(0.0, counters={"samples": 0.0}))
    some = _record(make_snapshot(50.0, counters={"samples": 5.0}))
    result = compare_runs([empty, some])
    assert result.baseline.j_per == {"samples": None}
    assert result.runs[1].j_per == {"samples": 10.0}
    assert result.runs[1].ratio["energy_j"] is None
    assert result.runs[1].ratio["j_per_samples"] is None


def test_no_runs_is_an_error() -> None:
    with pytest.raises(ValueError):
        compare_runs([])


def test_the_coload_legend_names_the_thresholds_the_runs_were_judged_by() -> None:
    from greenai.hardware.coload import DISTURBED_CORES
    from greenai.ledger.compare import band_legend, coload_legend

    assert f'"disturbed": {DISTURBED_CORES:g} CPUs or more (the setting coload_threshold_cores)' in coload_legend()
    assert '"disturbed": 0.5 CPUs or more (the setting coload_threshold_cores)' in coload_legend([0.5, 0.5])
    both = coload_legend([0.5, 0.3])
    assert '"disturbed": 0.3, 0.5 CPUs or more (the setting coload_threshold_cores of each run)' in both
    assert band_legend([0.5]).endswith(coload_legend([0.5]))
