"""Shape-preserving downsampling: every output point is an input point, extremes survive."""

from __future__ import annotations

import numpy as np
import pytest

from greenai.reports.downsample import minmax


def test_minmax_keeps_each_buckets_first_lowest_highest_and_last():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.05, 0.15, 100_000))
    y = rng.normal(100, 5, len(t))
    y[12_345], y[67_890] = 1_000.0, -50.0  # one spike each way
    td, yd = minmax(t, y, 500)
    assert len(td) <= 4 * 500
    assert td[0] == t[0] and td[-1] == t[-1] and yd[0] == y[0] and yd[-1] == y[-1]
    assert yd.max() == 1_000.0 and yd.min() == -50.0
    assert np.all(np.diff(td) > 0)  # in time order, no duplicates
    index = np.searchsorted(t, td)
    assert np.array_equal(t[index], td) and np.array_equal(y[index], yd)  # input points only
    # every bucket's extremes are there
    edges = np.linspace(t[0], t[-1], 501)
    for lo, hi in zip(edges[:-1:50], edges[1::50]):
        inside = (t >= lo) & (t < hi)
        kept = (td >= lo) & (td < hi)
        assert y[inside].max() == yd[kept].max() and y[inside].min() == yd[kept].min()


def test_short_series_are_returned_unchanged_and_gaps_are_skipped():
    t, y = np.arange(10.0), np.arange(10.0)
    assert minmax(t, y, 5)[0] is not None and len(minmax(t, y, 5)[0]) == 10
    gappy = np.concatenate([np.arange(0, 100, 0.1), np.arange(500, 600, 0.1)])
    td, _ = minmax(gappy, np.sin(gappy), 100)
    assert not ((td > 100) & (td < 500)).any()
    with pytest.raises(ValueError):
        minmax(t, y[:3], 5)


def test_points_at_one_time_are_reduced_whatever_nans_they_hold():
    t = np.full(10, 5.0)
    td, yd = minmax(t, np.full(10, np.nan), 2)  # all NaN: nanargmin would raise
    assert len(td) == 2 and np.isnan(yd).all()
    y = np.full(10, np.nan)
    y[3], y[6] = 7.0, -1.0
    td, yd = minmax(t, y, 2)
    assert len(td) == 4 and yd[1] == 7.0 and yd[2] == -1.0 and np.isnan(yd[0]) and np.isnan(yd[-1])
