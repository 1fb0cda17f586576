"""A calibration profile: this machine's time and energy per operation class, fitted by
`calibrate()` on micro-benchmarks, stored as JSON, and refused when it comes from another
machine (other CPU model, CPU count or torch version).

Stored at `$GREENAI_CALIBRATION_DIR/<fingerprint>.json`, else
`$XDG_DATA_HOME/greenai/calibration/`, else `~/.local/share/greenai/calibration/`.

Energy basis:
- "coefficients" (energy fitted on `measured` or `integrated` meters, e.g. RAPL):
  E = sum_c pJ/FLOP_c x FLOPs_c + pJ/B_c x bytes_c + P_static x t.
- "active_power" (energy from `estimated` or `simulated` meters, i.e. from greenai's own
  utilization-linear power model): E = P_active x t with P_active = base + per_cpu x u, u the
  CPUs an operation keeps busy (fitted per class from CPU time). Such a profile predicts what
  greenai's estimated meter will report; it cannot be better than that model.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from greenai.errors import ProfileError, ProfileWarning
from greenai.estimation import coefficients as co
from greenai.estimation.ops import OpClass
from greenai.inputs import MIB, read_user_file

SCHEMA = 1
BASIS_COEFFICIENTS = "coefficients"
BASIS_ACTIVE_POWER = "active_power"


@dataclass(frozen=True)
class Fingerprint:
    """What makes a calibration valid on a machine. The first four fields identify it (a
    change makes the profile stale); the others are recorded and warned about."""

    cpu_model: str
    logical_cpus: int
    usable_cpus: float  # affinity mask and cgroup CPU quota
    torch_version: str
    torch_threads: int
    greenai_version: str
    meter_provenance: str  # provenance of the energy the profile was fitted on

    def identity(self) -> tuple[str, int, float, str]:
        return (self.cpu_model, self.logical_cpus, float(self.usable_cpus), self.torch_version)

    def key(self) -> str:
        """Stable file name stem: a hash of the identifying fields."""
        text = json.dumps(list(self.identity()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return (
            f"'{self.cpu_model}', {self.logical_cpus} logical CPUs ({self.usable_cpus:g} usable), "
            f"torch {self.torch_version}"
        )

    def differences(self, other: Fingerprint) -> tuple[list[str], list[str]]:
        """(identifying differences, minor differences) between self and other."""
        names = ("cpu_model", "logical_cpus", "usable_cpus", "torch_version")
        strict = [
            f"{n}: {getattr(self, n)!r} vs {getattr(other, n)!r}"
            for n in names
            if getattr(self, n) != getattr(other, n)
        ]
        minor = [
            f"{n}: {getattr(self, n)!r} vs {getattr(other, n)!r}"
            for n in ("torch_threads", "greenai_version")
            if getattr(self, n) != getattr(other, n)
        ]
        return strict, minor


@dataclass(frozen=True)
class TimeModel:
    """Roofline of one (class, dtype): t = overhead + max(flops / rate, bytes / bandwidth)
    (or, with overlap False, their sum: calibration keeps the form that fits the class's
    micro-benchmarks better) + dram_s_per_byte per byte beyond the last-level cache; a rate
    or bandwidth of None drops its term; all times a size correction (`factor`: the roofline's
    residual on the class's micro-benchmarks as a function of the work of a call, e.g. small
    convolutions run far below the rate large ones reach). `busy_cpus`: CPUs kept busy during
    the work part, `overhead_busy_cpus` during the fixed part (for the active-power basis)."""

    overhead_s: float
    rate_flops: float | None
    bandwidth_bps: float | None
    busy_cpus: float = 1.0
    overhead_busy_cpus: float = 1.0
    mape: float = 0.0  # relative error of this fit on its own micro-benchmarks
    points: int = 0
    note: str = ""
    dram_s_per_byte: float = 0.0  # extra time per byte beyond cache_bytes (DRAM, not cache)
    cache_bytes: float | None = None  # last-level cache; None: unknown (no extra term)
    overlap: bool = True  # compute and memory overlap: max(...); False: their sum
    # the roofline's residual on its micro-benchmarks by size: (log10 of the work of one call,
    # measured / roofline) knots, work in FLOPs or bytes (`correction_by`); () for none
    size_correction: tuple[tuple[float, float], ...] = ()
    correction_by: str = "flops"

    def factor(self, flops: float, bytes_moved: float) -> float:
        """The size correction at this call's work: linear in log10(work) between knots,
        flat beyond the first and last (1.0 without knots)."""
        knots = self.size_correction
        if not knots:
            return 1.0
        work = flops if self.correction_by == "flops" else bytes_moved
        x = math.log10(max(work, 1.0))
        if x <= knots[0][0]:
            return knots[0][1]
        for (x0, f0), (x1, f1) in itertools.pairwise(knots):
            if x <= x1:
                return f0 + (f1 - f0) * (x - x0) / (x1 - x0) if x1 > x0 else f1
        return knots[-1][1]

    def work_s(self, flops: float, bytes_moved: float) -> float:
        compute = flops / self.rate_flops if self.rate_flops else 0.0
        memory = bytes_moved / self.bandwidth_bps if self.bandwidth_bps else 0.0
        beyond = 0.0
        if self.dram_s_per_byte and self.cache_bytes is not None and bytes_moved > self.cache_bytes:
            beyond = (bytes_moved - self.cache_bytes) * self.dram_s_per_byte
        return (max(compute, memory) if self.overlap else compute + memory) + beyond

    def time_s(self, flops: float, bytes_moved: float) -> float:
        return (self.overhead_s + self.work_s(flops, bytes_moved)) * self.factor(flops, bytes_moved)

    def cpu_s(self, flops: float, bytes_moved: float) -> float:
        busy = self.overhead_s * self.overhead_busy_cpus + self.work_s(flops, bytes_moved) * self.busy_cpus
        return busy * self.factor(flops, bytes_moved)


@dataclass(frozen=True)
class EnergyModel:
    """Energy coefficients; which fields are used depends on the profile's energy_basis.
    Coefficient keys are "class/dtype" with "*" wildcards ("*/float32", "matmul/*", "*/*")."""

    static_w: float = 0.0
    pj_per_flop: dict[str, float] = field(default_factory=dict)
    pj_per_byte: dict[str, float] = field(default_factory=dict)
    active_power_w: float = 0.0  # mean P_active over the calibration suite (for reports)
    base_power_w: float = 0.0  # P_active(u) = base_power_w + power_per_busy_cpu_w x u
    power_per_busy_cpu_w: float = 0.0
    meter_rel_uncertainty: float = 0.0  # band of the meters the energy was fitted on

    def coefficient(self, table: dict[str, float], op_class: str, dtype: str) -> float:
        for key in (f"{op_class}/{dtype}", f"{op_class}/*", f"*/{dtype}", "*/*"):
            if key in table:
                return table[key]
        return 0.0

    def active_power(self, busy_cpus: float) -> float:
        return self.base_power_w + self.power_per_busy_cpu_w * busy_cpus


@dataclass(frozen=True)
class BenchPoint:
    """One micro-benchmark as measured during calibration (kept for reports and debugging)."""

    name: str
    op_class: str
    dtype: str
    flops: float
    bytes_moved: float
    time_s: float  # median time per call
    cpu_s: float  # CPU seconds per call (all threads)
    fitted_s: float  # what the profile's time model says


@dataclass(frozen=True)
class Profile:
    fingerprint: Fingerprint
    created_at: str  # ISO 8601, UTC
    time_models: dict[str, TimeModel]  # "matmul/float32" -> roofline
    missing: dict[str, str]  # "recurrent/int8" -> why it has no time model
    energy_basis: str  # BASIS_COEFFICIENTS or BASIS_ACTIVE_POWER
    energy: EnergyModel
    energy_provenance: str  # Provenance value of the energy fitted on, or "default"
    fit_mape_time: float | None  # relative error of the time models on the micro-benchmarks
    fit_mape_energy: float | None  # relative error of the energy model on the benchmark segments
    view_overhead_s: float  # a call that moves no data (view, transpose, detach)
    module_call_s: float = 0.0  # calling an nn.Module, beyond its kernels
    grad_record_s: float = 0.0  # per forward kernel of a training step (autograd graph)
    backward_call_s: float = 0.0  # starting the autograd engine, once per backward()
    optimizer_step_s: float = 0.0  # fixed cost of one optimizer.step()
    optimizer_record_s: float = 0.0  # per operator of an optimizer step (replaces the class overhead)
    python_call_s: float = 0.0  # Python's share of an operator call; not paid from C++ (calls.py)
    # CPUs busy during serial work after parallel kernels (spinning OpenMP workers, eager.py);
    # 1.0 in profiles made before it was measured
    serial_busy_cpus: float = 1.0
    # a fused optimizer step (Adam(fused=True)): fixed + per parameter tensor; 0 in profiles made
    # before they were measured (predict then uses the default coefficients, noted)
    fused_optimizer_step_s: float = 0.0
    fused_optimizer_param_s: float = 0.0
    # how the optimizer's costs were timed: "cold" (after a pass over other memory, as it runs
    # after the backward; eager.optimizer_costs) or "warm" (back to back: profiles made before)
    optimizer_timing: str = "warm"
    # memory beyond the caches (memory.beyond_cache_costs; 0 in profiles made before): the
    # last-level cache, the bandwidth of a stream through buffers larger than it, and the cost
    # per byte of memory freshly mapped by the allocator (page faults on first touch, munmap)
    llc_bytes: float = 0.0
    dram_bandwidth_bps: float = 0.0
    mapped_s_per_byte: float = 0.0
    matmul_dram_bandwidth_bps: float = 0.0  # a linear layer's weight streamed from memory (batch 4)
    calibration_s: float = 0.0  # wall time calibration took
    budget_s: float = 0.0
    notes: tuple[str, ...] = ()
    points: tuple[BenchPoint, ...] = ()
    default: bool = False  # built from coefficients.py, never calibrated
    schema: int = SCHEMA

    def time_model(
        self, op_class: OpClass | str, dtype: str, pass_: str = "forward", op: str = "", variant: str = ""
    ) -> TimeModel | None:
        """The model of (class, dtype): the operator's own if calibrated ("...@op"), else the
        class's; for pass "backward" (or "forward_train", the forward of a training step) the
        model of that pass if calibrated, else the forward one. A variant (OpRecord.variant,
        "...@variant") is preferred within its pass only: a one-image convolution's backward
        takes the backward roofline before the one-image forward one."""
        key = f"{OpClass(op_class).value}/{co.canonical_dtype(dtype)}"
        keys = [f"{key}/{pass_}", key] if pass_ not in ("", "forward") else [key]
        tried = [f"{keys[0]}@{variant}"] if variant else []
        tried += ([f"{k}@{op}" for k in keys] if op else []) + keys[:1]
        tried += ([f"{k}@{variant}" for k in keys[1:]] if variant else []) + keys[1:]
        for k in tried:
            if k in self.time_models:
                return self.time_models[k]
        return None

    @property
    def date(self) -> str:
        return self.created_at[:10]

    # -- JSON --------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Profile:
        try:
            data = json.loads(text)
        except RecursionError:  # absurdly deep nesting: corrupt, like any other bad JSON
            raise ValueError("JSON nested too deeply") from None
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, this greenai reads schema {SCHEMA}")
        data["fingerprint"] = Fingerprint(**data["fingerprint"])
        data["time_models"] = {
            k: TimeModel(**{**v, "size_correction": tuple(tuple(knot) for knot in v.get("size_correction", ()))})
            for k, v in data["time_models"].items()
        }
        data["energy"] = EnergyModel(**data["energy"])
        data["points"] = tuple(BenchPoint(**p) for p in data.get("points", ()))
        data["notes"] = tuple(data.get("notes", ()))
        return cls(**data)


# -- this machine ------------------------------------------------------------------------
def current_fingerprint(meter_provenance: str = "") -> Fingerprint:
    from greenai._version import __version__
    from greenai.hardware.cpu import read_cpu_info, usable_cpus

    try:
        cpu_model = read_cpu_info().model_name
    except OSError:
        import platform

        cpu_model = platform.processor() or platform.machine() or "unknown"
    try:
        import torch

        torch_version, threads = str(torch.__version__), int(torch.get_num_threads())
    except ImportError:
        torch_version, threads = "none", 0
    return Fingerprint(
        cpu_model, os.cpu_count() or 1, usable_cpus(), torch_version, threads, __version__, meter_provenance
    )


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# -- storage -----------------------------------------------------------------------------
def calibration_dir() -> Path:
    override = os.environ.get("GREENAI_CALIBRATION_DIR")
    if override:
        return Path(os.path.expanduser(override))
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "greenai" / "calibration"


def profile_path(fingerprint: Fingerprint | None = None) -> Path:
    fp = fingerprint if fingerprint is not None else current_fingerprint()
    return calibration_dir() / f"{fp.key()}.json"


def save_profile(profile: Profile, path: str | os.PathLike[str] | None = None) -> Path:
    """Write atomically (temp file + rename) to `path` or this machine's default location."""
    target = Path(path) if path is not None else profile_path(profile.fingerprint)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(profile.to_json())
    os.replace(tmp, target)
    return target


