"""Which machine this is, for counting node-wide devices once: the kernel's boot id.

RAPL counters, GPUs and NICs belong to a kernel, not to a host name: two containers on one
machine have different host names and share the same counters. Linux gives every boot a
random id (`/proc/sys/kernel/random/boot_id`), the same in every container of that kernel
and different on every other machine, so it names a node. Where it cannot be read (not
Linux), the host name stands in.
"""

from __future__ import annotations

import socket
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def node_id(boot_id_path: Path = BOOT_ID) -> str:
    """The kernel's boot id (`boot:<uuid>`), else `host:<host name>`."""
    try:
        text = boot_id_path.read_text().strip()
    except OSError:
        text = ""
    if text:
        return f"boot:{text}"
    return f"host:{socket.gethostname()}"
