"""What this CPU is and can do, read once: the one module that reads `/proc/cpuinfo`.

- `read_cpu_info`: model name, hypervisor flag, logical CPUs per package, and the model's TDP.
- `CpuFeatures` (`this_cpu`, `detect_cpu_features`): instruction-set facts for lower
  precision: native bf16, oneDNN's bf16, int8 dot products, AMX, the quantized engine.
- `cpu_allowance`, `usable_cpus`, `usable_threads`: the CPUs a process may use, min(affinity
  mask, cgroup CPU quota) (`hardware.cgroup` reads the quota): the exact figure, and a whole
  count for threads and parallel jobs.

TDPs come from `greenai/data/cpu_tdp.csv` (Intel ARK and AMD product pages as compiled in
CodeCarbon's CPU table). Names are normalized on both sides; a model matches the table entry
equal to it, else the longest entry whose words appear consecutively in it. An entry used
that way must carry a model number (a digit), and its vendor must agree with the model's: so
"AMD EPYC" matches nothing, and "6140" (an AMD Opteron listed without the vendor) never
matches an Intel Xeon Gold 6140.

Flags come from the first processor entry of `/proc/cpuinfo` (x86 `flags`, ARM `Features`),
merged with `torch.cpu.get_capabilities()` (PyTorch's cpuinfo probe) where torch provides it.
Names are normalized without underscores, so `avx512_bf16`, `avx512bf16` and torch's
`avx512_bf16` compare equal. Tests and callers inject a `CpuFeatures` (or a fake cpuinfo
file) to simulate another CPU.

bf16 has two meanings here, kept apart on purpose:

- `CpuFeatures.bf16` (native bf16): the CPU has bf16 arithmetic instructions: x86
  `avx512_bf16` (Cooper Lake, Zen 4+), `amx_bf16` (Sapphire Rapids) or `avx_ne_convert`;
  ARM `bf16`/`svebf16` (Armv8.6-A). This is the rule every decision uses: whether to cast a
  model or autocast to bf16 (optimize.transforms.precision), and what calibration says of its
  bf16 benchmarks.
- `CpuFeatures.bf16_via_onednn`: oneDNN will run bf16 kernels
  (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`). It is also True on plain AVX-512
  (avx512bw/vl/dq) without bf16 instructions, where oneDNN *emulates* bf16 by converting to
  fp32 and back: it works, but runs slower than fp32. So it is recorded (and described) but
  never counts as native support.

Int8 dot products: x86 `avx512_vnni`/`avx_vnni` (VNNI) or AMX `amx_int8`; ARM
`asimddp`/`dot` (SDOT) and `i8mm`.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import platform
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from greenai.hardware.cgroup import cgroup_cpu_quota

CPUINFO_PATH = Path("/proc/cpuinfo")

# -- /proc/cpuinfo ---------------------------------------------------------------------------


def _first_processor(text: str) -> dict[str, str]:
    """The fields of the first processor entry (up to the first blank line), keys lower case;
    a key repeated in the entry keeps its first value."""
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _norm(flag: str) -> str:
    return flag.strip().lower().replace("_", "")


def _flags(fields: dict[str, str]) -> frozenset[str]:
    """Normalized flag names: x86 `flags`, ARM `Features`."""
    value = fields.get("flags", fields.get("features", ""))
    return frozenset(_norm(f) for f in value.split())


def read_cpuinfo_flags(path: Path | str = CPUINFO_PATH) -> frozenset[str]:
    """Normalized flag names from the first processor entry of a cpuinfo file (empty if
    the file is missing)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return _flags(_first_processor(text))


# -- model and TDP ---------------------------------------------------------------------------
_MARKS = re.compile(r"\((?:r|tm|c)\)")
_NOISE = re.compile(
    r"\([^)]*\)"  # (OEM Only), (9M Cache, up to 4.00 GHz), (v8l)
    r"|@?\s*\d+(?:\.\d+)?\s*[gm]hz"  # @ 2.30GHz
    r"|\b(?:with|w/)\s.*$"  # with Radeon Graphics
    r"|\b\S+-cores?\b"  # 64-Core, Six-Core
    r"|\b\d+(?:st|nd|rd|th) gen\b"  # 11th Gen
    r"|\b(?:cpu|apu|processor|genuine)\b"
    r"|,"
)
_VENDORS = {"intel": "intel", "amd": "amd", "apple": "apple", "armv8": "arm", "armv7": "arm"}


