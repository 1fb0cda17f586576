"""Calibrate this machine: run the micro-benchmarks (microbench.py) within a time budget, each
inside a greenai Tracker (store=False) so its energy comes from this machine's meters, then fit

- per (class, dtype[, backward or training forward][, operator or variant]) a roofline
  t = overhead + max(flops / rate, bytes / bandwidth), minimising the *relative* squared error
  so that small sizes (overhead) and large sizes (rate) both count; the regime of each point
  (compute- or memory-bound) is re-assigned until stable (a piecewise-linear least squares),
  each step a non-negative least squares;
- memory beyond the caches, once for the machine (memory.py): the bandwidth of a stream through
  buffers larger than the last-level cache, and the cost per byte of freshly mapped memory;
- the CPUs each class keeps busy (from CPU time per call), for the active-power basis;
- energy. With `measured`/`integrated` meters (RAPL, NVML): per-class coefficients by
  non-negative least squares of E = sum_c e_c C_c + P_static t over the benchmark segments
  (C_c: FLOPs for compute classes, bytes for memory classes). With `estimated` meters (no
  counter on this machine, e.g. a VM): the meter's energy follows greenai's utilization-linear
  power model (docs/measurement.md), so what can be fitted is that model's answer,
  E = P_base t + P_cpu x CPU-seconds, used as P_active(u) = P_base + P_cpu u; the profile says
  so (energy_basis "active_power", energy_provenance "estimated").

The machine's co-load over the whole calibration is read by `hardware/coload.py` (a `Probe`: the
CPUs other processes and the hypervisor kept busy), as for a tracked run; at or above the
setting `coload_threshold_cores` (0.3 CPUs) the profile notes that it was calibrated on a busy
machine and should be calibrated again when the machine is quiet.

NNLS is scipy.optimize.nnls when scipy is installed; otherwise a small Lawson-Hanson
implementation (below) so calibration needs only numpy (which torch brings). The problems are
tiny (at most a few dozen unknowns), so both give the same answer; with a budget under 10 s
the hand-written one is used, as importing scipy.optimize alone takes ~0.7 s.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from greenai.config import load_config
from greenai.estimation import microbench as mb
from greenai.estimation.eager import Context, context
from greenai.estimation.memory import BeyondCache, beyond_cache_costs, cache_sizes
from greenai.estimation.ops import OpClass
from greenai.estimation.profile import (
    BASIS_ACTIVE_POWER,
    BASIS_COEFFICIENTS,
    BenchPoint,
    EnergyModel,
    Profile,
    TimeModel,
    current_fingerprint,
    now_iso,
    save_profile,
)
from greenai.estimation.timing import quiet, run_bench
from greenai.hardware import coload
from greenai.meters.base import Provenance

COMPUTE_CLASSES = frozenset({OpClass.MATMUL, OpClass.CONV, OpClass.DEPTHWISE_CONV, OpClass.RECURRENT})
TRACKER_COST_S = 0.015  # starting and stopping one Tracker (meter discovery), measured ~10 ms
FIT_RESERVE_S = 0.3  # fitting and saving
MIN_TARGET_S, MAX_TARGET_S = 0.004, 0.35
BEYOND_CACHE_MIN_BUDGET_S = 10.0  # below it, memory beyond the caches is not measured
# Fit each class's knee (extra time per byte beyond a cache size) from its micro-benchmarks?
# Off: until 2026-12-07 cache_sizes() read sysfs's `uevent` entry as a cache and found none, so
# no published profile had one; the largest benchmark moves ~12 MB, too few points beyond any
# knee to extrapolate from. Memory beyond the last-level cache is measured directly instead
# (memory.beyond_cache_costs; predict.beyond_cache_s).
PER_CLASS_KNEES = False

Progress = Callable[[str], None]
# (done, total, what): work done so far out of total, for a progress bar with an ETA
Advance = Callable[[float, float, str], None]


@dataclass(frozen=True)
class Segment:
    """One benchmark run inside one Tracker."""

    bench: mb.Bench
    time_s: float  # median time per call
    cpu_per_call_s: float
    calls: int  # all calls in the segment, warm-up included
    wall_s: float  # tracker duration
    cpu_s: float  # CPU seconds of the process during the segment
    energy_j: float
    provenance: Provenance
    rel_uncertainty: float


# -- NNLS ----------------------------------------------------------------------------------
SCIPY_MIN_BUDGET_S = 10.0  # below it, importing scipy.optimize (~0.7 s) costs too much budget
_use_scipy = True


def _nnls_impl() -> Callable[[Any, Any], Any]:
    if not _use_scipy:
        return nnls_lawson_hanson
    try:
        from scipy.optimize import nnls as scipy_nnls
    except ImportError:
        return nnls_lawson_hanson
    return lambda a, b: scipy_nnls(a, b)[0]


def nnls(a: Any, b: Any) -> Any:
    """min ||A x - b||, x >= 0 (scipy if installed, else Lawson-Hanson below)."""
    import numpy as np

    return _nnls_impl()(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def nnls_lawson_hanson(a: Any, b: Any, max_iter: int | None = None) -> Any:
    """Lawson & Hanson, "Solving Least Squares Problems" (1974), ch. 23: active-set NNLS.
    Columns are scaled to unit norm first (fitted values span 1e-11 ... 1e-4 here)."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    norms = np.linalg.norm(a, axis=0)
    usable = norms > 0
    a = a[:, usable] / norms[usable]
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ b
    tol = 10 * np.finfo(float).eps * max(m, n, 1) * max(float(np.linalg.norm(b)), 1e-300)
    for _ in range(max_iter or 3 * n + 10):
        if passive.all() or w[~passive].max(initial=-np.inf) <= tol:
            break
        passive[int(np.argmax(np.where(passive, -np.inf, w)))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + alpha * (z - x)
            passive &= x > 0
            x[~passive] = 0.0
            if not passive.any():
                break
        w = a.T @ (b - a @ x)
    out = np.zeros(len(norms))
    out[usable] = x / norms[usable]
    return out


# -- fits ----------------------------------------------------------------------------------
MIN_POINTS_FULL = 4  # sizes needed to fit more than overhead + one rate
TERM_PENALTY = 0.005  # MAPE a fit must gain per extra term to be preferred


@dataclass(frozen=True)
class RooflineFit:
    overhead_s: float
    rate_flops: float | None
    bandwidth_bps: float | None
    dram_s_per_byte: float  # extra time per byte beyond the last-level cache
    mape: float
    overlap: bool = True  # max(F / r, B / w); False: F / r + B / w (no overlap)


def fit_roofline(
    flops: Sequence[float],
    nbytes: Sequence[float],
    times: Sequence[float],
    use_flops: bool = True,
    calls: Sequence[float] | None = None,
    cache_bytes: float = float("inf"),
    prefer: str = "bytes",
) -> RooflineFit:
    """Fit t = n o + max(F / r, B / w) + max(B - C, 0) d (n kernel calls per benchmark, C the
    last-level cache) minimising the relative error: each point is assigned to its bound
    (compute or memory), the linear problem in (o, 1/r, 1/w, d) solved by NNLS, and the
    assignment repeated until stable; the best of that and the single-bound fits is kept.
    The additive form t = n o + F / r + B / w (compute and memory traffic not overlapped,
    which fits CPU matmuls and depthwise convolutions better) is fitted too and kept when
    it fits the class's micro-benchmarks better (`overlap` False).

    With fewer than MIN_POINTS_FULL points only t = n o + W / v is fitted, W the `prefer`red
    work ("flops" or "bytes"): two or three sizes cannot tell more terms apart, and an exact
    fit of them by the wrong terms extrapolates wildly. Among fits of about the same error the
    one with fewer terms wins.
    """
    import numpy as np

    F, B, T = (np.asarray(v, dtype=float) for v in (flops, nbytes, times))
    N = np.ones_like(T) if calls is None else np.asarray(calls, dtype=float)
    few = len(T) < MIN_POINTS_FULL
    finite = math.isfinite(cache_bytes) and not few
    beyond = np.maximum(B - cache_bytes, 0.0) if finite else np.zeros_like(B)

    def solve(compute_bound: Any) -> tuple[Any, float]:
        cols = [N, np.where(compute_bound, F, 0.0), np.where(compute_bound, 0.0, B), beyond]
        a = np.stack(cols, axis=1) / T[:, None]
        x = nnls(a, np.ones_like(T))
        pred = N * x[0] + np.maximum(F * x[1], B * x[2]) + beyond * x[3]
        return x, float(np.mean(np.abs(pred - T) / T))

    if few:
        by_flops = prefer == "flops" and use_flops and bool(F.any())
        x, err = solve(np.full_like(T, by_flops, dtype=bool))
        return RooflineFit(float(x[0]), 1.0 / x[1] if x[1] > 0 else None, 1.0 / x[2] if x[2] > 0 else None, 0.0, err)
    candidates = [solve(np.zeros_like(T, dtype=bool))]  # bandwidth only
    additive = None
    if use_flops and F.any():
        # no overlap of compute and memory traffic: t = n o + F / r + B / w (+ DRAM)
        a = np.stack([N, F, B, beyond], axis=1) / T[:, None]
        x = nnls(a, np.ones_like(T))
        additive = (x, float(np.mean(np.abs(a @ x - 1.0))))
        candidates.append(solve(np.ones_like(T, dtype=bool)))  # rate only
        regime = F / max(float(np.max(F / T)), 1e-30) >= B / max(float(np.max(B / T)), 1e-30)
        for _ in range(20):
            x, err = solve(regime)
            candidates.append((x, err))
            if x[1] <= 0 or x[2] <= 0:
                break
            new = F * x[1] >= B * x[2]
            if (new == regime).all():
                break
            regime = new

    def score(c: tuple[Any, float]) -> float:  # error, then fewer terms
        return c[1] + TERM_PENALTY * int(np.count_nonzero(c[0]))

    x, err = min(candidates, key=score)
    overlap = True
    if additive is not None and score(additive) < score((x, err)) and additive[0][1] > 0 and additive[0][2] > 0:
        (x, err), overlap = additive, False
    return RooflineFit(
        float(x[0]), 1.0 / x[1] if x[1] > 0 else None, 1.0 / x[2] if x[2] > 0 else None, float(x[3]), err, overlap
    )


def knee_candidates() -> list[float]:
    """Where DRAM may start to cost: the L2 size, fractions of the last-level cache (a VM or a
    shared socket sees only part of it), the whole of it, or never."""
    sizes = cache_sizes()
    if not sizes:
        return [float("inf")]
    llc = sizes[-1]
    out = {llc / 8, llc / 4, llc / 2, llc, float("inf")}
    if len(sizes) >= 3:
        out.add(sizes[-2])
    return sorted(out)


def fit_busy(
    scale: float, work_s: Sequence[float], cpu_s: Sequence[float], usable: float, fixed_s: Sequence[float]
) -> tuple[float, float]:
    """(CPUs busy during the fixed part, during the work part) from CPU time per call:
    cpu = u_o x fixed + u_w x work, by relative NNLS."""
    import numpy as np

    W, C, F = (np.asarray(v, dtype=float) for v in (work_s, cpu_s, fixed_s))
    keep = C > 0
    if not keep.any():
        return 1.0, 1.0
    W, C, F = W[keep], C[keep], F[keep] * scale
    a = np.stack([F, W], axis=1) / C[:, None]
    u_o, u_w = nnls(a, np.ones_like(C))
    if float(np.max(W / np.maximum(W + F, 1e-30))) < 0.3:  # work never seen: as the fixed part
        u_w = u_o
    clamp = lambda u: float(min(max(u, 0.0), usable))
    return clamp(u_o) or 1.0, clamp(u_w) or clamp(u_o) or 1.0


def _work_units(bench: mb.Bench) -> float:
    return bench.flops if bench.op_class in COMPUTE_CLASSES else bench.bytes_moved


# -- the run -------------------------------------------------------------------------------
def resolve_dtypes(dtypes: str | Sequence[str]) -> tuple[tuple[str, ...], list[str], dict[str, str]]:
    """(dtypes to measure, notes, dtype -> reason it is skipped)."""
    notes: list[str] = []
    skipped: dict[str, str] = {}
    wanted = (mb.FP32, mb.BF16, mb.INT8) if dtypes == "auto" else tuple(dtypes)
    chosen: list[str] = []
    for d in wanted:
        if d == mb.BF16:
            _native, why = mb.bf16_support()
            notes.append(f"bfloat16: {why}")
            chosen.append(d)
        elif d == mb.INT8:
            ok, why = mb.int8_support()
            if ok:
                chosen.append(d)
                notes.append(f"int8: {why}; other classes are not benchmarked in int8")
            else:
                skipped[d] = why
                notes.append(f"int8 skipped: {why}")
        elif d == mb.FP32:
            chosen.append(d)
        else:
            skipped[d] = f"{d} is not benchmarked (supported: float32, bfloat16, int8)"
    if mb.FP32 not in chosen:
        chosen.insert(0, mb.FP32)  # the fallback of every class
    return tuple(chosen), notes, skipped


def _plan(benches: list[mb.Bench], available_s: float) -> list[mb.Bench]:
    """Each group's smallest size and a middle one first (two far-apart sizes: overhead and
    rate), most important groups first (so a small budget fits float32 classes before the
    rest), then the other sizes, smallest first; with a small budget fewer sizes are kept."""
    sizes: dict[str, int] = {}
    for b in benches:
        sizes[b.group] = max(sizes.get(b.group, 0), b.rank + 1)

    def turn(b: mb.Bench) -> int:  # 0: smallest, 1: middle, then the others by size
        mid = sizes[b.group] // 2
        if b.rank == 0:
            return 0
        if b.rank == mid:
            return 1
        return b.rank + 1 if b.rank < mid else b.rank

    per_bench_min = TRACKER_COST_S + 0.02
    keep = max(sizes.values()) + 1
    while keep > 2 and sum(1 for b in benches if turn(b) < keep) * per_bench_min > available_s * 0.5:
        keep -= 1
    chosen = [b for b in benches if turn(b) < keep]
    return sorted(chosen, key=lambda b: (turn(b) >= 2, mb.priority(b) if turn(b) < 2 else 0, turn(b), b.group))


def calibrate(
    budget_s: float = 60.0,
    dtypes: str | Sequence[str] = "auto",
    progress: Progress | None = None,
    *,
    backward: bool = True,
    save: bool = True,
    path: str | os.PathLike[str] | None = None,
    config: Any = None,
    on_advance: Advance | None = None,
) -> Profile:
    """Fit this machine's profile from micro-benchmarks in at most ~budget_s seconds (a hard
    cap on the benchmarks; the real wall time is in `profile.calibration_s`) and save it
    (to `path`, default this machine's profile location) unless save=False.

    dtypes: "auto" (float32, bfloat16 (marked emulated when the CPU lacks bf16 instructions),
    int8 (dynamic quantized linear) when torch.ao has it) or a sequence of them. progress:
    called with one line per benchmark; on_advance: with (benchmarks done, planned, name) after
    each. config: the greenai Config for the trackers."""
    global _use_scipy
    start = time.perf_counter()
    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0, got {budget_s}")
    before = _use_scipy
    _use_scipy = budget_s >= SCIPY_MIN_BUDGET_S
    try:
        return _calibrate(start, budget_s, dtypes, progress, backward, save, path, config, on_advance)
    finally:
        _use_scipy = before


def _calibrate(
    start: float,
    budget_s: float,
    dtypes: str | Sequence[str],
    progress: Progress | None,
    backward: bool,
    save: bool,
    path: str | os.PathLike[str] | None,
    config: Any,
    on_advance: Advance | None = None,
) -> Profile:
    import torch

    from greenai.tracking.tracker import Tracker

    _nnls_impl()  # import scipy now (inside the budget), not during the fit
    others = coload.Probe()  # what other processes (steal included) do to the machine meanwhile
    say = progress or (lambda msg: None)
    advance = on_advance or (lambda done, total, what: None)
    chosen, notes, skipped = resolve_dtypes(dtypes)
    usable = max(current_fingerprint().usable_cpus, 1.0)
    benches = mb.suite(chosen, backward=backward)
    deadline = start + budget_s - min(FIT_RESERVE_S, 0.1 * budget_s)
    with quiet():
        ctx = context(min(0.2, budget_s * 0.025))
        # ~1 s and 192 MiB: not within a budget of a few seconds (its terms stay 0: not applied)
        beyond = beyond_cache_costs(min(1.0, budget_s * 0.02)) if budget_s >= BEYOND_CACHE_MIN_BUDGET_S else None
    plan = _plan(benches, deadline - time.perf_counter())
    planned = {id(b) for b in plan}
    skipped_sizes: dict[str, list[str]] = {}
    for b in benches:
        if id(b) not in planned:
            skipped_sizes.setdefault(b.group, []).append(f"{b.name}: trimmed to fit the budget")
    segments: list[Segment] = []
    by_group: dict[str, list[Segment]] = {}
    say(
        f"calibrating: {len(plan)} micro-benchmarks, budget {budget_s:g} s, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for i, bench in enumerate(plan):
        advance(i, len(plan), bench.name)
        left = deadline - time.perf_counter()
        if left <= TRACKER_COST_S * 2:
            skipped_sizes.setdefault(bench.group, []).append(f"{bench.name}: budget exhausted")
            continue
        target = min(max(left * 0.8 / (len(plan) - i) - TRACKER_COST_S, MIN_TARGET_S), MAX_TARGET_S)
        guess = _guess_call_s(by_group.get(bench.group, []), bench)
        if guess is not None and (guess * 2 > left * 0.5 or guess > max(target * 3, 0.05)):
            skipped_sizes.setdefault(bench.group, []).append(
                f"{bench.name}: ~{guess:.3g} s per call, too slow for the budget"
            )
            continue
        try:
            with quiet():
                call = mb.make_copies(bench, min(0.02, max(target * 0.3, 0.002)))
        except Exception as e:  # noqa: BLE001  (an operator this build lacks)
            skipped_sizes.setdefault(bench.group, []).append(f"{bench.name}: {type(e).__name__}: {e}")
            continue
        tracker = Tracker(f"calibrate {bench.name}", store=False, config=config, handle_signals=False)
        tracker.start()
        c0 = _cpu_now()
        with quiet(), mb.pass_mode(bench):
            timing = run_bench(call, target)
        cpu = _cpu_now() - c0
        snap = tracker.stop().snapshot
        seg = Segment(
            bench,
            timing.time_s,
            timing.cpu_s,
            timing.calls + timing.warmup_calls,
            snap.duration_s,
            cpu,
            snap.energy_j,
            snap.provenance,
            snap.rel_uncertainty,
        )
        segments.append(seg)
        by_group.setdefault(bench.group, []).append(seg)
        del call
        say(f"  {bench.group:32s} {bench.name:34s} {timing.time_s * 1e6:10.1f} us")
    advance(len(plan), len(plan), "fitting")
    fit_start = time.perf_counter()
    models, missing, points, mape_time = _fit_time(by_group, skipped_sizes, usable, ctx)
    for dtype in chosen:
        for op_class in OpClass:
            key = f"{op_class.value}/{dtype}"
            if key in models or key in missing:
                continue
            if op_class is OpClass.COMMUNICATION:
                missing[key] = "collectives need several processes; not benchmarked"
            elif dtype == mb.INT8:
                missing[key] = (
                    "int8 is benchmarked for matmul only (dynamic quantized linear); "
                    "other operations of such models run in float32"
                )
            else:
                missing[key] = "not benchmarked"
    for dtype, why in skipped.items():
        for op_class in OpClass:
            missing[f"{op_class.value}/{dtype}"] = why
    basis, energy, provenance, mape_energy, energy_notes = _fit_energy(segments)
    notes += energy_notes
    notes.append(
        f"context: module call {ctx.module_call_s * 1e6:.1f} us, autograd record "
        f"{ctx.grad_record_s * 1e6:.1f} us per forward op, backward start "
        f"{ctx.backward_call_s * 1e6:.1f} us, view {ctx.view_s * 1e6:.1f} us; Adam step "
        f"{ctx.optimizer_step_s * 1e6:.1f} us + {ctx.optimizer_record_s * 1e6:.1f} us per operator "
        f"(fused: {ctx.fused_step_s * 1e6:.1f} us + {ctx.fused_param_s * 1e6:.1f} us per parameter tensor); "
        f"Python's share of an operator call {ctx.python_call_s * 1e6:.2f} us; "
        f"{ctx.serial_busy_cpus:.2f} CPUs busy during serial work after parallel kernels"
    )
    notes.append(describe_beyond_cache(beyond))
    if beyond is None:
        beyond = BeyondCache(0.0, 0.0, 0.0)
    settings = config if config is not None else load_config()  # as the trackers' (the setting's threshold)
    busy = _busy_note(others.cores(), getattr(settings, "coload_threshold_cores", coload.DISTURBED_CORES))
    if busy:
        notes.append(busy)
    elapsed = time.perf_counter() - start
    notes.append(
        f"{len(segments)} benchmarks in {fit_start - start:.1f} s, fit {time.perf_counter() - fit_start:.2f} s"
    )
    prov = provenance.value if provenance else "none"
    profile = Profile(
        fingerprint=current_fingerprint(prov),
        created_at=now_iso(),
        time_models=models,
        missing=missing,
        energy_basis=basis,
        energy=energy,
        energy_provenance=prov,
        fit_mape_time=mape_time,
        fit_mape_energy=mape_energy,
        view_overhead_s=ctx.view_s,
        module_call_s=ctx.module_call_s,
        grad_record_s=ctx.grad_record_s,
        backward_call_s=ctx.backward_call_s,
        optimizer_step_s=ctx.optimizer_step_s,
        optimizer_record_s=ctx.optimizer_record_s,
        python_call_s=ctx.python_call_s,
        serial_busy_cpus=ctx.serial_busy_cpus,
        fused_optimizer_step_s=ctx.fused_step_s,
        fused_optimizer_param_s=ctx.fused_param_s,
        optimizer_timing="cold",
        llc_bytes=beyond.llc_bytes,
        dram_bandwidth_bps=beyond.dram_bandwidth_bps,
        mapped_s_per_byte=beyond.mapped_s_per_byte,
        matmul_dram_bandwidth_bps=beyond.matmul_bandwidth_bps,
        calibration_s=elapsed,
        budget_s=budget_s,
        notes=tuple(notes),
        points=tuple(points),
    )
    if save:
        say(f"saved {save_profile(profile, path)}")
    say(
        f"calibrated in {elapsed:.1f} s: time fit {_pct(mape_time)} MAPE, energy fit "
        f"{_pct(mape_energy)} ({basis}, {prov})"
    )
    return profile


def describe_beyond_cache(b: BeyondCache | None) -> str:
    if b is None:
        return f"memory beyond the caches: not measured (a budget under {BEYOND_CACHE_MIN_BUDGET_S:g} s)"
    llc = f"last-level cache {b.llc_bytes / 2**20:g} MiB" if b.llc_bytes else "last-level cache unknown"
    return (
        f"memory beyond the caches: {llc}, a stream through larger buffers "
        f"{b.dram_bandwidth_bps / 1e9:.1f} GB/s (a linear layer's weight at batch 4 "
        f"{b.matmul_bandwidth_bps / 1e9:.1f} GB/s), fresh memory (page faults, munmap) "
        f"{b.mapped_s_per_byte * 1e9:.3f} ns per byte ({b.mapped_s_per_byte * 4096 * 1e6:.2f} us per 4 KiB page)"
    )


def _busy_note(others_cores: float, threshold_cores: float) -> str | None:
    """The profile's note when other processes (steal included: `hardware/coload.py`) kept
    `threshold_cores` or more CPUs busy on average during calibration; None when quieter."""
    if others_cores < threshold_cores:
        return None
    return (
        f"other processes kept {others_cores:.2f} CPUs busy during calibration (a shared "
        "machine): its timings, and so its predictions, are less reliable; calibrate "
        "again when the machine is quiet"
    )


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def _guess_call_s(done: list[Segment], bench: mb.Bench) -> float | None:
    """Time per call of a bigger size, extrapolated from the group's smaller ones."""
    if not done:
        return None
    units = max(bench.flops, bench.bytes_moved)
    best = max((max(s.bench.flops, s.bench.bytes_moved) / s.time_s for s in done), default=0.0)
    return units / best if best > 0 else None


def _fit_time(
    by_group: dict[str, list[Segment]], skipped_sizes: dict[str, list[str]], usable: float, ctx: Context
) -> tuple[dict[str, TimeModel], dict[str, str], list[BenchPoint], float | None]:
    """Forward groups first (their benchmarks hold one class), then backward and training-forward
    groups, from whose times the engine start or the autograd recording, and the kernels of
    other classes (predicted), are taken out."""
    models: dict[str, TimeModel] = {}
    missing: dict[str, str] = {}
    points: list[BenchPoint] = []
    errors: list[float] = []
    knees = knee_candidates() if PER_CLASS_KNEES else [float("inf")]
    # forward class groups first (data movement first of all: other benchmarks hold some),
    # then operators with their own roofline, then backward groups
    groups = sorted(
        set(by_group) | set(skipped_sizes), key=lambda g: (g.count("/"), "@" in g, g != "data_movement/float32", g)
    )
    for group in groups:
        segs = by_group.get(group, [])
        skipped = skipped_sizes.get(group, [])
        if len(segs) < 2:
            why = "; ".join(skipped[:2]) or "no benchmark"
            missing[group] = f"{len(segs)} size(s) measured, 2 needed ({why})"
            continue
        op_class, dtype = segs[0].bench.op_class, segs[0].bench.dtype
        fixed = [_aux_s(s.bench, models, dtype) + _pass_extra_s(s.bench, ctx) for s in segs]
        T = [max(s.time_s - f, 0.2 * s.time_s) for s, f in zip(segs, fixed)]
        prefer = "flops" if op_class in COMPUTE_CLASSES else "bytes"
        fits = [
            (
                fit_roofline(
                    [s.bench.flops for s in segs],
                    [s.bench.bytes_moved for s in segs],
                    T,
                    True,
                    [len(s.bench.main) for s in segs],
                    knee,
                    prefer,
                ),
                knee,
            )
            for knee in (knees if len(segs) >= MIN_POINTS_FULL else [float("inf")])
        ]
        fit, cache = min(fits, key=lambda f: f[0].mape + (1e-9 if math.isfinite(f[1]) else 0.0))
        o, rate, bw = fit.overhead_s, fit.rate_flops, fit.bandwidth_bps
        probe = TimeModel(
            o,
            rate,
            bw,
            dram_s_per_byte=fit.dram_s_per_byte,
            cache_bytes=cache if math.isfinite(cache) else None,
            overlap=fit.overlap,
        )
        probe = dataclasses.replace(probe, **size_correction(probe, segs, fixed, prefer))
        work = [sum(probe.work_s(f, b) * probe.factor(f, b) for _, f, b in s.bench.main) for s in segs]
        fixed_calls = [sum(o * probe.factor(f, b) for _, f, b in s.bench.main) for s in segs]
        u_o, u_w = fit_busy(1.0, work, [s.cpu_per_call_s for s in segs], usable, fixed_calls)
        fitted = [sum(probe.time_s(f, b) for _, f, b in s.bench.main) + fx for s, fx in zip(segs, fixed)]
        errs = [abs(p - s.time_s) / s.time_s for p, s in zip(fitted, segs)]
        note = f"{len(skipped)} size(s) skipped" if skipped else ""
        models[group] = dataclasses.replace(
            probe, busy_cpus=u_w, overhead_busy_cpus=u_o, mape=sum(errs) / len(errs), points=len(segs), note=note
        )
        errors += errs
        for s, p in zip(segs, fitted):
            points.append(
                BenchPoint(
                    s.bench.name, group, dtype, s.bench.flops, s.bench.bytes_moved, s.time_s, s.cpu_per_call_s, p
                )
            )
    mape = sum(errors) / len(errors) if errors else None
    return models, missing, points, mape


MIN_POINTS_CORRECTION = 6  # sizes needed to describe a residual by size
CORRECTION_WINDOW = 5  # running median over this many neighbours (by work)
CORRECTION_RANGE = (0.5, 2.0)


def size_correction(model: TimeModel, segs: list[Segment], fixed: list[float], prefer: str) -> dict[str, Any]:
    """The roofline's residual on its micro-benchmarks as a function of the work of one call
    (FLOPs for compute classes, bytes otherwise): measured / roofline per benchmark, sorted by
    work, a running median over CORRECTION_WINDOW neighbours (so one noisy size moves
    nothing), clamped to CORRECTION_RANGE. A roofline says how cost grows with work; it
    cannot say that small calls run below the rate large ones reach (oneDNN convolutions on
    a few channels). Fields of TimeModel; none with fewer than MIN_POINTS_CORRECTION sizes."""
    if len(segs) < MIN_POINTS_CORRECTION:
        return {}
    by = "flops" if prefer == "flops" else "bytes"
    points = []
    for s, fx in zip(segs, fixed):
        main = s.bench.main
        roof = sum(model.time_s(f, b) for _, f, b in main)
        units = (s.bench.flops if by == "flops" else s.bench.bytes_moved) / len(main)
        if roof > 0 and units > 0:
            points.append((math.log10(units), max(s.time_s - fx, 0.2 * s.time_s) / roof))
    points.sort()
    half = CORRECTION_WINDOW // 2
    lo, hi = CORRECTION_RANGE
    knots = []
    for i, (x, _) in enumerate(points):
        window = sorted(r for _, r in points[max(i - half, 0) : i + half + 1])
        knots.append((x, min(max(window[len(window) // 2], lo), hi)))
    return {"size_correction": tuple(knots), "correction_by": by}


def _pass_extra_s(bench: mb.Bench, ctx: Context) -> float:
    """What predict adds apart from a benchmark's kernels: the engine start of a backward,
    the autograd recording of each kernel of a training forward."""
    if bench.pass_ == mb.BACKWARD:
        return ctx.backward_call_s
    if bench.pass_ == mb.FORWARD_TRAIN:
        return ctx.grad_record_s * len(bench.kernels)
    return 0.0


def _aux_s(bench: mb.Bench, models: dict[str, TimeModel], dtype: str) -> float:
    """Predicted time of a benchmark's kernels of other classes (forward models)."""
    total = 0.0
    for cls, f, b in bench.kernels:
        if cls is bench.op_class:
            continue
        model = models.get(f"{cls.value}/{dtype}") or models.get(f"{cls.value}/{mb.FP32}")
        if model is not None:
            total += model.time_s(f, b)
    return total


def _fit_energy(segments: list[Segment]) -> tuple[str, EnergyModel, Provenance | None, float | None, list[str]]:
    import numpy as np

    segs = [s for s in segments if s.energy_j > 0 and s.wall_s > 0]
    if not segs:
        return (BASIS_ACTIVE_POWER, EnergyModel(), None, None, ["no energy readings: energy model empty"])
    provenance = max((s.provenance for s in segs), key=lambda p: p.rank)
    rel = max(s.rel_uncertainty for s in segs)
    E = np.array([s.energy_j for s in segs])
    t = np.array([s.wall_s for s in segs])
    active_w = float(E.sum() / t.sum())
    # each segment also holds part of its Tracker's own start and stop (a fixed energy per
    # segment: the last column), which is not the benchmark's
    if provenance in (Provenance.MEASURED, Provenance.INTEGRATED):
        keys = sorted({f"{s.bench.op_class.value}/{s.bench.dtype}" for s in segs})
        cols = np.zeros((len(segs), len(keys) + 2))
        for i, s in enumerate(segs):
            cols[i, keys.index(f"{s.bench.op_class.value}/{s.bench.dtype}")] = _work_units(s.bench) * s.calls
            cols[i, -2] = s.wall_s
            cols[i, -1] = 1.0
        x = nnls(cols / E[:, None], np.ones_like(E))
        mape = float(np.mean(np.abs(cols @ x - E) / E))
        flop_table: dict[str, float] = {}
        byte_table: dict[str, float] = {}
        for key, e in zip(keys, x[:-2]):
            table = flop_table if OpClass(key.split("/")[0]) in COMPUTE_CLASSES else byte_table
            table[key] = float(e * 1e12)
        energy = EnergyModel(
            static_w=float(x[-2]),
            pj_per_flop=flop_table,
            pj_per_byte=byte_table,
            active_power_w=active_w,
            meter_rel_uncertainty=rel,
        )
        note = (
            f"energy: {provenance.value} meters; E = sum_c e_c C_c + P_static t fitted by NNLS "
            f"over {len(segs)} segments (P_static {x[-2]:.2f} W; {x[-1] * 1e3:.1f} mJ per segment "
            "of tracker start/stop left out)"
        )
        return BASIS_COEFFICIENTS, energy, provenance, mape, [note]
    cpu = np.array([s.cpu_s for s in segs])
    a = np.stack([t, cpu, np.ones_like(t)], axis=1)
    x = nnls(a / E[:, None], np.ones_like(E))
    base, per_cpu = float(x[0]), float(x[1])
    mape = float(np.mean(np.abs(a @ x - E) / E))
    energy = EnergyModel(
        active_power_w=active_w, base_power_w=base, power_per_busy_cpu_w=per_cpu, meter_rel_uncertainty=rel
    )
    note = (
        f"energy: {provenance.value} meters (no hardware counter): the energy follows greenai's "
        f"utilization-linear CPU power model, fitted as P_active = {base:.2f} W + {per_cpu:.2f} W "
        f"x busy CPUs (mean {active_w:.2f} W over the suite; {x[2] * 1e3:.1f} mJ per segment of "
        f"tracker start/stop left out); predictions reproduce that model, +/-{rel:.0%} against "
        "true energy"
    )
    return BASIS_ACTIVE_POWER, energy, provenance, mape, [note]


def describe(profile: Profile) -> str:
    """A few lines for `greenai calibrate` and logs."""
    lines = [
        (
            f"calibration {profile.created_at} on {profile.fingerprint.describe()} "
            f"in {profile.calibration_s:.1f} s (budget {profile.budget_s:g} s)"
        )
    ]
    for key, m in sorted(profile.time_models.items()):
        rate = f"{m.rate_flops / 1e9:8.2f} GFLOP/s" if m.rate_flops else " " * 16
        bw = f"{m.bandwidth_bps / 1e9:7.2f} GB/s" if m.bandwidth_bps else " " * 12
        lines.append(
            f"  {key:32s} {m.overhead_s * 1e6:7.1f} us {rate} {bw}  busy {m.busy_cpus:.2f} "
            f"fit {m.mape:5.1%} ({m.points} pts)"
        )
    for key, why in sorted(profile.missing.items()):
        lines.append(f"  {key:32s} missing: {why}")
    lines += [f"  note: {n}" for n in profile.notes]
    lines.append(f"  fit: time {_pct(profile.fit_mape_time)} MAPE, energy {_pct(profile.fit_mape_energy)}")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"
