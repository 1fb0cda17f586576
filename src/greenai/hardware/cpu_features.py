"""What this CPU can do for lower precision: bf16 and int8 instructions, and which
PyTorch quantized engine to use.

Flags come from `/proc/cpuinfo` (x86 `flags`, ARM `Features`) merged with
`torch.cpu.get_capabilities()` (PyTorch's cpuinfo probe) where torch provides it. Names
are normalized without underscores, so `avx512_bf16`, `avx512bf16` and torch's
`avx512_bf16` compare equal. Tests and callers inject a `CpuFeatures` (or a fake cpuinfo
file) to simulate another CPU.

Native bf16: x86 `avx512_bf16` (Cooper Lake, Zen 4+), `amx_bf16` (Sapphire Rapids) or
`avx_ne_convert`; ARM `bf16` (Armv8.6-A). Int8 dot products: x86 `avx512_vnni`/`avx_vnni`
(VNNI) or AMX `amx_int8`; ARM `asimddp`/`dot` (SDOT) and `i8mm`. oneDNN may *emulate* bf16
on plain AVX-512 (`torch.ops.mkldnn._is_mkldnn_bf16_supported()` is then True), which is
slower than fp32, so that probe is recorded but does not count as native support.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

CPUINFO_PATH = Path("/proc/cpuinfo")

_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_ARM = ("aarch64", "arm64", "armv8l", "armv7l")


def _norm(flag: str) -> str:
    return flag.strip().lower().replace("_", "")


@dataclass(frozen=True)
class CpuFeatures:
    """Instruction-set facts relevant to bf16 and int8 inference."""

    arch: str
    flags: frozenset[str]
    torch_capability: str | None = None
    mkldnn_bf16: bool | None = None
    quantized_engines: tuple[str, ...] = ()

    @classmethod
    def from_flags(
        cls,
        flags: Iterable[str],
        arch: str = "x86_64",
        *,
        quantized_engines: Sequence[str] = ("x86", "fbgemm", "onednn", "qnnpack"),
    ) -> CpuFeatures:
        """A CPU described by its flag names (as in /proc/cpuinfo); for tests and what-ifs."""
        return cls(
            arch=arch.lower(), flags=frozenset(_norm(f) for f in flags), quantized_engines=tuple(quantized_engines)
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
    def bf16(self) -> bool:
        """Native bf16 arithmetic (not oneDNN's AVX-512 emulation)."""
        if self.is_arm:
            return self.has("bf16") or self.has("svebf16")
        return self.has("avx512_bf16") or self.has("amx_bf16") or self.has("avx_ne_convert")

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


def read_cpuinfo_flags(path: Path | str = CPUINFO_PATH) -> frozenset[str]:
    """Normalized flag names from the first processor entry of a cpuinfo file (empty if
    the file is missing)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(_norm(f) for f in value.split())
    return frozenset()


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
        mkldnn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (RuntimeError, AttributeError):
        mkldnn_bf16 = None
    engines = tuple(torch.backends.quantized.supported_engines)
    return frozenset(flags), capability, mkldnn_bf16, engines, arch


def detect_cpu_features(cpuinfo_path: Path | str = CPUINFO_PATH, *, use_torch: bool = True) -> CpuFeatures:
    """Probe this machine (or a cpuinfo file standing for another one, with use_torch=False)."""
    flags = read_cpuinfo_flags(cpuinfo_path)
    arch = platform.machine().lower()
    capability = mkldnn_bf16 = None
    engines: tuple[str, ...] = ()
    if use_torch:
        torch_flags, capability, mkldnn_bf16, engines, torch_arch = _torch_probe()
        flags = flags | torch_flags
        arch = (torch_arch or arch).lower()
    else:
        engines = ("x86", "fbgemm", "onednn", "qnnpack") if arch in _X86 else ("qnnpack",)
    return CpuFeatures(
        arch=arch, flags=flags, torch_capability=capability, mkldnn_bf16=mkldnn_bf16, quantized_engines=engines
    )


@functools.lru_cache(maxsize=1)
def this_cpu() -> CpuFeatures:
    """The features of this machine's CPU (probed once)."""
    return detect_cpu_features()
