"""Predict time and energy before a run: E = sum_i E_i * C_i over counted operations.

Time of one operation (a roofline per operation class and dtype, from the profile; the
backward pass, the forward of a training step (for kernels that differ there: batch norm's
batch statistics, oneDNN's LSTM training variant) and a few operators whose cost is far from
their class's (transcendentals, dropout's random numbers, max pooling, EmbeddingBag) and regimes
of an operator (OpRecord.variant: a convolution of one image) have their own rooflines where
calibrated; a dtype without one falls back on float32, noted (integer
bookkeeping silently), then on the default coefficients, noted):

    t_i = overhead + max(flops_i / rate, bytes_i / bandwidth)

and of a call that moves no data (a view) the profile's view overhead. Memory beyond the
caches (memory.py; profiles made before 2026-12-07 have none): a call moving more bytes than
the last-level cache, or any call of a step whose parameters (with gradients and optimizer
state) exceed it, takes at least its bytes at the bandwidth of a stream through memory (a
matmul's own where calibrated), and
the new outputs of 32 MiB or more it allocates (OpRecord.mapped_bytes) cost the calibrated time
per byte of fresh memory (page faults, munmap). A step's time is the
sum (eager execution runs one operation after another) plus what eager PyTorch adds around
kernels: one module-call cost per nn.Module the records show, and in a training step one
autograd-recording cost per forward operation, one engine start for the backward, and for
the optimizer step a fixed cost plus, per operator, the measured cost of an operator inside
optimizer.step() (Python included) instead of the class's overhead; a fused optimizer
(``Adam(fused=True)``: one kernel for all parameters) instead costs a fixed part plus one per
parameter tensor (Python still walks them), plus its kernel's roofline. An operator issued from
C++ inside another call (``OpRecord.python_call`` False: nn.GRU's per-step operators, the
parts of a fused layer) is charged its overhead less Python's share of a call
(``Profile.python_call_s``), which the micro-benchmarks, called from Python, include.

Energy, by the profile's basis (see profile.py):
- "coefficients": E = sum_i (pJ/FLOP x flops_i + pJ/B x bytes_i) + P_static x t;
- "active_power": E = sum_i P_active(u_i) x t_i, u_i the CPUs the operation keeps busy; in a
  step with a parallel kernel at least the CPUs torch's spin-waiting OpenMP workers keep busy
  during serial work (Profile.serial_busy_cpus), the dispatch costs included.

Uncertainty band (~95%), as factors of the point estimate (measured / predicted is a ratio,
and under- and over-prediction are alike on a log scale): calibrated, a factor of
max(1.6, 1 + 2 x the profile's own error on its micro-benchmarks) for time, [t / F, t x F];
for energy that model band plus the band of the meters the profile was fitted on (linear sum
of the relative widths, as greenai combines bands: docs/measurement.md). Default coefficients:
a factor of 3. The factors are a judgement from evidence, not a statistic of one profile: the
95th percentile of measured / predicted (or its inverse) over 252 cases of seven accuracy runs
on the project's 2-vCPU VM (benchmarks/estimate_accuracy.py, 2026-12-03) was 1.66 for time and
1.63 for energy calibrated (1.55 / 1.56 over the three runs of the current estimator), 3.03 and
2.84 with the default coefficients. Most of it is the machine's drift between calibration and
run, which micro-benchmarks cannot see (docs/benchmarks.md); the benchmark reports how many
measured cases fall inside the band.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass

from greenai.estimation import coefficients as co
from greenai.estimation.formulas import total_energy, training_time_s, weighted_energy
from greenai.estimation.ops import OpClass, OpCounts, OpRecord, Pass
from greenai.estimation.profile import (
    BASIS_ACTIVE_POWER,
    Profile,
    TimeModel,
    default_profile,
)

TRAIN_FORWARD = "forward_train"  # the pass key of training-forward rooflines (microbench.py)
MODEL_FACTOR = 1.6  # calibrated: at least a factor of 1.6 either way (the docstring's evidence)
DEFAULT_FACTOR = 3.0  # default coefficients: a factor of 3 either way
PJ = 1e-12


@dataclass(frozen=True, slots=True)
class LayerRow:
    module: str  # dotted module path, "" for the top level
    flops: float
    bytes_moved: float
    time_s: float
    energy_j: float


@dataclass(frozen=True, slots=True)
class ClassRow:
    op_class: str
    dtype: str
    calls: int
    flops: float
    bytes_moved: float
    time_s: float
    energy_j: float


@dataclass(frozen=True)
class Prediction:
    """Predicted time and energy of one forward (inference batch) or one training step."""

    time_s: float
    time_low_s: float
    time_high_s: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    provenance: str  # "estimated (calibrated <date>)" or "estimated (default coefficients, rough)"
    per_pass: dict[str, tuple[float, float]]  # pass -> (time_s, energy_j)
    per_layer: tuple[LayerRow, ...]
    per_class: tuple[ClassRow, ...]
    batch_size: int
    transfer_energy_j: float = 0.0  # part of energy_j spent on communication
    notes: tuple[str, ...] = ()

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / self.time_s if self.time_s > 0 else float("inf")

    @property
    def compute_energy_j(self) -> float:
        return self.energy_j - self.transfer_energy_j


@dataclass(frozen=True)
class RunPrediction:
    """A whole run: `steps` steps of one predicted step."""

    steps: int
    samples: int
    time_s: float
    time_low_s: float
    time_high_s: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    provenance: str


def predict(counts: OpCounts, profile: Profile | None = None) -> Prediction:
    """Time and energy of what `counts` describes, on the machine `profile` was made on
    (None: the rough default coefficients)."""
    prof = profile if profile is not None else default_profile()
    notes: list[str] = list(counts.notes)
    seen_fallbacks: set[str] = set()
    per_pass: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    layers: dict[str, list[float]] = {}
    classes: dict[tuple[str, str], list[float]] = {}
    totals = [0.0, 0.0, 0.0]  # time, energy, transfer energy

    def add(module: str, pass_: str, t: float, e: float, flops: float = 0.0, nbytes: float = 0.0) -> None:
        totals[0] += t
        totals[1] += e
        per_pass[pass_][0] += t
        per_pass[pass_][1] += e
        row = layers.setdefault(module, [0.0, 0.0, 0.0, 0.0])
        row[0] += flops
        row[1] += nbytes
        row[2] += t
        row[3] += e

    training = any(Pass(r.pass_) is Pass.BACKWARD for r in counts.records)
    floor = serial_busy_floor(counts.records, prof, training)
    fused = is_fused_optimizer(counts.records)
    cold = cold_parameters(counts, prof)
    for record in counts.records:
        # a fused optimizer's calls are costed below (fixed + per tensor): its kernels' work only
        kernel_only = fused and Pass(record.pass_) is Pass.OPTIMIZER
        t, e = _record_cost(record, prof, notes, seen_fallbacks, training, floor, kernel_only, cold)
        nbytes = record.bytes_read + record.bytes_written
        add(record.module, Pass(record.pass_).value, t, e, record.flops, nbytes)
        if record.op_class is OpClass.COMMUNICATION:
            totals[2] += e
        crow = classes.setdefault(
            (OpClass(record.op_class).value, co.canonical_dtype(record.dtype)), [0, 0.0, 0.0, 0.0, 0.0]
        )
        crow[0] += 1
        crow[1] += record.flops
        crow[2] += nbytes
        crow[3] += t
        crow[4] += e
    # what eager PyTorch adds around the kernels: module calls, autograd graph, engine start
    one_cpu_w = _overhead_power_w(prof, floor)
    forward = [r for r in counts.records if Pass(r.pass_) is Pass.FORWARD]
    for module in module_calls(forward):
        add(module, Pass.FORWARD.value, prof.module_call_s, prof.module_call_s * one_cpu_w)
    if training:
        for r in forward:
            add(r.module, Pass.FORWARD.value, prof.grad_record_s, prof.grad_record_s * one_cpu_w)
        add("", Pass.BACKWARD.value, prof.backward_call_s, prof.backward_call_s * one_cpu_w)
    stepping = any(Pass(r.pass_) is Pass.OPTIMIZER for r in counts.records)
    if stepping and prof.optimizer_timing != "cold":
        notes.append(
            "the profile predates cold-cache timing of the optimizer (its step is "
            "under-predicted) and fused-optimizer calibration: run `greenai calibrate` again"
        )
    if fused:
        step_s, param_s = prof.fused_optimizer_step_s, prof.fused_optimizer_param_s
        if step_s == param_s == 0.0:  # not calibrated (older profile, or no fused kernel there)
            step_s, param_s = co.FUSED_OPTIMIZER_STEP_S, co.FUSED_OPTIMIZER_PARAM_S
            if prof.optimizer_timing == "cold":
                notes.append(
                    "no fused optimizer step was calibrated here: its fixed and "
                    "per-tensor costs are the default coefficients"
                )
        t = step_s + param_s * counts.parameter_tensors
        add("", Pass.OPTIMIZER.value, t, t * one_cpu_w)
    elif stepping:
        add("", Pass.OPTIMIZER.value, prof.optimizer_step_s, prof.optimizer_step_s * one_cpu_w)
    total_t, total_e, transfer_e = totals
    t_low, t_high, e_low, e_high = _bands(prof)
    return Prediction(
        time_s=total_t,
        time_low_s=total_t * (1 - t_low),
        time_high_s=total_t * (1 + t_high),
        energy_j=total_e,
        energy_low_j=total_e * (1 - e_low),
        energy_high_j=total_e * (1 + e_high),
        provenance=provenance_label(prof),
        per_pass={k: (v[0], v[1]) for k, v in per_pass.items()},
        per_layer=tuple(LayerRow(m, *v) for m, v in layers.items()),
        per_class=tuple(ClassRow(c, d, int(v[0]), *v[1:]) for (c, d), v in classes.items()),
        batch_size=counts.batch_size,
        transfer_energy_j=transfer_e,
        notes=tuple(notes),
    )


def is_fused_optimizer(records: tuple[OpRecord, ...]) -> bool:
    """Whether the optimizer step ran a fused kernel (Adam(fused=True), ...): then its cost is
    a fixed part plus one per parameter tensor (Profile.fused_optimizer_*) plus the kernel's
    memory and arithmetic, not a cost per operator."""
    return any(Pass(r.pass_) is Pass.OPTIMIZER and "._fused_" in r.op for r in records)


def module_calls(forward: list[OpRecord]) -> list[str]:
    """Modules called in a forward, as far as the records show: every module that ran an
    operator, its ancestors, and the model itself (modules with no operator, e.g. Dropout
    in eval or Flatten, are not seen)."""
    seen: dict[str, None] = {"": None}
    for r in forward:
        if r.module and r.module not in seen:
            parts = r.module.split(".")
            for i in range(1, len(parts) + 1):
                seen.setdefault(".".join(parts[:i]), None)
    return list(seen)


def whole_run(step: Prediction, steps: int) -> RunPrediction:
    """A run of `steps` identical steps: t = D / V (D samples at V samples/s) and
    E = sum_i E_i x C_i with one kind of step; communication stays apart from compute."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    samples = steps * step.batch_size
    if step.time_s > 0:
        time_s = training_time_s(samples, step.samples_per_s)
    else:
        time_s = 0.0
    compute = weighted_energy([step.compute_energy_j], [steps])
    transfer = weighted_energy([step.transfer_energy_j], [steps])
    energy = total_energy(compute, transfer)
    scale_t = time_s / step.time_s if step.time_s > 0 else 0.0
    scale_e = energy / step.energy_j if step.energy_j > 0 else 0.0
    return RunPrediction(
        steps=steps,
        samples=samples,
        time_s=time_s,
        time_low_s=step.time_low_s * scale_t,
        time_high_s=step.time_high_s * scale_t,
        energy_j=energy,
        energy_low_j=step.energy_low_j * scale_e,
        energy_high_j=step.energy_high_j * scale_e,
        provenance=step.provenance,
    )


