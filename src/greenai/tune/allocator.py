"""Keep freed memory mapped: stop glibc's malloc from handing a step's buffers back to the
kernel, so the next step does not page-fault them in again.

glibc serves a request above its mmap threshold with a fresh mmap and unmaps it when freed;
the threshold starts at 128 KiB and rises to the size of the largest mmapped block freed (up
to 32 MiB), and the top of the heap goes back to the kernel once more than the trim threshold
(twice the mmap threshold) of it is free (mallopt(3): M_MMAP_THRESHOLD, M_TRIM_THRESHOLD). A
training step that frees megabytes of temporaries together gives them back, and the next step
faults on every page of them again: 1,200-3,300 minor faults per batch-32 training step of
the estimator's zoo (benchmarks/page_faults.py, docs/benchmarks.md). Fixing the mmap threshold
at 32 MiB (the ceiling of glibc's own dynamic threshold, and the most every glibc version
accepts: DEFAULT_MMAP_THRESHOLD_MAX on 64-bit) and the trim threshold high keeps freed memory
mapped for reuse. The price: the process keeps its peak memory (its RSS no longer shrinks
after a step), and blocks of varying sizes now share the heap, which can fragment it.

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
from greenai.tune.knobs.base import KnobUnavailable

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 << 20  # blocks up to 32 MiB come from the heap (glibc's DEFAULT_MMAP_THRESHOLD_MAX)
KEEP_BYTES = 1 << 30  # the heap is trimmed only once 1 GiB of it is free
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


def _validated(keep_bytes: int) -> int:
    if isinstance(keep_bytes, bool) or not isinstance(keep_bytes, int) or keep_bytes <= 0:
        raise ConfigError(f"keep_bytes must be a positive integer (got {keep_bytes!r})")
    if keep_bytes > C_INT_MAX:  # mallopt takes an int
        raise ConfigError(f"keep_bytes must be at most {C_INT_MAX} (mallopt takes a C int), got {keep_bytes}")
    return keep_bytes


def keep_freed_memory(keep_bytes: int = KEEP_BYTES) -> None:
    """Fix glibc's thresholds for this process: blocks up to 32 MiB come from the heap, and the
    heap is not trimmed until `keep_bytes` of it is free.

    Call it at the start of a program, before the training loop. Raises KnobUnavailable off
    glibc (nothing changed) or if glibc refuses a value (the mmap threshold is set first: if
    it is refused nothing changed; glibc accepts any trim threshold)."""
    value = _validated(keep_bytes)
    reason = unavailable_reason()
    if reason is not None:
        raise KnobUnavailable(reason)
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    for param, name, size in (
        (M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", MMAP_BYTES),
        (M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD", value),
    ):
        if mallopt(param, size) != 1:
            raise KnobUnavailable(f"glibc {glibc_version()} refused mallopt({name}, {size})")


def keep_freed_memory_env(keep_bytes: int = KEEP_BYTES) -> dict[str, str]:
    """Environment variables doing what keep_freed_memory() does, for a program about to start
    (glibc reads them at start-up; other C libraries ignore them)."""
    return dict(zip(ENV_NAMES, (str(MMAP_BYTES), str(_validated(keep_bytes))), strict=True))
