"""Timing of micro-benchmarks: warm up, repeat for a target time, keep the median.

`run_bench` keeps the median wall time per call (perf_counter; as the accuracy benchmark
keeps the median step) and the mean CPU time per call (all threads: how many CPUs it keeps
busy). On a shared machine other jobs' threads stall torch's OpenMP barriers (a scheduler
slice, milliseconds): calibrate when it is quiet (calibrate() notes in the profile when it
was not).
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BenchTiming:
    time_s: float  # median wall time per call
    cpu_s: float  # mean CPU time per call, all threads
    calls: int  # timed calls
    warmup_calls: int = 0


def run_bench(
    call: Callable[[], Any] | list[Callable[[], Any]], target_s: float, *, max_calls: int = 200_000, min_calls: int = 3
) -> BenchTiming:
    """Warm up, then repeat for about target_s; median wall time, mean CPU time per call.
    A list of calls (copies of one benchmark on different tensors) is cycled through, so
    each call finds its inputs out of the caches, as a model's weights are."""
    calls = call if isinstance(call, list) else [call]
    t0 = time.perf_counter()
    calls[0]()  # first call: allocations, lazy init, oneDNN primitive creation
    first = time.perf_counter() - t0
    warm = 1 if first > target_s / 10 else max(3, len(calls))
    for i in range(1, warm):
        calls[i % len(calls)]()
    times: list[float] = []
    perf = time.perf_counter
    k, i = len(calls), 0
    c0 = time.process_time()
    start = now = perf()
    end = start + target_s
    while (now < end or len(times) < min_calls) and len(times) < max_calls:
        f = calls[i]
        i = i + 1 if i + 1 < k else 0
        a = perf()
        f()
        now = perf()
        times.append(now - a)
    cpu = time.process_time() - c0
    return BenchTiming(statistics.median(times), cpu / len(times), len(times), warm)


# What the forward and backward of a small model's training step stream through before
# optimizer.step() runs: its data, the tensors' metadata and Python's objects are then out of
# the caches. A pass over 32 MiB of other memory made Adam's step as slow as it is inside real
# training steps (benchmarks/optimizer_impl.py --cold; 8 MiB, twice this VM's L2, did not).
EVICT_BYTES = 32 << 20
_EVICT: list[Any] = []


def evict_caches() -> None:
    """Stream through EVICT_BYTES of memory no benchmark uses."""
    import torch

    if not _EVICT:
        # a normal tensor even when first called under inference_mode: an inference tensor
        # could not be updated in place by later calls outside it
        with torch.inference_mode(False):
            _EVICT.append(torch.ones(EVICT_BYTES // 4))
    _EVICT[0].add_(1.0)


def run_cold(call: Callable[[], Any], target_s: float, *, min_calls: int = 9) -> BenchTiming:
    """Like run_bench, but every timed call comes after evict_caches() (not timed): the cost of
    a call that runs after other work, as optimizer.step() runs after the backward. Wall time
    only (cpu_s is 0: the passes' CPU time would swamp the call's). The 32 MiB stays allocated
    for the process's life (a calibration's)."""
    call()
    evict_caches()
    times: list[float] = []
    perf = time.perf_counter
    end = perf() + target_s
    while perf() < end or len(times) < min_calls:
        evict_caches()
        a = perf()
        call()
        times.append(perf() - a)
    return BenchTiming(statistics.median(times), 0.0, len(times), 1)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def filled(*shape: int, dtype: Any = None, requires_grad: bool = False) -> Any:
    """A tensor of 0.5s: filled ~10x faster than randn, so a benchmark can afford enough
    copies to cycle its inputs out of the caches; the kernels timed do not depend on values."""
    import torch

    return torch.full(shape, 0.5, dtype=dtype).requires_grad_(requires_grad)


_VARIED: dict[tuple[Any, ...], Any] = {}


def varied(*shape: int, dtype: Any = None, requires_grad: bool = False) -> Any:
    """A tensor of uniform random values in [0, 1) (seeded; one draw per shape and dtype,
    cloned after): for kernels whose speed depends on the values. Max pooling compares
    values with branches: on a constant tensor (`filled`) every branch is predicted, on real
    activations about half mispredict, which costs a pipeline flush each (A. Fog, "The
    microarchitecture of Intel, AMD and VIA CPUs", branch prediction chapters); measured here
    2-3x slower on random than on constant inputs."""
    import torch

    key = (shape, dtype)
    base = _VARIED.get(key)
    if base is None:
        gen = torch.Generator().manual_seed(0)
        base = torch.rand(shape, generator=gen).to(dtype or torch.get_default_dtype())
        if len(_VARIED) > 64:
            _VARIED.clear()
        _VARIED[key] = base
    return base.clone().requires_grad_(requires_grad)