def provenance_label(profile: Profile) -> str:
    if profile.default:
        return "estimated (default coefficients, rough)"
    return f"estimated (calibrated {profile.date})"


# -- one record ----------------------------------------------------------------------------
def _record_cost(
    record: OpRecord,
    prof: Profile,
    notes: list[str],
    seen: set[str],
    training: bool = False,
    serial_busy: float = 0.0,
    kernel_only: bool = False,
    cold: bool = False,
) -> tuple[float, float]:
    """(time, energy) of one record; `serial_busy`: CPUs busy at least (spinning workers);
    `kernel_only`: without the per-call overhead (costed elsewhere); `cold`: the step's
    parameters exceed the last-level cache (cold_parameters)."""
    t, busy = _record_time(record, prof, notes, seen, training, kernel_only, cold)
    if prof.energy_basis == BASIS_ACTIVE_POWER:
        busy = min(max(busy, serial_busy, 0.0), max(prof.fingerprint.usable_cpus, 1.0))
        return t, prof.energy.active_power(busy) * t
    bytes_moved = record.bytes_read + record.bytes_written
    op_class, dtype = OpClass(record.op_class), co.canonical_dtype(record.dtype)
    em = prof.energy
    dynamic = (
        em.coefficient(em.pj_per_flop, op_class.value, dtype) * record.flops
        + em.coefficient(em.pj_per_byte, op_class.value, dtype) * bytes_moved
    ) * PJ
    return t, dynamic + em.static_w * t


