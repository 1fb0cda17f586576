"""predict(): exact arithmetic on hand-made counts and a hand-made profile."""

from __future__ import annotations

import dataclasses

import pytest

from greenai.estimation import coefficients as co
from greenai.estimation.ops import GROUPED, SINGLE_IMAGE, OpClass, OpCounts, OpRecord, Pass
from greenai.estimation.predict import module_calls, predict, whole_run
from greenai.estimation.profile import (
    BASIS_ACTIVE_POWER,
    BASIS_COEFFICIENTS,
    EnergyModel,
    Profile,
    TimeModel,
    current_fingerprint,
    default_profile,
)


def rec(
    cls: OpClass, flops: float, nbytes: float, module: str, pass_: Pass = Pass.FORWARD, dtype: str = "float32"
) -> OpRecord:
    return OpRecord(f"aten.{cls.value}", cls, dtype, flops, nbytes / 2, nbytes / 2, module, pass_)


def counts(*records: OpRecord, batch: int = 8) -> OpCounts:
    return OpCounts(records=records, parameters=100, parameter_bytes=400, activation_bytes=1000, batch_size=batch)


def hand_profile(basis: str = BASIS_ACTIVE_POWER, **changes) -> Profile:
    fp = dataclasses.replace(current_fingerprint("estimated"), usable_cpus=2.0)
    models = {
        "matmul/float32": TimeModel(10e-6, 1e9, 1e9, busy_cpus=2.0, overhead_busy_cpus=1.0),
        "matmul/float32/backward": TimeModel(20e-6, 5e8, None, busy_cpus=2.0, overhead_busy_cpus=1.0),
        "elementwise/float32": TimeModel(2e-6, None, 1e9, busy_cpus=1.0, overhead_busy_cpus=1.0),
    }
    if basis == BASIS_ACTIVE_POWER:
        energy = EnergyModel(active_power_w=4.0, base_power_w=1.0, power_per_busy_cpu_w=2.0, meter_rel_uncertainty=0.5)
    else:
        energy = EnergyModel(
            static_w=10.0,
            pj_per_flop={"matmul/float32": 5.0, "*/*": 1.0},
            pj_per_byte={"*/*": 100.0},
            meter_rel_uncertainty=0.05,
        )
    base = Profile(
        fingerprint=fp,
        created_at="2025-03-04T05:06:07+00:00",
        time_models=models,
        missing={"matmul/bfloat16": "emulated, skipped"},
        energy_basis=basis,
        energy=energy,
        energy_provenance="estimated" if basis == BASIS_ACTIVE_POWER else "measured",
        fit_mape_time=0.05,
        fit_mape_energy=0.01,
        view_overhead_s=1e-6,
        module_call_s=1e-6,
        grad_record_s=0.5e-6,
        backward_call_s=10e-6,
    )
    return dataclasses.replace(base, **changes)


FC = rec(OpClass.MATMUL, 2e6, 1e5, "fc1")  # t = 10us + max(2e6/1e9, 1e5/1e9) = 2.01 ms
ACT = rec(OpClass.ELEMENTWISE, 1e3, 4e3, "act")  # t = 2us + 4e3/1e9 = 6 us