MAX_PROFILE_BYTES = 16 * MIB  # a profile is some kilobytes; a larger file is not one


def load_profile(path: str | Path | None = None, *, strict: bool = True, missing_ok: bool = False) -> Profile | None:
    """Read a profile (default: this machine's) and check it was made here.

    Raises ProfileError if the file is missing (unless missing_ok: then None), not a regular
    file of at most MAX_PROFILE_BYTES, corrupt, or made on another machine (with
    strict=False: a ProfileWarning instead)."""
    here = current_fingerprint()
    target = Path(path) if path is not None else profile_path(here)
    if not os.path.lexists(target):
        if missing_ok:
            return None
        raise ProfileError(f"no calibration profile at {target}; run `greenai calibrate`")
    text = read_user_file(target, "calibration profile", MAX_PROFILE_BYTES, ProfileError)
    try:
        profile = Profile.from_json(text)
    except (ValueError, TypeError, KeyError) as e:
        raise ProfileError(
            f"calibration profile {target} is corrupt ({type(e).__name__}: {e}); delete it and run `greenai calibrate`"
        ) from e
    check_profile(profile, here, target, strict=strict)
    return profile


def check_profile(profile: Profile, here: Fingerprint, where: str | Path = "", *, strict: bool = True) -> None:
    """Refuse (or, with strict=False, warn about) a profile made on another machine."""
    strict_diff, minor = profile.fingerprint.differences(here)
    name = str(where) or profile.fingerprint.key()
    if strict_diff:
        message = (
            f"calibration profile {name} was made on {profile.fingerprint.describe()}; "
            f"this machine is {here.describe()} ({'; '.join(strict_diff)}); "
            "run `greenai calibrate` here"
        )
        if strict:
            raise ProfileError(message)
        warnings.warn(message, ProfileWarning, stacklevel=3)
    elif minor:
        warnings.warn(
            f"calibration profile {name} differs in {'; '.join(minor)}; predictions may be off",
            ProfileWarning,
            stacklevel=3,
        )


