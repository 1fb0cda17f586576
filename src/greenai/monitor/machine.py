"""The whole machine as the scope of the estimated meters, for `greenai monitor`.

The tracker's estimates (CPU and DRAM models, disk I/O) measure a process tree
(`meters.process.ProcessScope`). An exporter measures the machine, so it gives the same meters
this scope instead; hardware counters (RAPL, NVML) are machine-wide anyway:

- CPU time: every CPU's non-idle time since boot, user + nice + system + irq + softirq
  (`/proc/stat`, read by `hardware.coload.machine_cpu_s`, the reader the co-load uses too;
  iowait, steal and idle are not work done here; guest time is already inside user);
- usable CPUs: every logical CPU of the machine;
- memory: RAM in use, total - available (what the DRAM model charges, in place of a tree's RSS);
- disk: bytes read and written by the machine's block devices (psutil leaves partitions out;
  a device-mapper volume and the disk under it are both counted).

Inside a container these are the host's figures, as /proc/stat and /proc/diskstats are not
namespaced.
"""

from __future__ import annotations

import psutil

from greenai.errors import MeterError
from greenai.hardware.coload import machine_cpu_s


class MachineScope:
    """CPU time, usable CPUs, memory in use and disk bytes of the whole machine."""

    def cpu_seconds(self) -> float:
        found = machine_cpu_s()
        if found is None:
            raise MeterError("the machine's CPU time cannot be read (/proc/stat)")
        busy, _steal = found
        return busy

    def usable_cpus(self) -> float:
        return float(psutil.cpu_count(logical=True) or 1)

    def rss_bytes(self) -> int:
        memory = psutil.virtual_memory()
        return int(memory.total - memory.available)

    def io_bytes(self) -> tuple[int, int]:
        disks = psutil.disk_io_counters(perdisk=False, nowrap=True)
        if disks is None:  # no block devices (some containers): no disk energy
            return 0, 0
        return int(disks.read_bytes), int(disks.write_bytes)