def test_inference_time_and_energy_active_power_basis():
    p = predict(counts(FC, ACT), hand_profile())
    # kernels 2.01 ms + 6 us, plus 3 module calls ("", fc1, act) of 1 us
    assert p.time_s == pytest.approx(2.01e-3 + 6e-6 + 3e-6, rel=1e-12)
    # E = P_active(u) t = 1 W x t + 2 W x cpu; fc1: cpu = 10us x 1 + 2 ms x 2 = 4.01 ms
    e_fc = 1.0 * 2.01e-3 + 2.0 * 4.01e-3
    e_act = 1.0 * 6e-6 + 2.0 * 6e-6
    e_modules = 3 * 1e-6 * (1.0 + 2.0 * 1)  # dispatch keeps one CPU busy
    assert p.energy_j == pytest.approx(e_fc + e_act + e_modules, rel=1e-12)
    assert p.provenance == "estimated (calibrated 2025-03-04)"
    assert list(p.per_pass) == ["forward"]
    assert p.per_pass["forward"] == pytest.approx((p.time_s, p.energy_j))
    layers = {row.module: row for row in p.per_layer}
    assert layers["fc1"].time_s == pytest.approx(2.01e-3 + 1e-6)
    assert layers["fc1"].flops == 2e6 and layers["fc1"].bytes_moved == 1e5
    assert layers["act"].energy_j == pytest.approx(e_act + 3e-6)
    assert sum(r.time_s for r in p.per_layer) == pytest.approx(p.time_s)
    assert sum(r.energy_j for r in p.per_layer) == pytest.approx(p.energy_j)
    assert p.samples_per_s == pytest.approx(8 / p.time_s)
    classes = {(c.op_class, c.dtype): c for c in p.per_class}
    assert classes[("matmul", "float32")].calls == 1
    assert classes[("elementwise", "float32")].time_s == pytest.approx(6e-6)


def test_training_step_uses_backward_models_and_autograd_costs():
    bwd = rec(OpClass.MATMUL, 4e6, 2e5, "fc1", Pass.BACKWARD)  # 20us + 4e6/5e8 = 8.02 ms
    opt = rec(OpClass.ELEMENTWISE, 3e3, 1e4, "fc1", Pass.OPTIMIZER)  # 5us (in step) + 10us
    p = predict(counts(FC, ACT, bwd, opt), hand_profile(optimizer_step_s=40e-6, optimizer_record_s=5e-6))
    forward_t = 2.01e-3 + 6e-6 + 3e-6 + 2 * 0.5e-6  # + autograd record per forward kernel
    backward_t = 8.02e-3 + 10e-6  # + engine start
    optimizer_t = 15e-6 + 40e-6  # the operator, then optimizer.step()'s fixed cost
    assert p.per_pass["forward"][0] == pytest.approx(forward_t, rel=1e-12)
    assert p.per_pass["backward"][0] == pytest.approx(backward_t, rel=1e-12)
    assert p.per_pass["optimizer"][0] == pytest.approx(optimizer_t, rel=1e-12)
    assert p.time_s == pytest.approx(forward_t + backward_t + optimizer_t, rel=1e-12)
    e_bwd = 1.0 * 8.02e-3 + 2.0 * (20e-6 + 8e-3 * 2) + 3.0 * 10e-6
    assert p.per_pass["backward"][1] == pytest.approx(e_bwd, rel=1e-12)


def test_fused_optimizer_costs_a_fixed_part_per_tensor_and_its_kernel():
    bwd = rec(OpClass.MATMUL, 4e6, 2e5, "fc1", Pass.BACKWARD)
    kernel = OpRecord(
        "aten._fused_adam_.default", OpClass.ELEMENTWISE, "float32", 13e3, 1e4, 1e4, "fc1", Pass.OPTIMIZER
    )  # 2e4 B at 1 GB/s = 20 us, no per-call overhead
    step = OpCounts(
        records=(FC, bwd, kernel),
        parameters=1000,
        parameter_bytes=4000,
        activation_bytes=1000,
        batch_size=8,
        parameter_tensors=3,
    )
    p = predict(
        step,
        hand_profile(
            optimizer_step_s=40e-6,
            optimizer_record_s=5e-6,
            fused_optimizer_step_s=300e-6,
            fused_optimizer_param_s=10e-6,
            optimizer_timing="cold",
        ),
    )
    assert p.per_pass["optimizer"][0] == pytest.approx(20e-6 + 300e-6 + 3 * 10e-6, rel=1e-12)
    assert not any("fused" in n or "calibrate" in n for n in p.notes)
    # calibrated cold where torch had no fused kernel: default coefficients for it, said so
    none = predict(step, hand_profile(optimizer_timing="cold"))
    assert any("no fused optimizer step was calibrated" in n for n in none.notes)
    assert not any("predates" in n for n in none.notes)
    # a profile made before fused steps were calibrated: default coefficients, said so
    old = predict(step, hand_profile())
    assert old.per_pass["optimizer"][0] == pytest.approx(
        20e-6 + co.FUSED_OPTIMIZER_STEP_S + 3 * co.FUSED_OPTIMIZER_PARAM_S, rel=1e-12
    )
    assert any("predates cold-cache timing" in n for n in old.notes)