def default_profile(fingerprint: Fingerprint | None = None) -> Profile:
    """A profile built from the rough default coefficients (coefficients.py), for machines
    never calibrated."""
    fp = fingerprint if fingerprint is not None else current_fingerprint("default")
    cpus = max(fp.usable_cpus, 1.0)
    models: dict[str, TimeModel] = {}
    for op_class in OpClass:
        for dtype in co.DTYPES:
            d = co.default_time(op_class, dtype, cpus)
            models[f"{op_class.value}/{dtype}"] = TimeModel(
                d.overhead_s, d.rate_flops, d.bandwidth_bps, busy_cpus=cpus, note="default coefficients (rough)"
            )
    energy = EnergyModel(
        static_w=co.default_static_w(cpus),
        pj_per_flop={f"*/{d}": co.default_pj_per_flop(d) for d in co.DTYPES},
        pj_per_byte={
            "*/*": co.default_pj_per_byte(OpClass.MATMUL),
            f"{OpClass.COMMUNICATION.value}/*": co.default_pj_per_byte(OpClass.COMMUNICATION),
        },
    )
    return Profile(
        fingerprint=fp,
        created_at=now_iso(),
        time_models=models,
        missing={},
        energy_basis=BASIS_COEFFICIENTS,
        energy=energy,
        energy_provenance="default",
        fit_mape_time=None,
        fit_mape_energy=None,
        view_overhead_s=co.VIEW_OVERHEAD_S,
        module_call_s=co.MODULE_CALL_S,
        grad_record_s=co.GRAD_RECORD_S,
        backward_call_s=co.BACKWARD_CALL_S,
        optimizer_step_s=co.OPTIMIZER_STEP_S,
        optimizer_record_s=co.OPTIMIZER_RECORD_S,
        fused_optimizer_step_s=co.FUSED_OPTIMIZER_STEP_S,
        fused_optimizer_param_s=co.FUSED_OPTIMIZER_PARAM_S,
        optimizer_timing="cold",
        python_call_s=co.PYTHON_CALL_S,
        notes=(f"default coefficients (rough): {co.HOROWITZ_2014}; {co.CCF_VCPU}",),
        default=True,
    )