@dataclass(frozen=True, slots=True)
class CpuInfo:
    model_name: str
    hypervisor: bool  # the 'hypervisor' cpu flag: a guest of a VM (every cloud instance)
    logical_per_package: int  # 'siblings': logical CPUs sharing one package's TDP
    tdp_w: float | None  # None: model not in the table


def read_cpu_info(path: str | Path = CPUINFO_PATH) -> CpuInfo:
    """Parse the first processor entry of a /proc/cpuinfo file and look up its TDP (raises
    OSError if the file cannot be read)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    first = _first_processor(text)
    model = first.get("model name", "unknown")
    processors = sum(1 for line in text.splitlines() if line.startswith("processor"))
    siblings = int(first.get("siblings", 0)) or max(processors, 1)
    return CpuInfo(
        model_name=model,
        hypervisor="hypervisor" in _flags(first),
        logical_per_package=siblings,
        tdp_w=tdp_lookup(model),
    )


def normalize_cpu_name(name: str) -> str:
    """Lower case, without trademarks, clock speed, core counts and filler words."""
    text = _NOISE.sub(" ", _MARKS.sub(" ", name.lower()))
    return " ".join(text.split())


def tdp_lookup(model_name: str) -> float | None:
    """TDP in watts of a CPU model name as /proc/cpuinfo prints it, or None if unknown."""
    table = _table()
    name = normalize_cpu_name(model_name)
    if name in table:
        return table[name]
    words = name.split()
    vendor = _vendor(words)
    for size in range(len(words) - 1, 0, -1):  # longest first
        for start in range(len(words) - size + 1):
            span = words[start : start + size]
            entry = " ".join(span)
            numbered = entry in table and any(c.isdigit() for c in entry)
            if numbered and vendor in (None, _vendor(span, default="amd")):
                return table[entry]
    return None


def _vendor(words: list[str], default: str | None = None) -> str | None:
    """Vendor named in a name. Table entries without one come from CodeCarbon's AMD list
    (e.g. "6176", "FX-8350"), hence `default="amd"` for them."""
    for word in words:
        if word in _VENDORS:
            return _VENDORS[word]
        if word.startswith("cortex-"):
            return "arm"
    return default


@functools.cache
def _table() -> dict[str, float]:
    """Normalized name -> TDP. Rows that normalize alike keep the first (table order); rows
    without a positive number (a few Celerons read "27.29.5", mangled ranges) are skipped."""
    text = resources.files("greenai.data").joinpath("cpu_tdp.csv").read_text()
    table: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        try:
            tdp_w = float(row["tdp_w"])
        except ValueError:
            continue
        if tdp_w > 0:
            table.setdefault(normalize_cpu_name(row["cpu_name"]), tdp_w)
    return table


# -- instruction-set features ----------------------------------------------------------------
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_ARM = ("aarch64", "arm64", "armv8l", "armv7l")
_NATIVE_BF16 = {"x86": ("avx512_bf16", "amx_bf16", "avx_ne_convert"), "arm": ("bf16", "svebf16")}


@dataclass(frozen=True)
class CpuFeatures:
    """Instruction-set facts relevant to bf16 and int8 inference (see the module docstring
    for the two meanings of bf16)."""

    arch: str
    flags: frozenset[str]
    torch_capability: str | None = None
    # oneDNN runs bf16 kernels, natively or by emulation on AVX-512; None: not probed
    bf16_via_onednn: bool | None = None
    quantized_engines: tuple[str, ...] = ()

    @classmethod
    def from_flags(
        cls,
        flags: Iterable[str],
        arch: str = "x86_64",
        *,
        quantized_engines: Sequence[str] = ("x86", "fbgemm", "onednn", "qnnpack"),
        bf16_via_onednn: bool | None = None,
    ) -> CpuFeatures:
        """A CPU described by its flag names (as in /proc/cpuinfo); for tests and what-ifs."""
        return cls(
            arch=arch.lower(),
            flags=frozenset(_norm(f) for f in flags),
            bf16_via_onednn=bf16_via_onednn,
            quantized_engines=tuple(quantized_engines),
        )

    def has(self, flag: str) -> bool:
        return _norm(flag) in self.flags

    @property
    def is_x86(self) -> bool:
        return self.arch in _X86

    @property
    def is_arm(self) -> bool:
        return self.arch in _ARM

    @property
    def bf16_flags(self) -> tuple[str, ...]:
        """The native bf16 instructions this CPU has (their cpuinfo names)."""
        return tuple(f for f in _NATIVE_BF16["arm" if self.is_arm else "x86"] if self.has(f))

    @property
    def bf16(self) -> bool:
        """Native bf16 arithmetic (not oneDNN's AVX-512 emulation: `bf16_via_onednn`)."""
        return bool(self.bf16_flags)

    def bf16_detail(self) -> str:
        """One phrase on bf16 here: the native instructions, or why there are none and
        what bf16 then costs."""
        if self.bf16:
            return f"native bf16 ({', '.join(self.bf16_flags)})"
        wanted = "/".join(_NATIVE_BF16["arm" if self.is_arm else "x86"])
        how = "oneDNN emulates it" if self.bf16_via_onednn else "it is emulated"
        return f"no native bf16 (no {wanted} in the CPU flags): {how} (converted to fp32 and back), slower than fp32"

    @property
    def int8_vnni(self) -> bool:
        """Int8 dot-product instructions (x86 VNNI/AMX, ARM SDOT/I8MM)."""
        if self.is_arm:
            return self.has("asimddp") or self.has("dot") or self.has("i8mm")
        return self.has("avx512_vnni") or self.has("avx_vnni") or self.has("amx_int8")

    @property
    def amx(self) -> bool:
        return self.has("amx_tile") and (self.has("amx_bf16") or self.has("amx_int8"))

    def quantized_engine(self) -> str:
        """The torch.ao quantized engine for this CPU: 'x86' (fbgemm + oneDNN) or 'fbgemm'
        on x86, 'qnnpack' on ARM, else the first supported one.

        Raises ValueError when torch offers no engine at all."""
        order = ("x86", "fbgemm", "onednn", "qnnpack") if not self.is_arm else ("qnnpack",)
        for engine in order:
            if engine in self.quantized_engines:
                return engine
        usable = [e for e in self.quantized_engines if e != "none"]
        if usable:
            return usable[0]
        raise ValueError(f"torch offers no quantized engine on this {self.arch} CPU")

    def describe(self) -> str:
        parts = [self.arch]
        parts.append("bf16" if self.bf16 else "no native bf16")
        parts.append("int8 dot-product" if self.int8_vnni else "no int8 dot-product")
        if self.amx:
            parts.append("AMX")
        return ", ".join(parts)


def _torch_probe() -> tuple[frozenset[str], str | None, bool | None, tuple[str, ...], str | None]:
    try:
        import torch
    except ImportError:
        return frozenset(), None, None, (), None
    flags: set[str] = set()
    arch = None
    get_caps = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if get_caps is not None:
        try:
            caps = dict(get_caps())
            flags = {_norm(k) for k, v in caps.items() if v is True}
            arch = caps.get("architecture")
        except (RuntimeError, AttributeError, TypeError):  # old torch: cpuinfo flags suffice
            flags = set()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (RuntimeError, AttributeError):
        capability = None
    try:
        onednn_bf16 = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (RuntimeError, AttributeError):
        onednn_bf16 = None
    engines = tuple(torch.backends.quantized.supported_engines)
    return frozenset(flags), capability, onednn_bf16, engines, arch


def detect_cpu_features(cpuinfo_path: Path | str = CPUINFO_PATH, *, use_torch: bool = True) -> CpuFeatures:
    """Probe this machine (or a cpuinfo file standing for another one, with use_torch=False)."""
    flags = read_cpuinfo_flags(cpuinfo_path)
    arch = platform.machine().lower()
    capability = onednn_bf16 = None
    engines: tuple[str, ...] = ()
    if use_torch:
        torch_flags, capability, onednn_bf16, engines, torch_arch = _torch_probe()
        flags = flags | torch_flags
        arch = (torch_arch or arch).lower()
    else:
        engines = ("x86", "fbgemm", "onednn", "qnnpack") if arch in _X86 else ("qnnpack",)
    return CpuFeatures(
        arch=arch, flags=flags, torch_capability=capability, bf16_via_onednn=onednn_bf16, quantized_engines=engines
    )


@functools.lru_cache(maxsize=1)
def this_cpu() -> CpuFeatures:
    """The features of this machine's CPU (probed once)."""
    return detect_cpu_features()


# what a transform is told of the CPU: its features, a function giving them, or None (this machine)
FeaturesSource = CpuFeatures | Callable[[], CpuFeatures] | None


def features_of(source: FeaturesSource) -> CpuFeatures:
    """The CPU features `source` stands for (None: this machine's, `this_cpu()`)."""
    if source is None:
        return this_cpu()
    return source if isinstance(source, CpuFeatures) else source()


# -- CPUs this process may use ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuAllowance:
    """The CPUs a process may use: its affinity mask, and the cgroup CPU quota over it."""

    affinity: int  # CPUs in the affinity mask (os.cpu_count() where there is none), >= 1
    quota: float | None  # CPUs the tightest cgroup CPU bandwidth limit allows; None: unlimited

    @property
    def cpus(self) -> float:
        """The exact figure, min(affinity, quota): the CPUs this process can keep busy (what
        the CPU power model and the estimator's fingerprint use)."""
        return float(self.affinity) if self.quota is None else min(float(self.affinity), self.quota)

    @property
    def threads(self) -> int:
        """A whole thread or job count: a fractional quota rounded up, as the JVM and .NET do
        for their processor count (a quota of 1.5 CPUs gives 2: two threads keep 1.5 CPUs busy,
        one leaves half a CPU unused); at least 1 and never above the affinity count."""
        return max(1, min(self.affinity, math.ceil(self.cpus)))

    def limited_by(self) -> str:
        """What sets `cpus`: the affinity mask, the cgroup quota, or both (for messages)."""
        if self.quota is None or self.quota > self.affinity:
            return "this process's CPU affinity"
        if self.quota == self.affinity:
            return "this process's CPU affinity and cgroup CPU quota"
        return f"this process's cgroup CPU quota; its CPU affinity allows {self.affinity}"


def cpu_allowance(
    pid: int | None = None, *, cgroup_root: Path | None = None, proc_root: Path | None = None
) -> CpuAllowance:
    """The affinity mask and cgroup CPU quota of process `pid` (None: this process), read now.
    The roots default to `hardware.cgroup.CGROUP_ROOT` and `PROC_ROOT`; a process that is gone,
    or a system without affinity masks (macOS), counts every CPU."""
    pid = os.getpid() if pid is None else pid
    try:
        affinity = len(os.sched_getaffinity(pid))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    return CpuAllowance(max(affinity, 1), cgroup_cpu_quota(pid, cgroup_root, proc_root))


def usable_cpus(pid: int | None = None, *, cgroup_root: Path | None = None, proc_root: Path | None = None) -> float:
    """CPUs process `pid` (None: this one) can keep busy: min(affinity, cgroup CPU quota),
    possibly fractional (`CpuAllowance.cpus`)."""
    return cpu_allowance(pid, cgroup_root=cgroup_root, proc_root=proc_root).cpus


def usable_threads() -> int:
    """Threads or parallel jobs this process should run: the usable CPUs as a whole number,
    a fractional cgroup quota rounded up (`CpuAllowance.threads`)."""
    return cpu_allowance().threads
