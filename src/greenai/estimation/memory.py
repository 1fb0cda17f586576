"""Memory beyond the caches, measured for calibration.

The micro-benchmarks (microbench.py) stop where an operator's output reaches about 4 MB, so a
model whose tensors run to tens of megabytes (a 4096 x 4096 float32 weight is 64 MiB) would be
predicted by extrapolating rooflines fitted on data the caches held. Two costs appear there
that no micro-benchmark size shows (benchmarks/beyond_cache.py):

- **streaming from DRAM**: an operator whose data exceed the last-level cache moves them at
  the memory's bandwidth, not the cache's;
- **fresh memory**: glibc's malloc serves a request of 32 MiB or more with a fresh mapping every
  time (ops.ALWAYS_MAPPED_BYTES), so writing such an output faults in every 4 KiB page (the
  kernel zeroes each) and freeing it unmaps them. On this project's VM that cost 2-6 us per
  page: several times the time to stream the same bytes. A training step of a large model
  makes such tensors every step: the gradients of large weights (``zero_grad`` frees them),
  the dense gradient of an embedding table, and the temporaries of Adam's for-loop (``sqrt``
  and the division, per parameter).

- **a matrix-vector product**: a linear layer at a small batch whose weight lies beyond the
  cache streams the weight at a fraction of an elementwise stream's bandwidth (3.9 against
  11 GB/s here, one thread).

A model whose parameters (in training: with their gradients and Adam's two moments) exceed the
last-level cache finds every weight out of the cache at every use: the step streams them all
from memory (predict.beyond_cache_s).

`beyond_cache_costs` measures all three on buffers larger than the last-level cache: an in-place
add streams them (bandwidth), the same add into a new output also maps and faults in the
output (the difference, per byte of output, is the cost of fresh memory), a linear layer at
batch 4 whose weight is such a buffer (per byte of weight). Calls alternate, and each figure is
a median.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from greenai.estimation.timing import filled

MIB = 1 << 20
MIN_BUFFER_BYTES = 64 * MIB  # one tensor of the benchmark: at least twice a 32 MiB cache
MAX_BUFFER_BYTES = 256 * MIB
MATMUL_COLUMNS = 4096  # the linear layer's input features (its weight: buffer / 16 KiB rows)


@dataclass(frozen=True)
class BeyondCache:
    llc_bytes: float  # the last-level cache (sysfs), 0 when unknown
    dram_bandwidth_bps: float  # a stream through buffers larger than the last-level cache
    mapped_s_per_byte: float  # fresh memory: mapping, page faults, unmapping, per byte
    # a linear layer at batch 4 whose weight lies beyond the last-level cache, per byte of weight
    # (a matrix-vector product streams its weight far slower than an elementwise stream)
    matmul_bandwidth_bps: float = 0.0


def cache_sizes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> list[float]:
    """Sizes of this CPU's caches (sysfs `index*/size`), smallest first; [] when unknown. Other
    entries of the directory (`uevent`) and unreadable sizes are skipped."""
    try:
        entries = sorted(e for e in os.listdir(root) if e.startswith("index"))
    except OSError:
        return []
    sizes = set()
    for index in entries:
        try:
            with open(os.path.join(root, index, "size")) as f:
                text = f.read().strip().upper()
            unit = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
            sizes.add(float(text.rstrip("KMG")) * unit)
        except (OSError, ValueError):
            continue
    return sorted(sizes)


def buffer_bytes(llc_bytes: float) -> int:
    """One tensor of the benchmark: twice the last-level cache, within [64 MiB, 256 MiB]."""
    return int(min(max(2 * llc_bytes, MIN_BUFFER_BYTES), MAX_BUFFER_BYTES))


def stream_costs(inplace_s: float, fresh_s: float, tensor_bytes: float) -> tuple[float, float]:
    """(bandwidth, s per byte of fresh memory) from an in-place add of two tensors of
    `tensor_bytes` (3 tensors' bytes moved, as op counting counts them) and the same add into a
    fresh output; the fresh cost is never negative."""
    bandwidth = 3 * tensor_bytes / inplace_s if inplace_s > 0 else 0.0
    return bandwidth, max(fresh_s - inplace_s, 0.0) / tensor_bytes


def _alternating(calls: list[Callable[[], Any]], target_s: float, min_rounds: int = 3) -> list[float]:
    """Median time of each call, the calls run in turn (a slow spell hits them alike)."""
    for call in calls:
        call()
    times: list[list[float]] = [[] for _ in calls]
    perf = time.perf_counter
    end = perf() + target_s
    while perf() < end or len(times[0]) < min_rounds:
        for i, call in enumerate(calls):
            a = perf()
            call()
            times[i].append(perf() - a)
    return [statistics.median(t) for t in times]


def _time_streams(x: Any, y: Any, target_s: float) -> list[float]:
    """Median times of `x.add_(y)`, `torch.add(x, y)` (a new output each call) and of a linear
    layer at batch 4 whose weight is `y` seen as (rows, 4096), alternating."""
    import torch
    import torch.nn.functional as F

    weight = y.view(-1, MATMUL_COLUMNS)
    batch = torch.ones(4, MATMUL_COLUMNS)
    return _alternating([lambda: x.add_(y), lambda: torch.add(x, y), lambda: F.linear(batch, weight)], target_s)


def beyond_cache_costs(target_s: float = 1.0, llc_bytes: float | None = None) -> BeyondCache:
    """Measure streaming and fresh-memory costs on tensors larger than the last-level cache
    (`llc_bytes`, default: this CPU's, from sysfs) for about target_s (at least three calls of
    each; ~0.1 s each on this project's VM), float32, torch's threads."""
    import torch

    if llc_bytes is None:
        sizes = cache_sizes()
        llc_bytes = sizes[-1] if sizes else 0.0
    llc = float(llc_bytes)
    size = buffer_bytes(llc)
    n = size // 4
    with torch.inference_mode():
        inplace_s, fresh_s, linear_s = _time_streams(filled(n), filled(n), target_s)
    bandwidth, per_byte = stream_costs(inplace_s, fresh_s, 4.0 * n)
    return BeyondCache(llc, bandwidth, per_byte, 4.0 * n / linear_s if linear_s > 0 else 0.0)