def test_coefficients_basis_is_sum_of_e_times_c_plus_static():
    p = predict(counts(FC), hand_profile(BASIS_COEFFICIENTS))
    t = 2.01e-3 + 2e-6  # kernel + 2 module calls ("", fc1)
    assert p.time_s == pytest.approx(t, rel=1e-12)
    dynamic = (5.0 * 2e6 + 100.0 * 1e5) * 1e-12  # matmul/float32 pJ/FLOP, */* pJ/byte
    assert p.energy_j == pytest.approx(dynamic + 10.0 * t, rel=1e-12)


def test_missing_dtype_falls_back_to_float32_with_a_note():
    bf16 = rec(OpClass.MATMUL, 2e6, 1e5, "fc1", dtype="bfloat16")
    p = predict(counts(bf16), hand_profile())
    assert p.time_s == pytest.approx(2.01e-3 + 2e-6, rel=1e-12)  # the float32 model
    assert any("matmul/bfloat16: no time model (emulated, skipped); used matmul/float32" in n for n in p.notes)


def test_missing_class_falls_back_to_default_coefficients_with_a_note():
    sm = rec(OpClass.SOFTMAX, 5e3, 8e3, "head")
    p = predict(counts(sm), hand_profile())
    assert any("softmax/float32: no time model (not calibrated); used default coefficients" in n for n in p.notes)
    assert p.time_s > 8e3 / 1e12  # some time, from the defaults


def test_uncertainty_bands_contain_the_point_estimate():
    calibrated = predict(counts(FC, ACT), hand_profile())
    assert calibrated.time_low_s < calibrated.time_s < calibrated.time_high_s
    assert calibrated.energy_low_j < calibrated.energy_j < calibrated.energy_high_j
    # time: a factor of max(1.6, 1 + 2 x 5%) either way; energy: the same factor (1 + 2 x (5% + 1%)
    # is less), its relative widths plus the meter's 50%
    assert calibrated.time_high_s == pytest.approx(calibrated.time_s * 1.6)
    assert calibrated.time_low_s == pytest.approx(calibrated.time_s / 1.6)
    assert calibrated.energy_high_j == pytest.approx(calibrated.energy_j * (1 + 0.6 + 0.5))
    assert calibrated.energy_low_j == pytest.approx(calibrated.energy_j * (1 - (1 - 1 / 1.6) - 0.5))
    poor = predict(counts(FC), hand_profile(fit_mape_time=0.4))
    assert poor.time_high_s == pytest.approx(poor.time_s * 1.8)  # 1 + 2 x self-MAPE
    assert poor.time_low_s == pytest.approx(poor.time_s / 1.8)
    assert poor.energy_high_j == pytest.approx(poor.energy_j * (1 + 0.82 + 0.5))  # 1 + 2 x (40% + 1%)
    assert poor.energy_low_j == pytest.approx(poor.energy_j * (1 - (1 - 1 / 1.82) - 0.5))
    rough = predict(counts(FC, ACT), default_profile())
    assert rough.provenance == "estimated (default coefficients, rough)"
    assert rough.time_low_s == pytest.approx(rough.time_s / 3)
    assert rough.time_high_s == pytest.approx(rough.time_s * 3)
    assert rough.energy_low_j < rough.energy_j < rough.energy_high_j


def test_default_profile_prediction_is_used_without_a_profile():
    p = predict(counts(FC))
    assert p.provenance == "estimated (default coefficients, rough)"
    assert p.time_s > 0 and p.energy_j > 0


