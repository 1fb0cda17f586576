"""Co-load: what other processes (and, on a VM, the hypervisor) do to this machine's CPUs
while something is measured. The one reader of it: the tracker records it per run
(`tracking/coload.py`), `optimize` and the tuner check their rounds with it, the benchmarks
(`benchmarks/_harness.py`) wait for a quiet machine with it.

The machine's CPU time comes from the first line of `/proc/stat` (Linux; psutil elsewhere):
busy = user + nice + system + irq + softirq of all CPUs (iowait and idle are not work; guest
time is already inside user), and steal, the time the hypervisor gave this VM's vCPUs to other
guests, which no process list shows. The CPUs other processes kept busy over an interval are
the machine's busy time minus the measured process tree's own CPU time, over the wall time;
steal is added to it as contention of the same kind. The counters tick in 1/CLK_TCK s (10 ms),
so over one 0.1 s sampling interval a figure is quantised to about 0.1 CPU per CPU: the
summaries below are made over windows of a second or more.

A busy machine changes what is measured, not only how fast: other processes' threads stall
torch's OpenMP barriers (their spinning is charged to the run), and the same training took 3.3 s
and 20.6 J alone and 94.4 s and 413 J beside other jobs on the project's 2-vCPU VM. A run whose
co-load passed `DISTURBED_CORES` for at least `DISTURBED_SHARE` of its time is `disturbed`; see
docs/measurement.md ("A busy machine") for how the threshold was chosen.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC_STAT = Path("/proc/stat")  # read at each call (tests point it at a fake machine)

QUIET_CORES = 0.25  # other processes below this many busy CPUs: quiet enough to measure
# A run is `disturbed` when other processes (steal included) kept at least DISTURBED_CORES CPUs
# busy during at least DISTURBED_SHARE of its time (the setting `coload_threshold_cores`). Measured
# by benchmarks/coload_threshold.py on a 2-vCPU VM (docs/benchmarks.md, docs/measurement.md): a
# busy loop taking 0.22 CPUs beside the demo's training left its energy within the spread of two
# identical quiet runs (1.00-1.09x against 0.86-1.17x), one taking 0.42 CPUs moved it beyond in
# two rounds of three (up to 1.43x), 0.8 CPUs by 1.6-1.8x, one on each CPU by up to 25x.
DISTURBED_CORES = 0.3
DISTURBED_SHARE = 0.10
WINDOW_S = 1.0  # co-load is summarised over windows of at least this long
MIN_READ_INTERVAL_S = 0.1  # the tracker reads co-load at most this often, whatever its sampling rate
MIN_LAST_WINDOW_S = 0.2  # a run's last, shorter window counts if at least this long
MAX_PENDING_WINDOWS = 10_000  # windows kept for a ledger that cannot be written (~3 h)
_BIN_CORES = 0.01  # resolution of the medians


# -- reading the machine ------------------------------------------------------------------


def machine_cpu_s(stat_path: Path | None = None) -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot: `/proc/stat` on Linux,
    psutil elsewhere; None if neither can say."""
    path = stat_path if stat_path is not None else PROC_STAT
    try:
        with open(path, "rb") as f:
            first = f.readline()
        fields = [int(x) for x in first.split()[1:]]
    except (OSError, ValueError):
        if sys.platform.startswith("linux"):
            return None  # psutil would read the same file
        return _psutil_cpu_s()
    if len(fields) < 4:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def _psutil_cpu_s() -> tuple[float, float] | None:
    try:
        import psutil

        t = psutil.cpu_times()
    except Exception:  # noqa: BLE001 - no way to tell
        return None
    busy = t.user + t.system + sum(getattr(t, k, 0.0) for k in ("nice", "irq", "softirq"))
    return busy, getattr(t, "steal", 0.0)


@dataclass(frozen=True)
class CpuSample:
    """CPU time counters at one instant; two samples give the load between them."""

    wall_s: float  # time.perf_counter()
    busy_s: float  # machine-wide non-idle CPU time of all CPUs (user, nice, system, irq, softirq)
    steal_s: float  # time the hypervisor gave this VM's vCPUs to other guests
    own_s: float  # the measured process tree's CPU time (all its threads)

    def others_cores(self, since: CpuSample, steal: bool = True) -> float:
        """CPUs other processes kept busy on average since `since`: the machine's busy time
        minus ours, plus (steal=True) the steal time, which on a VM is contention no process
        list shows. Never negative (the counters tick in 1/CLK_TCK s)."""
        wall = self.wall_s - since.wall_s
        if wall <= 0:
            return 0.0
        busy = (self.busy_s - since.busy_s) - (self.own_s - since.own_s)
        if steal:
            busy += self.steal_s - since.steal_s
        return max(0.0, busy / wall)

    def steal_cores(self, since: CpuSample) -> float:
        wall = self.wall_s - since.wall_s
        return max(0.0, (self.steal_s - since.steal_s) / wall) if wall > 0 else 0.0

    def own_cores(self, since: CpuSample) -> float:
        wall = self.wall_s - since.wall_s
        return (self.own_s - since.own_s) / wall if wall > 0 else 0.0


