"""Shape-preserving downsampling of long time series, for reports and the dashboard.

A run sampled at 10 Hz for a day has 864,000 points per device; a chart 1,000 pixels wide can
show at most a few per pixel column. Averaging hides the peaks a reader looks for, and taking
every k-th point drops them at random. `minmax` keeps the shape: it cuts the time span into
equal buckets and keeps, in each, the first, lowest, highest and last point, in time order (the
"M4" aggregation of Jugel et al., "M4: A Visualization-Oriented Time Series Data Aggregation",
PVLDB 7(10), 2014). With one bucket per pixel column the line drawn is the line of the full
series, pixel for pixel. A run's stored samples are reduced by the same rule in SQL when they
are read (`Ledger.power_series`, greenai/ledger/series.py); `minmax` reduces series computed
from them (the run's energy so far, summed over its devices).

It returns the input unchanged when it is already short enough, keeps the first and last
points, and never invents a value: every output point is an input point. It takes and returns
numpy arrays (times need not be evenly spaced but must be sorted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # numpy.ndarray (numpy's own type is awkward to spell for mypy without stubs)


def minmax(t: Array, y: Array, buckets: int) -> tuple[Array, Array]:
    """Keep the first, minimum, maximum and last point of each of `buckets` equal time
    buckets (at most 4 x `buckets` points; fewer where points coincide). NaN values are
    kept out of the minima and maxima but not dropped when they are a bucket's first or last."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError("t and y must be 1-d arrays of the same length")
    if buckets < 1:
        raise ValueError("buckets must be >= 1")
    n = len(t)
    if n <= 4 * buckets:
        return t, y
    span = t[-1] - t[0]
    if span <= 0:  # one bucket: NaN is never its lowest or highest (an all-NaN one keeps its ends)
        low = int(np.argmin(np.where(np.isnan(y), np.inf, y)))
        high = int(np.argmax(np.where(np.isnan(y), -np.inf, y)))
        index = np.unique(np.array([0, low, high, n - 1]))
        return t[index], y[index]
    # bucket of each point: floor((t - t0) x buckets / span), the last one closed (the ledger's
    # SQL reads, greenai/ledger/series.py, compute the same doubles the same way)
    bucket = np.minimum(((t - t[0]) * (buckets / span)).astype(np.int64), buckets - 1)
    edges = np.searchsorted(bucket, np.arange(1, buckets), side="left")
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [n]))
    keep = starts < ends  # empty buckets (gaps in the series) are skipped
    starts, ends = starts[keep], ends[keep]
    # argmin/argmax per bucket with reduceat on values, then locate them inside the bucket
    filled = np.where(np.isnan(y), np.inf, y)
    lows = np.minimum.reduceat(filled, starts)
    filled_hi = np.where(np.isnan(y), -np.inf, y)
    highs = np.maximum.reduceat(filled_hi, starts)
    bucket_of = np.repeat(np.arange(len(starts)), ends - starts)
    is_low = filled == lows[bucket_of]
    is_high = filled_hi == highs[bucket_of]
    # first index per bucket where the value equals the bucket's min (max)
    low_index = _first_true_per_bucket(is_low, starts, ends)
    high_index = _first_true_per_bucket(is_high, starts, ends)
    index = np.concatenate((starts, ends - 1, low_index[low_index >= 0], high_index[high_index >= 0]))
    index = np.unique(index)  # sorted, so in time order
    return t[index], y[index]


def _first_true_per_bucket(mask: Array, starts: Array, ends: Array) -> Array:
    """Index of the first True of `mask` within each [start, end) (-1 where none)."""
    positions = np.flatnonzero(mask)
    found = np.searchsorted(positions, starts, side="left")
    out = np.full(len(starts), -1, dtype=np.int64)
    ok = found < len(positions)
    candidate = positions[np.minimum(found, len(positions) - 1)] if len(positions) else np.zeros(len(starts), int)
    ok &= candidate < ends
    out[ok] = candidate[ok]
    return out
