"""What CPU this is: model name, hypervisor flag, logical CPUs per package, and its TDP.

TDPs come from `greenai/data/cpu_tdp.csv` (Intel ARK and AMD product pages as compiled in
CodeCarbon's CPU table). Names are normalized on both sides; a model matches the table entry
equal to it, else the longest entry whose words appear consecutively in it. An entry used
that way must carry a model number (a digit), and its vendor must agree with the model's: so
"AMD EPYC" matches nothing, and "6140" (an AMD Opteron listed without the vendor) never
matches an Intel Xeon Gold 6140.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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


def read_cpu_info(path: str | Path = "/proc/cpuinfo") -> CpuInfo:
    """Parse the first processor block of a /proc/cpuinfo file and look up its TDP."""
    text = Path(path).read_text()
    first: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            first.setdefault(key.strip(), value.strip())
    model = first.get("model name", "unknown")
    processors = sum(1 for line in text.splitlines() if line.startswith("processor"))
    siblings = int(first.get("siblings", 0)) or max(processors, 1)
    return CpuInfo(
        model_name=model,
        hypervisor="hypervisor" in first.get("flags", "").split(),
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