def cpu_sample(own_s: float | None = None, stat_path: Path | None = None) -> CpuSample:
    """The counters now; `own_s` is the measured tree's CPU seconds (default: this process's,
    all threads). A machine that cannot be read looks idle (busy and steal 0)."""
    own = time.process_time() if own_s is None else own_s
    busy, steal = machine_cpu_s(stat_path) or (0.0, 0.0)
    return CpuSample(time.perf_counter(), busy, steal, own)


def wait_for_quiet(max_wait_s: float, busy_cores: float = QUIET_CORES, window_s: float = 1.0) -> float:
    """Wait (at most about max_wait_s) until other processes, steal included, keep fewer than
    `busy_cores` CPUs busy over a `window_s` window; return the seconds waited. The machine is
    shared: other jobs' threads stall torch's OpenMP barriers and would be measured as ours.
    This keeps a measurement out of a burst that is under way; it cannot keep bursts out of a
    running measurement."""
    start = time.perf_counter()
    while True:
        before = cpu_sample()
        time.sleep(window_s)
        load = cpu_sample().others_cores(before)
        waited = time.perf_counter() - start
        if load < busy_cores or waited >= max_wait_s:
            return waited


class Probe:
    """The co-load of a stretch of this process's own work (a round of `optimize`, a trial of
    the tuner): `probe = Probe(); ...; probe.cores()`. Two reads of /proc/stat."""

    __slots__ = ("_start",)

    def __init__(self) -> None:
        self._start = cpu_sample()

    def cores(self) -> float:
        """CPUs other processes (steal included) kept busy since the probe was made."""
        return cpu_sample().others_cores(self._start)


# -- a run's co-load ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoLoadWindow:
    """Co-load over one window of a run (a row of the ledger's `coload` table)."""

    t: float  # unix time at the window's end
    span_s: float
    others_cores: float  # CPUs other processes kept busy (steal apart)
    steal_cores: float

    @property
    def cores(self) -> float:
        """Co-load: other processes' busy CPUs plus steal."""
        return self.others_cores + self.steal_cores


@dataclass(frozen=True, slots=True)
class CoLoadSummary:
    """A run's co-load: over windows of about a second, the time-weighted median and the
    maximum of the CPUs other processes kept busy (steal included), the same for steal alone,
    and the share of the time at or above the threshold; `disturbed` when that share reached
    DISTURBED_SHARE."""

    median_cores: float
    max_cores: float
    steal_median_cores: float
    steal_max_cores: float
    busy_share: float  # share of the measured time with co-load >= threshold_cores
    threshold_cores: float
    seconds: float  # time over which co-load was measured

    @property
    def disturbed(self) -> bool:
        return self.busy_share >= DISTURBED_SHARE

    def describe(self) -> str:
        """In plain words, e.g. "disturbed: other processes kept 0.5 or more CPUs busy for 85%
        of the run (median 1.90, max 2.00 CPUs)"."""
        steal = f"; hypervisor steal {self.steal_median_cores:.2f} median" if self.steal_max_cores >= 0.05 else ""
        if self.disturbed:
            return (
                f"disturbed: other processes kept {self.threshold_cores:g} or more CPUs busy for "
                f"{self.busy_share:.0%} of the run (median {self.median_cores:.2f}, max {self.max_cores:.2f} CPUs{steal})"
            )
        return (
            f"quiet: other processes kept {self.median_cores:.2f} CPUs busy (median; max {self.max_cores:.2f}{steal})"
        )

    def short(self) -> str:
        """A table cell: "disturbed 1.90" or "0.05"."""
        return f"disturbed {self.median_cores:.2f}" if self.disturbed else f"{self.median_cores:.2f}"


class CoLoadLog:
    """Windows of co-load added one by one, summarised in bounded memory (time-weighted
    histograms at 0.01 CPU for the medians; the maxima exact)."""

    def __init__(self, threshold_cores: float = DISTURBED_CORES) -> None:
        self.threshold_cores = threshold_cores
        self._cores: dict[int, float] = {}
        self._steal: dict[int, float] = {}
        self._max = self._steal_max = 0.0
        self._busy_s = self._seconds = 0.0

    def add(self, window: CoLoadWindow) -> None:
        if not (window.span_s > 0 and math.isfinite(window.others_cores) and math.isfinite(window.steal_cores)):
            return
        cores = window.cores
        _add(self._cores, cores, window.span_s)
        _add(self._steal, window.steal_cores, window.span_s)
        self._max = max(self._max, cores)
        self._steal_max = max(self._steal_max, window.steal_cores)
        self._seconds += window.span_s
        if cores >= self.threshold_cores:
            self._busy_s += window.span_s

    def summary(self) -> CoLoadSummary | None:
        if self._seconds <= 0:
            return None
        return CoLoadSummary(
            median_cores=_median(self._cores),
            max_cores=self._max,
            steal_median_cores=_median(self._steal),
            steal_max_cores=self._steal_max,
            busy_share=self._busy_s / self._seconds,
            threshold_cores=self.threshold_cores,
            seconds=self._seconds,
        )


def _add(histogram: dict[int, float], cores: float, span_s: float) -> None:
    key = int(round(max(cores, 0.0) / _BIN_CORES))
    histogram[key] = histogram.get(key, 0.0) + span_s


def _median(histogram: dict[int, float]) -> float:
    """The time-weighted median of a histogram (the lower one at an exact half)."""
    half = sum(histogram.values()) / 2
    seen = 0.0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= half:
            return key * _BIN_CORES
    return 0.0