def test_whole_run_scales_one_step():
    step = predict(counts(FC, ACT, batch=32), hand_profile())
    run = whole_run(step, 1000)
    assert run.samples == 32_000
    assert run.time_s == pytest.approx(1000 * step.time_s)  # t = D / V
    assert run.energy_j == pytest.approx(1000 * step.energy_j)
    assert run.time_low_s < run.time_s < run.time_high_s
    assert run.energy_low_j == pytest.approx(1000 * step.energy_low_j)
    assert run.provenance == step.provenance
    assert whole_run(step, 0).energy_j == 0.0
    with pytest.raises(ValueError):
        whole_run(step, -1)


def test_module_calls_include_ancestors_once():
    records = [
        rec(OpClass.MATMUL, 1, 1, "encoder.layers.0.linear1"),
        rec(OpClass.MATMUL, 1, 1, "encoder.layers.0.linear2"),
        rec(OpClass.ELEMENTWISE, 1, 1, "encoder.layers.1.act"),
    ]
    assert module_calls(records) == [
        "",
        "encoder",
        "encoder.layers",
        "encoder.layers.0",
        "encoder.layers.0.linear1",
        "encoder.layers.0.linear2",
        "encoder.layers.1",
        "encoder.layers.1.act",
    ]


def test_operator_with_its_own_roofline_is_preferred_over_its_class():
    profile = hand_profile()
    models = {
        **profile.time_models,
        "elementwise/float32@tanh": TimeModel(3e-6, None, 1e8, busy_cpus=1.0, overhead_busy_cpus=1.0),
    }
    profile = dataclasses.replace(profile, time_models=models)
    tanh = OpRecord("aten.tanh_.default", OpClass.ELEMENTWISE, "float32", 5e3, 2e3, 2e3, "gru", Pass.FORWARD)
    add = OpRecord("aten.add_.Tensor", OpClass.ELEMENTWISE, "float32", 1e3, 2e3, 2e3, "gru", Pass.FORWARD)
    p = predict(counts(tanh, add), profile)
    # tanh_: 3us + 4e3 B / 1e8 B/s = 43 us; add_: the class roofline, 2us + 4e3 / 1e9 = 6 us
    assert p.time_s == pytest.approx(43e-6 + 6e-6 + 2 * 1e-6, rel=1e-12)


def test_a_variant_calibrated_apart_is_preferred_and_falls_back_on_the_class():
    """A convolution of one image (OpRecord.variant SINGLE_IMAGE) uses the "@single_image"
    roofline where calibrated, else its class's (profiles made before the split)."""
    profile = hand_profile()
    conv = {"conv/float32": TimeModel(100e-6, 1e9, 1e9, busy_cpus=1.0, overhead_busy_cpus=1.0)}
    split = {**conv, "conv/float32@single_image": TimeModel(10e-6, 1e9, 1e9, busy_cpus=1.0, overhead_busy_cpus=1.0)}
    one = OpRecord(
        "aten.convolution.default", OpClass.CONV, "float32", 1e6, 1e4, 1e4, "c", Pass.FORWARD, variant=SINGLE_IMAGE
    )
    batch = dataclasses.replace(one, variant="")
    kernel = lambda p: next(r for r in p.per_layer if r.module == "c").time_s - 1e-6  # less the module call
    with_split = dataclasses.replace(profile, time_models={**profile.time_models, **split})
    before = dataclasses.replace(profile, time_models={**profile.time_models, **conv})
    assert kernel(predict(counts(one), with_split)) == pytest.approx(10e-6 + 1e-3, rel=1e-9)
    assert kernel(predict(counts(batch), with_split)) == pytest.approx(100e-6 + 1e-3, rel=1e-9)
    assert kernel(predict(counts(one), before)) == pytest.approx(100e-6 + 1e-3, rel=1e-9)
    assert not predict(counts(one), before).notes
    # within its pass only: a one-image backward takes the backward roofline, not the
    # one-image forward one (a calibration without the one-image backward group)
    backward = TimeModel(300e-6, 1e9, 1e9)
    no_bwd_variant = dataclasses.replace(
        with_split, time_models={**with_split.time_models, "conv/float32/backward": backward}
    )
    assert (
        no_bwd_variant.time_model(OpClass.CONV, "float32", "backward", "convolution_backward", SINGLE_IMAGE) is backward
    )
    assert (
        no_bwd_variant.time_model(OpClass.CONV, "float32", "forward_train", "convolution", SINGLE_IMAGE)
        is split["conv/float32@single_image"]
    )


