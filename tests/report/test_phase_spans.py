"""Phase shading from the phases the ledger tallies per time bucket (`reports.model.phase_spans`)."""

from __future__ import annotations

import pytest

from greenai.ledger.series import PhaseBucket, PhaseShare
from greenai.reports.model import phase_spans

pytest.importorskip("numpy")


def bucket(*shares: tuple[str | None, int, float, float]) -> PhaseBucket:
    parts = tuple(PhaseShare(*s) for s in shares)
    return PhaseBucket(min(p.first_t for p in parts), max(p.last_t for p in parts), parts)


def test_phases_that_follow_one_another_within_a_bucket_keep_their_change():
    buckets = [
        bucket(("train", 100, 0.1, 10.0)),
        bucket(("train", 40, 10.1, 14.0), ("eval", 60, 14.1, 20.0)),
        bucket(("eval", 100, 20.1, 30.0)),
    ]
    spans = phase_spans(buckets, 0.0, 0.1)
    assert [(s.label, s.start_s, s.end_s) for s in spans] == [("train", 0.0, 14.0), ("eval", 14.0, 30.0)]


def test_phases_interleaved_within_a_bucket_are_one_mixed_span_by_their_rows():
    buckets = [
        bucket(("train", 100, 0.1, 10.0)),
        bucket(("train/forward", 30, 10.1, 19.9), ("train/backward", 70, 10.2, 20.0)),
        bucket(("train/forward", 50, 20.1, 29.9), ("train/backward", 50, 20.2, 30.0), (None, 5, 25.0, 25.0)),
        bucket((None, 100, 30.1, 40.0)),
    ]
    spans = phase_spans(buckets, 0.0, 0.1)
    assert [s.label for s in spans] == ["train", "train/backward / train/forward"]
    assert (spans[1].start_s, spans[1].end_s) == (10.0, 30.0)
    assert spans[1].phases == ("train/backward", "train/forward")  # 120 rows against 80


def test_phases_alternating_faster_than_the_sampler_are_merged():
    # a short run read whole: one sampling instant per bucket, the phase changing every instant
    names = ("forward", "backward", "step")
    buckets = [bucket((names[i % 3], 1, 0.1 * (i + 1), 0.1 * (i + 1))) for i in range(60)]
    buckets += [bucket(("eval", 1, 6.0 + 0.1 * (i + 1), 6.0 + 0.1 * (i + 1))) for i in range(40)]
    spans = phase_spans(buckets, 0.0, 0.1)
    assert len(spans) == 2 and len(spans[0].phases) == 3
    assert set(spans[0].phases) == set(names) and spans[-1].label == "eval"
    assert spans[-1].end_s == pytest.approx(10.0)


def test_no_buckets_no_spans():
    assert phase_spans([], 0.0, float("nan")) == ()
