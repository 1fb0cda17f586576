"""Apportioning of interval energy between phases (pure arithmetic, exact)."""

from __future__ import annotations

import dataclasses

import pytest

from greenai.tracking.phases import NO_PHASE, PhaseApportioner, PhaseTimeline


def test_interval_energy_split_by_time_in_each_phase():
    ap = PhaseApportioner()
    s = 1_000_000_000  # ns per second
    events = [(int(0.25 * s), "fwd", True), (int(0.75 * s), None, False)]
    ap.apportion(0, s, events, {"cpu:0": 8.0, "gpu:0": 4.0})
    assert ap.energy_j[("fwd", "cpu:0")] == pytest.approx(4.0)
    assert ap.energy_j[(NO_PHASE, "cpu:0")] == pytest.approx(4.0)
    assert ap.energy_j[("fwd", "gpu:0")] == pytest.approx(2.0)
    assert ap.duration_s == pytest.approx({"fwd": 0.5, NO_PHASE: 0.5})
    assert ap.calls == {"fwd": 1}


def test_phase_spanning_several_intervals_carries_over():
    ap = PhaseApportioner()
    s = 1_000_000_000
    ap.apportion(0, s, [(s // 2, "train", True)], {"cpu:0": 2.0})
    ap.apportion(s, 2 * s, [], {"cpu:0": 6.0})  # whole interval inside "train"
    assert ap.energy_j[("train", "cpu:0")] == pytest.approx(1.0 + 6.0)
    assert ap.duration_s["train"] == pytest.approx(1.5)


def test_timeline_records_nested_paths_and_drains_in_order():
    tl = PhaseTimeline()
    tl.enter("train")
    tl.enter("forward")
    tl.exit()
    tl.exit()
    events = tl.drain_until(10**30)
    assert [(path, entered) for _, path, entered, *_ in events] == [
        ("train", True),
        ("train/forward", True),
        ("train", False),
        (None, False),
    ]
    assert tl.drain_until(10**30) == []


# -- naming phases: one rule for RunResult, the tuner's phase_share and `runs show` ---------


def _records():
    from greenai.ledger.records import PhaseTotal

    # (path, device, energy, own time, calls): exclusive shares, as the tracker stores them
    rows = [
        ("(no phase)", 1.0, 0.5, 0),
        ("epoch", 1.0, 0.1, 1),
        ("epoch/train_step", 2.0, 0.2, 4),
        ("epoch/train_step/forward", 10.0, 1.0, 4),
        ("epoch/train_step/forward/attention", 5.0, 0.5, 4),
        ("epoch/train_step/backward", 20.0, 2.0, 4),
        ("eval/forward", 3.0, 0.3, 2),
    ]
    return [
        PhaseTotal(path, device, energy * share, own_s, calls)
        for path, energy, own_s, calls in rows
        for device, share in (("cpu:0", 0.75), ("gpu:0", 0.25))
    ]


def test_a_name_names_a_phase_by_its_leaf_its_path_or_its_last_segments():
    from greenai.tracking.phases import in_phase, phase_matches

    assert phase_matches("train_step/forward", "forward")  # leaf, as `runs show` labels it
    assert phase_matches("train_step/forward", "train_step/forward")  # full path
    assert phase_matches("epoch/train_step/forward", "train_step/forward")  # last segments
    assert phase_matches("forward", "forward")
    assert not phase_matches("train_step/forward", "train_step")  # a parent is not its child
    assert not phase_matches("train_step/forward", "ward")  # whole segments only
    assert not phase_matches("train_step_2", "train_step")
    assert in_phase("train_step/forward/attention", "forward")  # nested in a named phase
    assert in_phase("train_step/forward", "train_step")
    assert not in_phase("eval/backward", "forward")


def test_phase_sum_is_inclusive_and_finds_nested_phases_by_name():
    from greenai.tracking.phases import phase_sum

    records = _records()
    forward = phase_sum(records, "forward")  # epoch/train_step/forward (+ attention) and eval/forward
    assert forward.energy_j == pytest.approx(10.0 + 5.0 + 3.0)
    assert forward.energy_j_by_device == pytest.approx({"cpu:0": 18.0 * 0.75, "gpu:0": 18.0 * 0.25})
    assert forward.duration_s == pytest.approx(1.0 + 0.5 + 0.3)  # each path's time once, not per device
    assert forward.calls == 4 + 2  # entries of the named phases, not of their nested ones
    assert forward.paths == ("epoch/train_step/forward", "epoch/train_step/forward/attention", "eval/forward")
    step = phase_sum(records, "train_step")  # a parent includes everything nested in it
    assert step.energy_j == pytest.approx(2.0 + 10.0 + 5.0 + 20.0)
    assert step.duration_s == pytest.approx(0.2 + 1.0 + 0.5 + 2.0)
    assert phase_sum(records, "epoch/train_step/forward").energy_j == pytest.approx(15.0)
    assert phase_sum(records, "eval/forward").energy_j == pytest.approx(3.0)
    missing = phase_sum(records, "optimizer")
    assert (missing.energy_j, missing.duration_s, missing.calls, missing.paths) == (0.0, 0.0, 0, ())


def test_a_name_nested_in_itself_is_counted_once():
    from greenai.ledger.records import PhaseTotal
    from greenai.tracking.phases import phase_sum

    records = [PhaseTotal("block", "cpu:0", 1.0, 0.1, 1), PhaseTotal("block/block", "cpu:0", 2.0, 0.2, 1)]
    assert phase_sum(records, "block").energy_j == pytest.approx(3.0)


def test_inclusive_totals_give_every_parent_its_nested_phases_parent_first():
    from greenai.ledger.records import PhaseTotal
    from greenai.tracking.phases import inclusive_totals

    totals = inclusive_totals(_records())
    assert list(totals) == [
        "(no phase)",
        "epoch",
        "epoch/train_step",
        "epoch/train_step/backward",
        "epoch/train_step/forward",
        "epoch/train_step/forward/attention",
        "eval",  # held no time of its own, still shown with what is nested in it
        "eval/forward",
    ]
    assert totals["epoch"].energy_j == pytest.approx(1.0 + 2.0 + 10.0 + 5.0 + 20.0)
    assert totals["epoch"].calls == 1 and totals["epoch/train_step"].calls == 4
    assert totals["eval"].energy_j == pytest.approx(3.0) and totals["eval"].calls == 0
    assert totals["epoch/train_step/forward"].energy_j == pytest.approx(15.0)  # not eval/forward
    # a sibling whose name extends another's sorts after that one's nested phases
    odd = [PhaseTotal(p, "cpu:0", 1.0, 0.1, 1) for p in ("train", "train-b", "train/forward")]
    assert list(inclusive_totals(odd)) == ["train", "train/forward", "train-b"]


def test_run_result_tuner_and_table_follow_the_same_rule():
    from greenai.ledger.records import DeviceTotal, RunSnapshot
    from greenai.meters.base import DeviceKind, Provenance
    from greenai.tracking.phases import inclusive_totals
    from greenai.tracking.result import RunResult
    from greenai.tune.tuner import phase_share

    records = _records()
    energy = sum(r.energy_j for r in records)
    snapshot = RunSnapshot(
        duration_s=5.0,
        energy_j=energy,
        rel_uncertainty=0.05,
        provenance=Provenance.SIMULATED,
        facility_energy_j=energy,
        carbon_g=0.0,
        cost=0.0,
        currency="",
        devices=(
            DeviceTotal("cpu:0", DeviceKind.CPU, energy * 0.75, Provenance.SIMULATED, 0.05),
            DeviceTotal("gpu:0", DeviceKind.GPU, energy * 0.25, Provenance.SIMULATED, 0.05),
        ),
        phases=tuple(records),
    )
    result = RunResult("id", "run", "completed", snapshot, None, False)
    assert result.phase_energy_j("forward") == pytest.approx(18.0)  # nested, found by its leaf
    assert result.phase_duration_s("forward") == pytest.approx(1.8)
    assert result.phase_energy_j("train_step") == pytest.approx(37.0)  # inclusive
    assert result.phase_energy_j("epoch") == pytest.approx(38.0)
    share = phase_share(snapshot, "forward")
    assert (share.energy_j, share.duration_s) == pytest.approx((18.0, 1.8))
    assert share.devices == ("cpu:0", "gpu:0")
    assert inclusive_totals(records)["epoch/train_step"].energy_j == pytest.approx(result.phase_energy_j("train_step"))


def test_a_name_that_names_no_phase_raises_with_the_known_phases():
    """`phase_energy_j("fwd")` returned 0 J for a phase that does not exist, as if it were free."""
    from greenai.errors import GreenAIError, UnknownPhaseError
    from greenai.ledger.records import RunSnapshot
    from greenai.meters.base import Provenance
    from greenai.tracking.result import RunResult

    records = _records()
    snapshot = RunSnapshot(
        duration_s=5.0,
        energy_j=40.0,
        rel_uncertainty=0.05,
        provenance=Provenance.SIMULATED,
        facility_energy_j=40.0,
        carbon_g=0.0,
        cost=0.0,
        currency="",
        phases=tuple(records),
    )
    result = RunResult("id", "run", "completed", snapshot, None, False)
    assert result.phase_energy_j("forward") == pytest.approx(18.0)
    for call in (result.phase_energy_j, result.phase_duration_s):
        with pytest.raises(UnknownPhaseError) as caught:
            call("fwd")
        assert isinstance(caught.value, KeyError) and isinstance(caught.value, GreenAIError)
        message = str(caught.value)
        assert message.startswith("no phase named 'fwd' in run 'run'; its phases: ")
        assert "epoch/train_step/forward" in message
    empty = RunResult("id", "run", "completed", dataclasses.replace(snapshot, phases=()), None, False)
    with pytest.raises(UnknownPhaseError, match="it has no phases"):
        empty.phase_energy_j("forward")