def _record_time(
    record: OpRecord,
    prof: Profile,
    notes: list[str],
    seen: set[str],
    training: bool,
    kernel_only: bool = False,
    cold: bool = False,
) -> tuple[float, float]:
    """(time, CPUs busy) of one record."""
    bytes_moved = record.bytes_read + record.bytes_written
    op_class = OpClass(record.op_class)
    dtype = co.canonical_dtype(record.dtype)
    pass_ = Pass(record.pass_)
    # the forward of a training step runs some kernels in their training variant (batch norm's
    # statistics): their roofline for that pass where calibrated, else the forward one
    model_pass = TRAIN_FORWARD if training and pass_ is Pass.FORWARD else pass_.value
    if record.flops == 0 and bytes_moved == 0:  # a view, a detach: dispatch cost only
        t = prof.view_overhead_s
        model = None
    else:
        model = _time_model(prof, op_class, dtype, model_pass, op_base_name(record.op), notes, seen, record.variant)
        overhead = model.overhead_s
        if pass_ is Pass.OPTIMIZER and prof.optimizer_record_s > 0:
            # inside optimizer.step() each operator costs the Python around it, measured
            overhead = prof.optimizer_record_s
        if pass_ is not Pass.BACKWARD and not record.python_call:
            # issued from C++ inside another call: no Python share (backward rooflines are
            # measured on operators the autograd engine issues: nothing to take off)
            overhead = max(overhead - prof.python_call_s, 0.0)
        if kernel_only:
            overhead = 0.0
        if overhead != model.overhead_s:
            model = dataclasses.replace(model, overhead_s=overhead)
        t = model.time_s(record.flops, bytes_moved)
    if model is None:
        return t, 1.0
    busy = model.cpu_s(record.flops, bytes_moved) / t if t > 0 else 0.0
    return beyond_cache_s(record, prof, model.overhead_s, t, cold), busy


