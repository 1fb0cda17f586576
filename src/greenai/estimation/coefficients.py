"""Default coefficients for E = sum_i E_i * C_i and for the time of an operation: ROUGH.

These are what `predict` uses on a machine that was never calibrated (`greenai calibrate`).
They are order-of-magnitude figures, not measurements of this machine: process node, memory
hierarchy (how much traffic hits caches instead of DRAM), vectorisation and utilization make
real figures differ from them by multiples. Predictions made with them carry a factor-3
band (see predict.py) and say "default coefficients, rough".

Energy per operation (Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, figures for a 45 nm process at 0.9 V):

    32-bit float add 0.9 pJ, multiply 3.7 pJ      -> 2.3 pJ per FLOP (a multiply-add = 2 FLOPs)
    16-bit float add 0.4 pJ, multiply 1.1 pJ      -> 0.75 pJ per FLOP
     8-bit int   add 0.03 pJ, multiply 0.2 pJ     -> 0.115 pJ per op
    64-bit DRAM access 1.3-2.6 nJ                 -> 160-325 pJ per byte (midpoint 244)
    64-bit read of an 8 KB SRAM cache 10 pJ       -> 1.25 pJ per byte

bfloat16 is not in the paper; its multiplier is smaller than fp16's (8-bit mantissa) so the
fp16 figure is an upper-side guess. The arithmetic is a small part of what a general-purpose
core spends per operation (instruction fetch, decode, register files, caches and clocks
dominate: the paper's point), which is why the busy-processor power below carries most of the
energy on a CPU.

Busy-processor ("static" in E = sum e_c C_c + P_static t) power: Cloud Carbon Footprint's
SPECpower-derived average of 3.5 W per vCPU at full load (0.74 W idle), the same figures
greenai's estimated CPU meter uses (docs/measurement.md); torch keeps all its threads busy, so
a step is charged `usable CPUs x 3.5 W`.

Communication: 5 nJ per byte for network traffic, the figure of greenai's io meter
(docs/measurement.md), itself an order-of-magnitude figure.

Time defaults describe one generic x86-64 core with AVX2 (about 2.5 GHz: 32 fp32 FLOP per
cycle peak with two FMA units; eager PyTorch reaches a fraction of it) and are multiplied by
the number of usable CPUs: per-call overhead ~8 us (eager dispatch from Python; a few us more
per nn.Module call and per autograd node recorded), DRAM
streaming ~8 GB/s per core. bfloat16 on CPUs without native support (no AVX512_BF16/AMX) is
emulated and slow: its defaults are a quarter of fp32's.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenai.estimation.ops import OpClass

ROUGH = True  # every figure below is a default to be replaced by a calibration

HOROWITZ_2014 = 'M. Horowitz, "Computing\'s energy problem (and what we can do about it)", ISSCC 2014, 45 nm figures'
CCF_VCPU = (
    "Cloud Carbon Footprint methodology, SPECpower-derived average watts per vCPU "
    "(https://www.cloudcarbonfootprint.org/docs/methodology)"
)

# -- energy -------------------------------------------------------------------------------
FP32_ADD_PJ, FP32_MUL_PJ = 0.9, 3.7
FP16_ADD_PJ, FP16_MUL_PJ = 0.4, 1.1
INT8_ADD_PJ, INT8_MUL_PJ = 0.03, 0.2
DRAM_64BIT_ACCESS_PJ = (1300.0, 2600.0)
SRAM_8KB_64BIT_ACCESS_PJ = 10.0

PJ_PER_FLOP: dict[str, float] = {
    "float32": (FP32_ADD_PJ + FP32_MUL_PJ) / 2,  # 2.3: one add and one multiply per 2 FLOPs
    "float16": (FP16_ADD_PJ + FP16_MUL_PJ) / 2,  # 0.75
    "bfloat16": (FP16_ADD_PJ + FP16_MUL_PJ) / 2,  # assumption: as fp16 (not in the paper)
    "int8": (INT8_ADD_PJ + INT8_MUL_PJ) / 2,  # 0.115
}
DRAM_PJ_PER_BYTE = sum(DRAM_64BIT_ACCESS_PJ) / 2 / 8  # 243.75
SRAM_PJ_PER_BYTE = SRAM_8KB_64BIT_ACCESS_PJ / 8  # 1.25
LINK_PJ_PER_BYTE = 5000.0  # network, 5 nJ/B (greenai io meter); order of magnitude
BUSY_W_PER_CPU = 3.5  # CCF average maximum per vCPU
IDLE_W_PER_CPU = 0.74  # CCF average minimum per vCPU

# -- time (per usable CPU) --------------------------------------------------------------------
OVERHEAD_S = 8e-6  # per op call, eager dispatch from Python
VIEW_OVERHEAD_S = 2e-6  # a call that moves no data (view, transpose, detach)
MODULE_CALL_S = 3e-6  # nn.Module.__call__ around the kernels
GRAD_RECORD_S = 3e-6  # recording one autograd node in a training forward
BACKWARD_CALL_S = 20e-6  # starting the autograd engine once per backward()
# optimizer.step() with cold caches, as it runs after the backward (eager.optimizer_costs):
# fixed cost (Python) and per operator, Python between them included; a fused optimizer step
# (one kernel): fixed + per parameter tensor. Cold calibrations on a 2-vCPU Xeon VM (torch
# 2.13) gave 480-650 us + 6-7 us per operator, fused 390-530 us + 6-12 us per tensor; rounded
# down (rough, like every default)
OPTIMIZER_STEP_S = 400e-6
OPTIMIZER_RECORD_S = 6e-6
FUSED_OPTIMIZER_STEP_S = 400e-6
FUSED_OPTIMIZER_PARAM_S = 8e-6
PYTHON_CALL_S = 1e-6  # Python's share of an operator call (not paid by operators issued from C++)
DRAM_BYTES_PER_S_PER_CPU = 8e9
LINK_BYTES_PER_S = 1.25e9  # 10 Gbit/s Ethernet

# achieved FLOP/s per usable CPU, fp32; None: the class is bound by memory traffic only
_FP32_FLOPS_PER_CPU: dict[OpClass, float | None] = {
    OpClass.MATMUL: 40e9,
    OpClass.CONV: 20e9,
    OpClass.DEPTHWISE_CONV: 2e9,
    OpClass.RECURRENT: 10e9,
    OpClass.ELEMENTWISE: None,
    OpClass.NORMALIZATION: None,
    OpClass.SOFTMAX: None,
    OpClass.REDUCTION: None,
    OpClass.EMBEDDING: None,
    OpClass.DATA_MOVEMENT: None,
    OpClass.COMMUNICATION: None,
}
# achieved bandwidth as a fraction of DRAM streaming, per class (gathers and strided copies
# use a fraction of it; elementwise ops stream)
_BANDWIDTH_SHARE: dict[OpClass, float] = {
    OpClass.MATMUL: 1.0,
    OpClass.CONV: 1.0,
    OpClass.DEPTHWISE_CONV: 0.5,
    OpClass.RECURRENT: 1.0,
    OpClass.ELEMENTWISE: 1.0,
    OpClass.NORMALIZATION: 0.5,
    OpClass.SOFTMAX: 0.5,
    OpClass.REDUCTION: 1.0,
    OpClass.EMBEDDING: 0.5,
    OpClass.DATA_MOVEMENT: 0.5,
    OpClass.COMMUNICATION: 1.0,
}
# compute-rate multiplier of a dtype relative to fp32 on a generic AVX2 CPU
_DTYPE_SPEED: dict[str, float] = {"float32": 1.0, "float16": 0.25, "bfloat16": 0.25, "int8": 2.0}

DTYPES = ("float32", "bfloat16", "float16", "int8")


@dataclass(frozen=True, slots=True)
class DefaultTime:
    overhead_s: float
    rate_flops: float | None  # FLOP/s, None: not compute-bound
    bandwidth_bps: float  # bytes/s


def canonical_dtype(dtype: str) -> str:
    """Map the dtype strings of op counting ("qint8", "torch.float32", "half") to the table's."""
    name = dtype.removeprefix("torch.").lower()
    aliases = {
        "float": "float32",
        "half": "float16",
        "qint8": "int8",
        "quint8": "int8",
        "bf16": "bfloat16",
        "fp32": "float32",
        "fp16": "float16",
        "double": "float64",
    }
    return aliases.get(name, name)


