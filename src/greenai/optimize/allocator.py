"""Keep freed memory mapped: stop glibc's malloc from handing a step's buffers back to the
kernel, so the next step does not page-fault them in again.

glibc serves a request above its mmap threshold with a fresh mmap and unmaps it when freed;
the threshold starts at 128 KiB and rises to the size of the largest mmapped block freed (up
to 32 MiB), and the top of the heap goes back to the kernel once more than the trim threshold
(twice the mmap threshold) of it is free (mallopt(3): M_MMAP_THRESHOLD, M_TRIM_THRESHOLD). A
training step that frees megabytes of temporaries together gives them back, and the next step
faults on every page of them again: 1,000-4,000 minor faults per batch-32 step of the
estimator's zoo, 1.06-1.49x the step time (benchmarks/page_faults.py, docs/benchmarks.md).
Fixing both thresholds high keeps freed memory mapped for reuse. The price: the process keeps
its peak memory (its RSS no longer shrinks after a step).

`mallopt` is called through ctypes because no maintained Python package wraps it (neither
the standard library nor psutil does). It is a one-way switch: once the thresholds are fixed,
glibc's dynamic adjustment is off for the life of the process, so there is no `restore` and
no tuner knob; for a program you launch, `greenai run --keep-freed-memory` sets the
equivalent environment variables instead.
"""

from __future__ import annotations

import ctypes
import os

from greenai.errors import ConfigError
from greenai.optimize.knobs import KnobUnavailable

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30  # both thresholds: blocks up to 1 GiB come from the heap, which is never trimmed
C_INT_MAX = 2**31 - 1
ENV_NAMES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's tunables' aliases


def glibc_version() -> str | None:
    """glibc's version ("2.36") if this process runs on glibc, else None (musl, macOS, Windows)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    if not text or not text.startswith("glibc "):
        return None
    return text.split()[1]


def unavailable_reason() -> str | None:
    """None if freed memory can be kept mapped here, else why not."""
    if glibc_version() is None:
        return "keeping freed memory mapped needs glibc's malloc; this C library is not glibc (nothing changed)"
    return None


def _validated(threshold_bytes: int) -> int:
    if isinstance(threshold_bytes, bool) or not isinstance(threshold_bytes, int) or threshold_bytes <= 0:
        raise ConfigError(f"threshold_bytes must be a positive integer (got {threshold_bytes!r})")
    if threshold_bytes > C_INT_MAX:  # mallopt takes an int
        raise ConfigError(f"threshold_bytes must be at most {C_INT_MAX} (mallopt takes a C int), got {threshold_bytes}")
    return threshold_bytes


def keep_freed_memory(threshold_bytes: int = KEEP_BYTES) -> None:
    """Fix glibc's mmap and trim thresholds at `threshold_bytes` for this process: blocks up to
    that size come from the heap, and the heap is not trimmed until that much of it is free.

    Call it at the start of a program, before the training loop. Raises KnobUnavailable off
    glibc or if glibc refuses the value; nothing is changed then."""
    value = _validated(threshold_bytes)
    reason = unavailable_reason()
    if reason is not None:
        raise KnobUnavailable(reason)
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    for param, name in ((M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD"), (M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD")):
        if mallopt(param, value) != 1:
            raise KnobUnavailable(f"glibc {glibc_version()} refused mallopt({name}, {value})")


def keep_freed_memory_env(threshold_bytes: int = KEEP_BYTES) -> dict[str, str]:
    """Environment variables doing what keep_freed_memory() does, for a program about to start
    (glibc reads them at start-up; other C libraries ignore them)."""
    value = str(_validated(threshold_bytes))
    return {name: value for name in ENV_NAMES}
