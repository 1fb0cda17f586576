"""What a live run's page is sent as the run flushes: the samples written since its last poll.

A page is drawn from the ledger's downsampled read of the run (`Ledger.power_series`: per device,
each time bucket's first, lowest, highest and last sample, aggregated by SQLite from the
overview it keeps, so a run of a million samples per device is a few thousand rows whatever its
length) and remembers where that read ended (the largest rowid of the run's rows, its `cursor`).
A live page then asks for the rows written after its cursor: the same read, `after=cursor`,
which returns every new row when a poll brings few and the same shape-preserving reduction
(`LIVE_BUCKETS` buckets) when it brings many (a page left in the background).
"""

from __future__ import annotations

import math
from typing import Any

from greenai.ledger.series import SampleSeries

LIVE_BUCKETS = 500  # a live poll bringing more than 4x this many rows per device is downsampled too


def live_payload(series: SampleSeries, t0: float) -> list[dict[str, Any]]:
    """New points per device for a live page: times since the run's start, power and
    cumulative energy."""
    return [
        {
            "device": d.device,
            "kind": d.kind.value,
            "provenance": d.provenance.value,
            "t": [round(t - t0, 6) for t in d.t],
            "power_w": [_finite(x) for x in d.power_w],
            "energy_j": [_finite(x) for x in d.energy_j],
        }
        for d in series.devices
    ]


def last_energy(series: SampleSeries) -> dict[str, float]:
    """Each device's cumulative energy at its last point with one (a live page adds new rows'
    energy on top of it)."""
    out = {}
    for d in series.devices:
        finite = [e for e in d.energy_j if math.isfinite(e)]
        if finite:
            out[d.device] = finite[-1]
    return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