def beyond_cache_s(record: OpRecord, prof: Profile, overhead_s: float, roofline_s: float, cold: bool = False) -> float:
    """The time of a record whose memory lies beyond the caches (memory.py): when its bytes
    exceed the last-level cache, or the step's parameters do (`cold`, see cold_parameters), at
    least the fixed cost plus its bytes (an expanded tensor's storage once: OpRecord.repeated_bytes)
    at the bandwidth of a stream through memory (a matmul's:
    a linear layer's weight streamed at batch 4, where calibrated); plus the fresh memory its new
    outputs of 32 MiB or more map (OpRecord.mapped_bytes). A profile made before these were
    measured adds nothing."""
    t = roofline_s
    bytes_moved = record.bytes_read + record.bytes_written - record.repeated_bytes  # memory, not work
    if prof.llc_bytes > 0 and (cold or bytes_moved > prof.llc_bytes):
        bandwidth = prof.dram_bandwidth_bps
        if OpClass(record.op_class) is OpClass.MATMUL and prof.matmul_dram_bandwidth_bps > 0:
            bandwidth = prof.matmul_dram_bandwidth_bps
        if bandwidth > 0:
            t = max(t, overhead_s + bytes_moved / bandwidth)
    return t + record.mapped_bytes * prof.mapped_s_per_byte


def cold_parameters(counts: OpCounts, prof: Profile) -> bool:
    """Whether the step's parameters, with their gradients in a training step and an optimizer's
    state (taken as two tensors per parameter, Adam's moments), exceed the last-level cache: then
    each weight has been evicted by the others since its last use, and every operation streams
    its data from memory (a profile without the cache's size: False)."""
    if prof.llc_bytes <= 0:
        return False
    passes = {Pass(r.pass_) for r in counts.records}
    copies = 1 + (Pass.BACKWARD in passes) + 2 * (Pass.OPTIMIZER in passes)
    return counts.parameter_bytes * copies > prof.llc_bytes