def test_a_grouped_convolution_takes_its_own_roofline_where_calibrated():
    """OpRecord.variant GROUPED: "conv/float32@grouped" (and its backward) where calibrated,
    else the class's (profiles made before)."""
    profile = hand_profile()
    dense = TimeModel(100e-6, 1e10, None)
    grouped = TimeModel(20e-6, 1e10, 1e8)  # bound by the bytes: 1e5 B / 1e8 B/s = 1 ms
    grouped_bwd = TimeModel(30e-6, 1e10, 5e7)
    calibrated = dataclasses.replace(
        profile,
        time_models={
            **profile.time_models,
            "conv/float32": dense,
            "conv/float32@grouped": grouped,
            "conv/float32/backward@grouped": grouped_bwd,
        },
    )
    fwd = OpRecord(
        "aten.convolution.default", OpClass.CONV, "float32", 1e6, 5e4, 5e4, "c", Pass.FORWARD, variant=GROUPED
    )
    bwd = dataclasses.replace(fwd, op="aten.convolution_backward.default", pass_=Pass.BACKWARD)
    kernel = lambda p, r: p.per_pass[r.pass_.value][0]
    assert kernel(predict(counts(fwd), calibrated), fwd) == pytest.approx(2e-6 + 20e-6 + 1e-3)  # + 2 module calls
    assert kernel(predict(counts(bwd), calibrated), bwd) == pytest.approx(10e-6 + 30e-6 + 2e-3)  # + engine start
    before = dataclasses.replace(profile, time_models={**profile.time_models, "conv/float32": dense})
    assert kernel(predict(counts(fwd), before), fwd) == pytest.approx(2e-6 + 100e-6 + 1e-4)
    assert calibrated.time_model(OpClass.CONV, "float32", "forward", "convolution", GROUPED) is grouped


def test_memory_beyond_the_last_level_cache_streams_at_the_memorys_bandwidth():
    """A record moving more bytes than the last-level cache takes at least its bytes at the
    bandwidth of a stream through memory (Profile.dram_bandwidth_bps), its fixed cost added;
    smaller records, and every record with a profile made before, keep the roofline."""
    beyond = hand_profile(llc_bytes=1e6, dram_bandwidth_bps=1e8)
    big = rec(OpClass.ELEMENTWISE, 1e5, 4e6, "act")  # roofline 2 us + 4 ms; from memory 40 ms
    small = rec(OpClass.ELEMENTWISE, 1e5, 8e5, "act")  # inside the cache: 2 us + 0.8 ms
    compute = rec(OpClass.MATMUL, 1e8, 2e6, "fc1")  # roofline 10 us + 100 ms > 20 ms from memory
    forward = lambda r, p: predict(counts(r), p).per_pass["forward"][0] - 2e-6  # less two module calls
    assert forward(big, beyond) == pytest.approx(2e-6 + 4e-2)
    assert forward(small, beyond) == pytest.approx(2e-6 + 8e-4)
    assert forward(compute, beyond) == pytest.approx(10e-6 + 0.1)
    assert forward(big, hand_profile()) == pytest.approx(2e-6 + 4e-3)
    # an expanded tensor counted at its expanded size moves its storage once: 4 MB counted, 0.5 MB read
    expanded = dataclasses.replace(big, repeated_bytes=3.5e6)
    assert forward(expanded, beyond) == pytest.approx(2e-6 + 4e-3)
    # the energy follows the time, at the CPUs the class keeps busy
    p = predict(counts(big), beyond)
    kernel = next(r for r in p.per_layer if r.module == "act")
    assert kernel.energy_j == pytest.approx((1.0 + 2.0 * 1.0) * kernel.time_s, rel=1e-6)