def default_time(op_class: OpClass, dtype: str, cpus: float) -> DefaultTime:
    """Default roofline of one class and dtype on `cpus` usable CPUs (rough)."""
    cpus = max(cpus, 1.0)
    dtype = canonical_dtype(dtype)
    if op_class is OpClass.COMMUNICATION:
        return DefaultTime(OVERHEAD_S * 4, None, LINK_BYTES_PER_S)
    per_cpu = _FP32_FLOPS_PER_CPU[op_class]
    speed = _DTYPE_SPEED.get(dtype, 0.5)  # float64 and unknown types: half of fp32
    rate = None if per_cpu is None else per_cpu * speed * cpus
    bandwidth = DRAM_BYTES_PER_S_PER_CPU * _BANDWIDTH_SHARE[op_class] * cpus
    return DefaultTime(OVERHEAD_S, rate, bandwidth)


def default_pj_per_flop(dtype: str) -> float:
    return PJ_PER_FLOP.get(canonical_dtype(dtype), PJ_PER_FLOP["float32"])


def default_pj_per_byte(op_class: OpClass) -> float:
    """Traffic counted by op counting is charged at DRAM cost (an upper side: part hits caches);
    collectives at the network figure."""
    return LINK_PJ_PER_BYTE if op_class is OpClass.COMMUNICATION else DRAM_PJ_PER_BYTE


def default_static_w(cpus: float) -> float:
    return BUSY_W_PER_CPU * max(cpus, 1.0)
