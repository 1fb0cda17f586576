"""Apportioning of interval energy between phases (pure arithmetic, exact)."""

from __future__ import annotations

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