def test_a_step_whose_parameters_exceed_the_cache_streams_every_operation_from_memory():
    """When the parameters (training: with gradients and two moments per parameter) exceed the
    last-level cache, every record takes at least its bytes at the memory's bandwidth, a matmul's
    at the bandwidth of a weight streamed by a linear layer (Profile.matmul_dram_bandwidth_bps)."""
    prof = hand_profile(llc_bytes=1e6, dram_bandwidth_bps=1e9, matmul_dram_bandwidth_bps=2e8)
    fc = rec(OpClass.MATMUL, 2e3, 8e5, "fc1")  # roofline 10 us + 0.8 ms; from memory 4 ms
    act = rec(OpClass.ELEMENTWISE, 1e3, 8e5, "act")  # roofline 2 us + 0.8 ms; from memory 0.8 ms
    small = dataclasses.replace(counts(fc, act), parameter_bytes=400_000)  # fits the cache
    large = dataclasses.replace(small, parameter_bytes=2_000_000)  # does not
    kernel = lambda c, m: next(r for r in predict(c, prof).per_layer if r.module == m).time_s - 1e-6
    assert kernel(small, "fc1") == pytest.approx(10e-6 + 8e-4)
    assert kernel(large, "fc1") == pytest.approx(10e-6 + 4e-3)
    assert kernel(large, "act") == pytest.approx(2e-6 + 8e-4)
    # training: parameters, gradients and two moments (4 x 400 kB > 1 MB)
    bwd = rec(OpClass.MATMUL, 4e3, 8e5, "fc1", Pass.BACKWARD)  # roofline 20 us + 8 ns
    step = counts(fc, act, bwd, rec(OpClass.ELEMENTWISE, 1e3, 8e5, "fc1", Pass.OPTIMIZER))
    step = dataclasses.replace(step, parameter_bytes=400_000)
    assert predict(step, prof).per_pass["backward"][0] == pytest.approx(10e-6 + 20e-6 + 8e5 / 2e8)
    without_optimizer = dataclasses.replace(step, records=step.records[:3])  # 2 x 400 kB fits
    assert predict(without_optimizer, prof).per_pass["backward"][0] == pytest.approx(10e-6 + 20e-6 + 4e3 / 5e8)
    assert predict(large, hand_profile()).time_s == predict(small, hand_profile()).time_s  # profiles before


def test_mapped_memory_costs_its_bytes_at_the_calibrated_rate():
    """New outputs of 32 MiB or more (OpRecord.mapped_bytes) are fresh pages: each byte costs
    Profile.mapped_s_per_byte on top of the roofline; 0 in profiles made before."""
    prof = hand_profile(mapped_s_per_byte=1e-9)
    plain = rec(OpClass.ELEMENTWISE, 1e3, 4e3, "act")
    mapped = dataclasses.replace(plain, mapped_bytes=5e6)
    forward = lambda r, p: predict(counts(r), p).per_pass["forward"][0]
    assert forward(mapped, prof) - forward(plain, prof) == pytest.approx(5e-3)
    assert forward(mapped, hand_profile()) == forward(plain, hand_profile())


def test_time_model_without_overlap_adds_compute_and_memory():
    overlapped = TimeModel(2e-6, 1e9, 1e9)
    additive = dataclasses.replace(overlapped, overlap=False)
    assert overlapped.time_s(3e3, 1e3) == pytest.approx(2e-6 + 3e-6)
    assert additive.time_s(3e3, 1e3) == pytest.approx(2e-6 + 3e-6 + 1e-6)


