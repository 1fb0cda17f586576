"""Calibration: the fits recover known parameters; a tiny-budget run respects its budget and
accounts for every class."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from greenai.estimation import microbench as mb
from greenai.estimation.calibrate import (
    Segment,
    _fit_energy,
    calibrate,
    fit_busy,
    fit_roofline,
    nnls,
    nnls_lawson_hanson,
    size_correction,
)
from greenai.estimation.ops import GROUPED, SINGLE_IMAGE, OpClass
from greenai.estimation.profile import (
    BASIS_ACTIVE_POWER,
    BASIS_COEFFICIENTS,
    TimeModel,
    load_profile,
)
from greenai.meters.base import Provenance


def test_lawson_hanson_matches_scipy_and_known_solutions():
    scipy_nnls = pytest.importorskip("scipy.optimize").nnls
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(size=(30, 6))
        b = rng.normal(size=30)
        np.testing.assert_allclose(nnls_lawson_hanson(a, b), scipy_nnls(a, b)[0], atol=1e-9)
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(nnls_lawson_hanson(a, a @ np.array([2.0, 3.0])), [2.0, 3.0])
    np.testing.assert_allclose(nnls_lawson_hanson(a, a @ np.array([2.0, -3.0])), [0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(nnls(a, a @ np.array([2.0, 3.0])), [2.0, 3.0])


def test_fit_roofline_recovers_overhead_rate_and_bandwidth():
    o, rate, bw = 5e-6, 2e10, 4e9
    flops = np.array([1e3, 1e5, 1e7, 1e9, 1e6, 1e8, 4e8])
    nbytes = np.array([1e3, 1e4, 1e5, 1e6, 4e6, 2e8, 1e9])  # the last three memory-bound
    times = o + np.maximum(flops / rate, nbytes / bw)
    fit = fit_roofline(flops, nbytes, times)
    assert fit.overhead_s == pytest.approx(o, rel=1e-6)
    assert fit.rate_flops == pytest.approx(rate, rel=1e-6)
    assert fit.bandwidth_bps == pytest.approx(bw, rel=1e-6)
    assert fit.dram_s_per_byte == 0.0 and fit.mape < 1e-9
    # bandwidth only; two calls per benchmark double the overhead; bytes beyond a 1 MB cache
    # cost 1e-10 s more each
    times2 = 2 * o + nbytes / bw + np.maximum(nbytes - 1e6, 0) * 1e-10
    fit = fit_roofline(flops * 0, nbytes, times2, calls=[2] * len(flops), cache_bytes=1e6)
    assert (fit.overhead_s, fit.rate_flops) == (pytest.approx(o, rel=1e-6), None)
    assert fit.bandwidth_bps == pytest.approx(bw, rel=1e-6)
    assert fit.dram_s_per_byte == pytest.approx(1e-10, rel=1e-6)


def test_fit_busy_recovers_cpus_busy():
    fixed = np.array([1e-5, 1e-5, 1e-5, 1e-5])
    work = np.array([0.0, 1e-5, 1e-4, 1e-3])
    cpu = 1.0 * fixed + 1.8 * work
    assert fit_busy(1.0, work, cpu, 2.0, fixed) == (pytest.approx(1.0), pytest.approx(1.8))
    assert fit_busy(1.0, work, cpu * 10, 2.0, fixed) == (2.0, 2.0)  # clamped to usable CPUs


def _segment(
    cls: OpClass, flops: float, nbytes: float, calls: int, wall: float, cpu: float, energy: float, prov: Provenance
) -> Segment:
    bench = mb.Bench("b", cls, "float32", "forward", 0, ((cls, flops, nbytes),), lambda: lambda: None)
    return Segment(bench, wall / calls, cpu / calls, calls, wall, cpu, energy, prov, 0.05)


def test_energy_fit_measured_meters_recovers_coefficients():
    # E = 20 pJ/FLOP x matmul FLOPs + 500 pJ/B x elementwise bytes + 8 W x t
    segs = []
    for calls, wall, f, b in [(100, 0.2, 1e8, 1e6), (1000, 0.1, 1e5, 1e3), (10, 0.3, 1e9, 1e7)]:
        segs.append(
            _segment(OpClass.MATMUL, f, b, calls, wall, wall, 20e-12 * f * calls + 8 * wall, Provenance.MEASURED)
        )
    for calls, wall, b in [(100, 0.2, 1e7), (1000, 0.1, 1e4), (50, 0.05, 1e5)]:
        segs.append(
            _segment(
                OpClass.ELEMENTWISE, b / 4, b, calls, wall, wall, 500e-12 * b * calls + 8 * wall, Provenance.MEASURED
            )
        )
    basis, energy, prov, err, _notes = _fit_energy(segs)
    assert (basis, prov) == (BASIS_COEFFICIENTS, Provenance.MEASURED)
    assert energy.static_w == pytest.approx(8.0, rel=1e-6)
    assert energy.pj_per_flop["matmul/float32"] == pytest.approx(20.0, rel=1e-6)
    assert energy.pj_per_byte["elementwise/float32"] == pytest.approx(500.0, rel=1e-6)
    assert err < 1e-6


def test_energy_fit_estimated_meters_is_active_power():
    # greenai's CPU model: E = 1.5 W x t + 2.8 W x CPU-seconds
    segs = [
        _segment(OpClass.MATMUL, 1e6, 1e4, 10, wall, cpu, 1.5 * wall + 2.8 * cpu, Provenance.ESTIMATED)
        for wall, cpu in [(0.1, 0.1), (0.2, 0.38), (0.3, 0.45), (0.05, 0.02)]
    ]
    basis, energy, prov, _err, notes = _fit_energy(segs)
    assert (basis, prov) == (BASIS_ACTIVE_POWER, Provenance.ESTIMATED)
    assert energy.base_power_w == pytest.approx(1.5, rel=1e-6)
    assert energy.power_per_busy_cpu_w == pytest.approx(2.8, rel=1e-6)
    assert energy.active_power(2.0) == pytest.approx(7.1, rel=1e-6)
    assert "utilization-linear" in notes[0]


def test_tiny_budget_calibration_respects_budget_and_accounts_for_every_class(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENAI_CALIBRATION_DIR", str(tmp_path / "calib"))
    import torch

    from greenai.tracking.tracker import Tracker  # noqa: F401  (imports are not the budget's)

    x = torch.ones(2, requires_grad=True)
    torch.autograd.grad(x.sum(), [x])  # first calls import sympy and torch._dynamo (~2 s)
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    torch.optim.Adam([p]).step()
    budget = 3.0
    messages: list[str] = []
    t0 = time.perf_counter()
    profile = calibrate(budget, progress=messages.append)
    wall = time.perf_counter() - t0
    assert wall < budget * 1.5 + 1.0
    assert profile.calibration_s <= wall and profile.budget_s == budget
    for op_class in OpClass:
        for dtype in ("float32", "bfloat16", "int8"):
            key = f"{op_class.value}/{dtype}"
            assert key in profile.time_models or profile.missing.get(key), key
    assert profile.missing["communication/float32"].startswith("collectives")
    for key, model in profile.time_models.items():
        assert model.overhead_s >= 0 and model.points >= 2, key
        assert model.rate_flops or model.bandwidth_bps or model.overhead_s > 0, key
    assert profile.energy_provenance in {p.value for p in Provenance}
    assert profile.module_call_s >= 0 and profile.backward_call_s > 0
    assert load_profile() == profile  # saved where load_profile finds it
    assert messages[0].startswith("calibrating:") and messages[-1].startswith("calibrated in")
    assert profile.time_models, "a 3 s budget fits the two smallest sizes of some classes"


def test_calibration_stores_memory_beyond_the_caches_when_its_budget_allows(tmp_path, monkeypatch):
    """From a budget of BEYOND_CACHE_MIN_BUDGET_S on, calibration measures memory beyond the
    caches (memory.beyond_cache_costs) and the profile keeps it, with a note; below it the terms
    stay 0 (not applied) and the note says so."""
    from greenai.estimation import calibrate as cal
    from greenai.estimation.memory import BeyondCache

    monkeypatch.setenv("GREENAI_CALIBRATION_DIR", str(tmp_path))
    measured = BeyondCache(32.0 * 2**20, 9.5e9, 1.5e-9, 3.9e9)
    monkeypatch.setattr(cal, "beyond_cache_costs", lambda target_s: measured)
    skipped = calibrate(1.0, dtypes=("float32",), backward=False, save=False)
    assert (skipped.llc_bytes, skipped.dram_bandwidth_bps, skipped.mapped_s_per_byte) == (0.0, 0.0, 0.0)
    assert any("memory beyond the caches: not measured" in n for n in skipped.notes)
    monkeypatch.setattr(cal, "BEYOND_CACHE_MIN_BUDGET_S", 0.5)
    profile = calibrate(1.0, dtypes=("float32",), backward=False, save=False)
    assert (profile.llc_bytes, profile.dram_bandwidth_bps, profile.mapped_s_per_byte) == (32.0 * 2**20, 9.5e9, 1.5e-9)
    assert profile.matmul_dram_bandwidth_bps == 3.9e9
    assert any("last-level cache 32 MiB" in n and "6.14 us per 4 KiB page" in n for n in profile.notes)


def calling(call):
    """A module whose forward makes `call` (a benchmark's timed call), for op counting."""
    import torch

    class Run(torch.nn.Module):
        def forward(self, x):
            call()
            return x

    return Run()


def test_benchmarks_count_what_op_counting_counts():
    """The FLOPs and bytes the calibration fits against are op counting's, kernel by kernel."""
    import torch

    from greenai.estimation.counting import count_ops

    wanted = {
        "linear 64x128->128",
        "conv 8x3x32x32 k32 3x3/1",
        "layer_norm 64x256",
        "max_pool2d 4x16x32x32",
        "embedding_bag 20000x32 [32x20]",
        "gelu 65536",
        "cat 64x64x2",
        "dwconv 1x32x32x32 k32 3x3/1",
        "softmax 64x128",
        "sum 64x1024",
        "conv 1x16x16x16 k16 3x3/1",
        "grouped conv 8x64x16x16 g8 3x3/1",
    }
    benches = [b for b in mb.suite((mb.FP32,), backward=False) if b.name in wanted]
    assert {b.name for b in benches} == wanted
    for bench in benches:
        counts = count_ops(calling(bench.make()), torch.zeros(1), on_meta=False)
        got = sorted((r.op_class.value, r.flops, r.bytes_read + r.bytes_written) for r in counts.records)
        assert got == sorted((k.value, f, b) for k, f, b in bench.kernels), bench.name
        if bench.op:  # its own roofline: an operator, or a variant of one (a one-image convolution)
            assert any(bench.op == r.variant or bench.op in r.op for r in counts.records), bench.name
    assert {b.name for b in benches if b.op == SINGLE_IMAGE} == {"conv 1x16x16x16 k16 3x3/1"}
    assert {b.name for b in benches if b.op == GROUPED} == {"grouped conv 8x64x16x16 g8 3x3/1"}


def test_convolution_benchmarks_are_in_the_regime_counting_marks_and_each_group_can_be_fitted():
    """Every dense convolution benchmark: op counting marks its records one-image exactly when
    the benchmark calibrates the one-image roofline; each group has sizes enough to fit."""
    import torch

    from greenai.estimation.calibrate import MIN_POINTS_FULL
    from greenai.estimation.counting import count_ops

    benches = [b for b in mb.suite((mb.FP32, mb.BF16), backward=False) if b.op_class is OpClass.CONV]
    for bench in (b for b in benches if b.dtype == mb.FP32):
        counts = count_ops(calling(bench.make()), torch.zeros(1), on_meta=False)
        assert {r.variant for r in counts.records if r.op_class is OpClass.CONV} == {bench.op}, bench.name
    sizes = {g: sum(b.group == g for b in benches) for g in {b.group for b in benches}}
    assert sizes["conv/float32"] >= MIN_POINTS_FULL and sizes["conv/bfloat16"] >= MIN_POINTS_FULL
    assert sizes["conv/float32@single_image"] >= 3 and sizes["conv/bfloat16@single_image"] >= 2
    assert sizes["conv/float32@grouped"] >= MIN_POINTS_FULL


def test_grouped_convolutions_are_calibrated_forward_only():
    """The grouped backward falls back on the dense backward roofline (a roofline of its own made
    the held-out set's training worse): no grouped backward benchmark."""
    benches = [b for b in mb.suite((mb.FP32,), backward=True) if b.op == GROUPED]
    assert len(benches) >= 6 and {b.pass_ for b in benches} == {mb.FORWARD}


def test_fit_roofline_keeps_the_additive_form_when_it_fits_better():
    o, rate, bw = 4e-6, 5e10, 1e10
    flops = np.array([1e4, 1e6, 1e7, 1e8, 1e9, 3e6, 3e8])
    nbytes = np.array([1e4, 1e5, 3e6, 1e6, 1e7, 2e7, 4e8])
    times = o + flops / rate + nbytes / bw  # compute and memory traffic not overlapped
    fit = fit_roofline(flops, nbytes, times)
    assert fit.overlap is False and fit.mape < 1e-6
    assert (fit.overhead_s, fit.rate_flops, fit.bandwidth_bps) == (
        pytest.approx(o, rel=1e-5),
        pytest.approx(rate, rel=1e-5),
        pytest.approx(bw, rel=1e-5),
    )


def test_forward_benchmarks_are_timed_in_inference_mode_entered_once():
    """Entering inference mode costs about a tiny operator: a model enters it once per batch,
    so forward benchmarks are timed inside it, not entering it per call."""
    import torch

    forward = next(b for b in mb.suite((mb.FP32,)) if b.pass_ == mb.FORWARD)
    backward = next(b for b in mb.suite((mb.FP32,)) if b.pass_ == mb.BACKWARD)
    call = forward.make()
    with mb.pass_mode(forward):
        assert torch.is_inference_mode_enabled()
        call()
    with mb.pass_mode(backward):
        assert not torch.is_inference_mode_enabled()
        backward.make()()
    assert not torch.is_inference_mode_enabled()


def test_fused_adam_benchmark_counts_what_op_counting_counts():
    import torch

    from greenai.estimation.counting import count_ops

    bench = mb.fused_optimizer_benches()[0]
    assert bench.op == "_fused_adam" and bench.group == "elementwise/float32@_fused_adam"
    counts = count_ops(calling(bench.make()), torch.zeros(1), on_meta=False)
    got = [(r.op_class.value, r.flops, r.bytes_read + r.bytes_written) for r in counts.records]
    assert got == [(k.value, f, b) for k, f, b in bench.kernels]


def test_optimizer_costs_are_timed_with_cold_caches(monkeypatch):
    from greenai.estimation import eager, timing

    evictions = []
    monkeypatch.setattr(timing, "evict_caches", lambda: evictions.append(1))
    timed = timing.run_cold(lambda: None, 0.0, min_calls=5)
    assert timed.calls == 5 and len(evictions) == 6  # one before each timed call, one after the first
    fixed, per_tensor = eager.fused_optimizer_costs(0.01)
    assert fixed > 0 and per_tensor >= 0 and len(evictions) > 6


def test_cold_runs_work_inside_and_outside_inference_mode(monkeypatch):
    """The eviction buffer, made on first use, stays usable whichever mode came first."""
    import torch

    from greenai.estimation import timing

    monkeypatch.setattr(timing, "_EVICT", [])
    monkeypatch.setattr(timing, "EVICT_BYTES", 1 << 16)
    with torch.inference_mode():
        timing.run_cold(lambda: None, 0.0, min_calls=1)
    timed = timing.run_cold(lambda: None, 0.0, min_calls=2)
    assert timed.calls == 2 and not timing._EVICT[0].is_inference()


def test_python_call_cost_is_a_small_positive_share():
    from greenai.estimation.eager import python_call_cost

    share = python_call_cost(0.02)
    assert 0.0 <= share < 20e-6


def test_size_correction_follows_the_residual_by_work_and_ignores_one_outlier():
    """Small calls 1.5x slower than the roofline, large ones on it, one noisy size: the
    correction is the running median of measured / roofline, by FLOPs."""
    model = TimeModel(1e-6, 1e10, None)
    flops = [1e4, 3e4, 1e5, 3e5, 1e7, 3e7, 1e8, 3e8]
    slow = [1.5, 1.5, 1.5, 1.5, 1.0, 3.0, 1.0, 1.0]  # 3e7: a disturbed measurement
    segs = [
        _segment(OpClass.CONV, f, f / 10, 10, 10 * r * model.time_s(f, 0), 0.0, 1.0, Provenance.ESTIMATED)
        for f, r in zip(flops, slow)
    ]
    fields = size_correction(model, segs, [0.0] * len(segs), "flops")
    fitted = dataclasses.replace(model, **fields)
    assert fields["correction_by"] == "flops"
    assert fitted.factor(1e4, 0) == pytest.approx(1.5)
    assert fitted.factor(3e7, 0) == pytest.approx(1.0)  # the outlier is outvoted
    assert fitted.factor(1e9, 0) == pytest.approx(1.0)
    assert size_correction(model, segs[:4], [0.0] * 4, "flops") == {}  # too few sizes


def test_training_forward_group_is_fitted_net_of_autograd_recording():
    """A training-forward group (batch norm with batch statistics) gets its own roofline,
    keyed by pass and operator, from synthetic timings; predict adds the autograd recording
    per kernel apart, so calibration takes it out of the measured times."""
    from greenai.estimation.calibrate import _fit_time
    from greenai.estimation.eager import Context

    ctx = Context(module_call_s=1e-6, grad_record_s=3e-6, backward_call_s=10e-6, view_s=1e-6)
    o, bw = 5e-6, 2e9
    segs = []
    for n in (1e3, 1e4, 1e5, 1e6):
        nbytes = 8 * n
        bench = mb.Bench(
            f"bn train {n:g}",
            OpClass.NORMALIZATION,
            "float32",
            mb.FORWARD_TRAIN,
            0,
            ((OpClass.NORMALIZATION, 7 * n, nbytes),),
            lambda: lambda: None,
            "native_batch_norm",
        )
        t = o + nbytes / bw + ctx.grad_record_s
        segs.append(Segment(bench, t, t, 100, 100 * t, 100 * t, 0.0, Provenance.ESTIMATED, 0.5))
    group = segs[0].bench.group
    assert group == "normalization/float32/forward_train@native_batch_norm"
    models, _, _, mape = _fit_time({group: segs}, {}, 2.0, ctx)
    model = models[group]
    assert model.overhead_s == pytest.approx(o, rel=1e-3)
    assert model.bandwidth_bps == pytest.approx(bw, rel=1e-3)
    assert mape < 1e-3


def test_training_forward_benchmarks_count_what_op_counting_counts():
    import torch

    from greenai.estimation.counting import count_ops

    class Run(torch.nn.Module):
        def __init__(self, call):
            super().__init__()
            self.call = call
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            self.call()
            return x * self.w

    benches = [
        b
        for b in mb.train_forward_benches(mb.FP32)
        if b.name in ("batch_norm train 4x16x16x16", "lstm train 4x8x32->32")
    ]
    assert len(benches) == 2 and all(b.pass_ == mb.FORWARD_TRAIN for b in benches)
    for bench in benches:
        counts = count_ops(Run(bench.make()), torch.zeros(1), training=True, on_meta=False)
        got = sorted(
            (r.op_class.value, r.flops, r.bytes_read + r.bytes_written)
            for r in counts.records
            if r.pass_ == "forward" and r.module == "" and r.op_class is bench.op_class
        )
        assert got == sorted((k.value, f, b) for k, f, b in bench.main), bench.name


def test_max_pooling_is_benchmarked_on_varied_values(monkeypatch):
    """Max pooling's comparisons are branches: on a constant tensor all are predicted, on real
    activations not, so its benchmarks use random values (deterministic, seeded)."""
    from greenai.estimation.timing import varied

    a, b = varied(4, 8), varied(4, 8)
    assert a.unique().numel() > 16 and bool((a == b).all()) and a.data_ptr() != b.data_ptr()
    shapes = []
    monkeypatch.setattr(mb, "varied", lambda *shape, **kw: shapes.append(shape) or varied(*shape, **kw))
    for backward in (False, True):
        pool = next(b for b in mb.reduction_benches(mb.FP32, backward) if b.op.startswith("max_pool2d"))
        pool.make()()
    assert len(shapes) == 2


def test_serial_busy_cpus_from_synthetic_loop_times():
    """Busy CPUs during the serial part of a loop: the loop's CPU time less the kernels' over
    its wall time less the kernels'."""
    from greenai.estimation.eager import serial_busy

    # 100 iterations: kernel 70 us at 2 CPUs, then 300 us of serial work at 1.9 CPUs
    wall = 100 * (70e-6 + 300e-6)
    cpu = 100 * (70e-6 * 2 + 300e-6 * 1.9)
    assert serial_busy(cpu, wall, 100 * 70e-6 * 2, 100 * 70e-6) == pytest.approx(1.9)
    assert serial_busy(1.0, 1.0, 0.0, 1.0) == 1.0  # no serial time: no measurement


def test_a_calibration_on_a_busy_machine_says_so_in_the_profile(tmp_path, monkeypatch):
    """Other processes' CPUs during calibration are read where every co-load is read
    (hardware/coload.py, here a fake /proc/stat with 0.87 CPUs busy beside this process); at or
    above the co-load threshold the profile's notes say so with the figure, below it they do not."""
    import re

    from greenai.config import Config
    from greenai.hardware import coload
    from greenai.testing.fake_machine import FakeMachine

    quiet = calibrate(1.0, dtypes=("float32",), backward=False, save=False)  # the suite's quiet machine
    assert not any("busy during calibration" in n for n in quiet.notes)
    path = tmp_path / "proc-stat"
    with FakeMachine(path, cores=0.87):
        monkeypatch.setattr(coload, "PROC_STAT", path)
        busy = calibrate(1.0, dtypes=("float32",), backward=False, save=False)
        lenient = calibrate(
            1.0, dtypes=("float32",), backward=False, save=False, config=Config(coload_threshold_cores=1.0)
        )
    (note,) = [n for n in busy.notes if "busy during calibration" in n]
    found = re.fullmatch(
        r"other processes kept (\d\.\d\d) CPUs busy during calibration \(a shared machine\): its timings, and so "
        r"its predictions, are less reliable; calibrate again when the machine is quiet",
        note,
    )
    assert found and float(found.group(1)) == pytest.approx(0.87, abs=0.05)
    assert not any("busy during calibration" in n for n in lenient.notes)  # 0.87 is under a threshold of 1