PARALLEL_BUSY = 1.5  # a kernel keeping more CPUs than this busy runs on several threads


def serial_busy_floor(records: tuple[OpRecord, ...], prof: Profile, training: bool) -> float:
    """CPUs busy at least during serial work (dispatch, optimizer, small operators): once a
    step has a parallel kernel, torch's OpenMP workers spin-wait between parallel regions
    (Profile.serial_busy_cpus, measured by eager.serial_busy_cpus), which utilization-based
    energy counts; 0 (no floor) otherwise or on the coefficients basis."""
    if prof.energy_basis != BASIS_ACTIVE_POWER or prof.serial_busy_cpus <= 1.0:
        return 0.0
    for r in records:
        if _record_time(r, prof, [], set(), training)[1] > PARALLEL_BUSY:
            return prof.serial_busy_cpus
    return 0.0


def _overhead_power_w(prof: Profile, serial_busy: float = 0.0) -> float:
    """Power while Python dispatches (one CPU busy, or the spinning workers' floor)."""
    if prof.energy_basis == BASIS_ACTIVE_POWER:
        return prof.energy.active_power(max(1.0, serial_busy))
    return prof.energy.static_w


# operators timed under another name: the training variant of a forward-only kernel
OP_ALIASES = {
    "_embedding_bag": "_embedding_bag_forward_only",
    # the other fused optimizers: Adam's roofline (one pass over a few tensors each)
    "_fused_adamw": "_fused_adam",
    "_fused_sgd": "_fused_adam",
    "_fused_adagrad": "_fused_adam",
}


def op_base_name(op: str) -> str:
    """ "aten.tanh_.default" -> "tanh": the key of operators with a roofline of their own."""
    parts = op.split(".")
    name = parts[1] if len(parts) >= 2 and parts[0] in ("aten", "quantized") else parts[0]
    if name.endswith("_") and not name.endswith("__"):  # in place: add_ -> add
        name = name[:-1]
    return OP_ALIASES.get(name, name)


def _time_model(
    prof: Profile,
    op_class: OpClass,
    dtype: str,
    pass_: str,
    op: str,
    notes: list[str],
    seen: set[str],
    variant: str = "",
) -> TimeModel:
    model = prof.time_model(op_class, dtype, pass_, op, variant)
    if model is not None:
        return model
    key = f"{op_class.value}/{dtype}"
    fallback = prof.time_model(op_class, "float32", pass_, op, variant)
    if fallback is not None:
        if key not in seen and dtype in co.DTYPES + ("float64",):  # integer bookkeeping: silent
            seen.add(key)
            why = prof.missing.get(key, "not calibrated")
            notes.append(f"{key}: no time model ({why}); used {op_class.value}/float32")
        return fallback
    d = co.default_time(op_class, dtype, prof.fingerprint.usable_cpus)
    if key not in seen:
        seen.add(key)
        why = prof.missing.get(key, "not calibrated")
        notes.append(f"{key}: no time model ({why}); used default coefficients (rough)")
    return TimeModel(
        d.overhead_s, d.rate_flops, d.bandwidth_bps, busy_cpus=max(prof.fingerprint.usable_cpus, 1.0), note="default"
    )


def _bands(prof: Profile) -> tuple[float, float, float, float]:
    """(time low, time high, energy low, energy high) as fractions of the point estimate
    (low = 0.375: 37.5 % below it)."""
    if prof.default:
        low, high = 1 - 1 / DEFAULT_FACTOR, DEFAULT_FACTOR - 1
        return low, high, low, high
    time_factor = max(MODEL_FACTOR, 1 + 2 * _finite(prof.fit_mape_time))
    energy_factor = max(MODEL_FACTOR, 1 + 2 * (_finite(prof.fit_mape_time) + _finite(prof.fit_mape_energy)))
    meter = prof.energy.meter_rel_uncertainty
    return (1 - 1 / time_factor, time_factor - 1, min(1 - 1 / energy_factor + meter, 0.99), energy_factor - 1 + meter)


def _finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else 0.0