def test_operator_issued_from_cpp_is_not_charged_pythons_share():
    """nn.GRU's per-step operators (python_call False) cost the class overhead less Python's
    share of a call; backward operators (issued by the autograd engine) are left alone."""
    prof = hand_profile(python_call_s=1.5e-6)
    inner = dataclasses.replace(ACT, python_call=False)  # 2 us - 1.5 us + 4 us
    one = predict(counts(ACT), prof).per_pass["forward"][0]
    other = predict(counts(inner), prof).per_pass["forward"][0]
    assert one - other == pytest.approx(1.5e-6, rel=1e-9)
    bwd = rec(OpClass.MATMUL, 4e6, 2e5, "fc1", Pass.BACKWARD)
    inner_bwd = dataclasses.replace(bwd, python_call=False)
    assert predict(counts(FC, inner_bwd), prof).time_s == predict(counts(FC, bwd), prof).time_s
    tiny = hand_profile(python_call_s=50e-6)  # never below the work itself
    assert predict(counts(inner), tiny).per_pass["forward"][0] == pytest.approx(4e-6 + 2e-6)


def test_training_forward_uses_the_training_variant_roofline_where_calibrated():
    """Batch norm computes batch statistics in a training step: its forward there uses the
    "forward_train" roofline (calibrate's training-forward benchmarks); inference keeps the
    forward one, and a class without a training roofline falls back on its forward one."""
    profile = hand_profile()
    models = {
        **profile.time_models,
        "normalization/float32": TimeModel(1e-6, None, 1e10),
        "normalization/float32/forward_train@native_batch_norm": TimeModel(2e-6, None, 1e9),
    }
    profile = dataclasses.replace(profile, time_models=models)
    bn = OpRecord("aten.native_batch_norm.default", OpClass.NORMALIZATION, "float32", 7e3, 5e3, 5e3, "bn", Pass.FORWARD)
    ln = OpRecord("aten.native_layer_norm.default", OpClass.NORMALIZATION, "float32", 7e3, 5e3, 5e3, "ln", Pass.FORWARD)
    bwd = rec(OpClass.MATMUL, 4e6, 2e5, "fc1", Pass.BACKWARD)
    kernel = lambda p, module: next(r for r in p.per_layer if r.module == module).time_s
    inference = predict(counts(bn, ln), profile)
    training = predict(counts(bn, ln, bwd), profile)
    assert kernel(inference, "bn") == pytest.approx(1e-6 + 1e4 / 1e10 + 1e-6, rel=1e-12)  # + module call
    assert kernel(training, "bn") == pytest.approx(2e-6 + 1e4 / 1e9 + 1e-6 + 0.5e-6, rel=1e-12)  # + record
    assert kernel(training, "ln") == pytest.approx(1e-6 + 1e4 / 1e10 + 1e-6 + 0.5e-6, rel=1e-12)
    assert (
        profile.time_model(OpClass.NORMALIZATION, "float32", "forward_train", "native_layer_norm")
        is models["normalization/float32"]
    )


def test_serial_work_after_parallel_kernels_keeps_the_spinning_workers_busy():
    """In a step with a parallel kernel, torch's OpenMP workers spin-wait through serial work:
    the active-power energy of serial operators and dispatch costs uses at least the measured
    Profile.serial_busy_cpus; time is unchanged, and a step without a parallel kernel too."""
    prof = hand_profile(serial_busy_cpus=1.9)
    plain = hand_profile()
    # FC keeps 2 CPUs busy on its work (parallel); ACT keeps 1 (serial)
    with_parallel, before = predict(counts(FC, ACT), prof), predict(counts(FC, ACT), plain)
    assert with_parallel.time_s == before.time_s
    act = lambda p: next(r for r in p.per_layer if r.module == "act").energy_j
    # act: 6 us of kernel + 1 us module call, all at P_active(1.9) = 1 + 2 x 1.9 W
    assert act(with_parallel) == pytest.approx((6e-6 + 1e-6) * (1.0 + 2.0 * 1.9), rel=1e-12)
    assert act(before) == pytest.approx((6e-6 + 1e-6) * (1.0 + 2.0 * 1.0), rel=1e-12)
    serial_only = counts(ACT)
    assert predict(serial_only, prof).energy_j == predict(serial_only, plain).energy_j
