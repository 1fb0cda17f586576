"""CPU the tracker's own threads use while the program it tracks does nothing: the sampler
thread and the meter worker (tracking/reading.py, which calls the meters off the sampler's
thread: two thread hand-offs per tick), at 10 Hz and 1000 Hz.

    python benchmarks/tracker_cpu.py --write          # the figure in docs/benchmarks.md
    python benchmarks/tracker_cpu.py --rounds 1 --seconds 2   # smoke run

Each run is a fresh process: a tracker (ledger on, flushed every second) whose main thread
sleeps for `--seconds`; after a second of warm-up, the CPU time of each greenai thread is read
from /proc/self/task/<tid>/schedstat (nanoseconds; Linux) and of the whole process from
`time.process_time()`, per second of wall time. Meters: `simulated` (4 simulated devices:
nearly free to read, so what remains is the tracker's own machinery) and `estimated` (what
this machine discovers by default; here the CPU, DRAM and I/O models, which read /proc). The
configurations run in a rotated order round by round, each after waiting for a quiet machine,
and each run records its co-load (other processes' busy CPUs from /proc/stat, steal included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _harness

RATES_HZ = (10.0, 1000.0)
METERS = ("simulated", "estimated")
SIMULATED = "gpu:0=250,gpu:1=250,cpu:0=65,dram:0=8"
THREADS = ("greenai-sampler", "greenai-meters")
WARMUP_S = 1.0


def threads_cpu_s() -> dict[str, float]:
    """CPU seconds so far of this process's threads other than the main one, summed by thread
    name (schedstat's first field, in ns)."""
    out: dict[str, float] = {}
    for t in threading.enumerate():
        if t is threading.main_thread() or t.native_id is None:
            continue
        try:
            ns = int(Path(f"/proc/self/task/{t.native_id}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out[t.name] = out.get(t.name, 0.0) + ns / 1e9
    return out


def worker(hz: float, meters_kind: str, seconds: float, ledger: str) -> None:
    from greenai.config import Config
    from greenai.meters.simulated import make_simulated_meters
    from greenai.tracking.tracker import Tracker

    cfg = Config(ledger=ledger, intensity="100", sample_hz=hz).validate()
    meters = make_simulated_meters(SIMULATED) if meters_kind == "simulated" else None
    tracker = Tracker(f"cpu-{meters_kind}-{hz:g}", config=cfg, meters=meters, handle_signals=False)
    with tracker:
        time.sleep(WARMUP_S)
        threads0, process0, load0 = threads_cpu_s(), time.process_time(), _harness.cpu_sample()
        time.sleep(seconds)
        threads1, process1, load1 = threads_cpu_s(), time.process_time(), _harness.cpu_sample()
    result = tracker.result
    devices = sorted({d.device for d in result.snapshot.devices}) if result is not None else []
    wall = load1.wall_s - load0.wall_s
    per_thread = {name: (threads1[name] - threads0.get(name, 0.0)) * 1000 / wall for name in threads1}
    _harness.emit(
        {
            "threads_ms_per_s": per_thread,
            "process_ms_per_s": (process1 - process0) * 1000 / wall,
            "coload_cores": load1.others_cores(load0),
            "devices": devices,
        }
    )


def main() -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="runs of each configuration (default 5)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds of each run (default 10)")
    ap.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for a quiet machine per run")
    ap.add_argument("--worker", nargs=3, metavar=("HZ", "METERS", "LEDGER"), help=argparse.SUPPRESS)
    _harness.add_write(ap, "tracker-cpu")
    args = ap.parse_args()
    if args.worker:
        worker(float(args.worker[0]), args.worker[1], args.seconds, args.worker[2])
        return
    if not sys.platform.startswith("linux"):
        raise SystemExit("per-thread CPU time is read from /proc/self/task: Linux only")
    configs = [(hz, kind) for kind in METERS for hz in RATES_HZ]
    results: dict[tuple[float, str], list[dict[str, Any]]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="greenai-tracker-cpu-") as scratch:
        for r, order in _harness.rotations(configs, args.rounds):
            for hz, kind in order:
                _harness.wait_for_quiet(args.quiet_wait)
                ledger = str(Path(scratch) / f"{kind}-{hz:g}-{r}.db")
                out = _harness.run_worker(
                    __file__,
                    ["--worker", f"{hz:g}", kind, ledger, "--seconds", str(args.seconds)],
                    timeout=args.seconds * 3 + 60,
                )
                results[(hz, kind)].append(out)
                t = out["threads_ms_per_s"]
                _harness.log(
                    f"round {r + 1} {kind} {hz:g} Hz: sampler {t.get(THREADS[0], 0):.2f}, meter worker "
                    f"{t.get(THREADS[1], 0):.2f}, process {out['process_ms_per_s']:.2f} ms/s; "
                    f"co-load {out['coload_cores']:.2f}"
                )
    text = report(results, args)
    print(text)
    if args.write:
        _harness.write_section(args.write, "tracker-cpu", text)


def _cell(values: list[float]) -> str:
    """median (min ... max) in ms/s, and the median as a share of one core."""
    med = statistics.median(values)
    return f"{med:.2f} ({min(values):.2f} ... {max(values):.2f}) = {med / 10:.2f} %"


def report(results: dict[tuple[float, str], list[dict[str, Any]]], args: argparse.Namespace) -> str:
    lines = [
        "## The tracker's own CPU: sampler and meter worker at 10 Hz and 1000 Hz",
        "",
        f"`{_harness.command(__file__, None)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Linux {os.uname().release}): a tracker (ledger on, "
        f"flushed every second) whose program sleeps; {args.rounds} runs of {args.seconds:g} s per configuration, "
        "each a fresh process, the configurations in a rotated order, each after waiting (at most "
        f"{args.quiet_wait:g} s) for a quiet machine. "
        "CPU time of each thread from /proc/self/task/*/schedstat, per second of wall time after a second of "
        "warm-up (ms/s; 10 ms/s = 1 % of one core): median (min ... max) = median as a share of one core.",
        "",
        "| meters | rate | meter worker | sampler thread | all greenai threads | whole process | co-load median (max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (hz, kind), runs in results.items():
        worker_ms = [r["threads_ms_per_s"].get(THREADS[1], 0.0) for r in runs]
        sampler_ms = [r["threads_ms_per_s"].get(THREADS[0], 0.0) for r in runs]
        all_ms = [sum(r["threads_ms_per_s"].values()) for r in runs]
        process_ms = [r["process_ms_per_s"] for r in runs]
        loads = [r["coload_cores"] for r in runs]
        devices = ", ".join(runs[0]["devices"]) if runs and runs[0]["devices"] else ""
        label = f"{kind} ({devices})" if devices else kind
        lines.append(
            f"| {label} | {hz:g} Hz | {_cell(worker_ms)} | {_cell(sampler_ms)} | {_cell(all_ms)} | "
            f"{_cell(process_ms)} | {statistics.median(loads):.2f} ({max(loads):.2f}) CPUs |"
        )
    load = max(statistics.median(r["coload_cores"] for r in runs) for runs in results.values())
    lines += [
        "",
        "The meter worker is the thread that calls the meters, so a meter's own cost (reading /proc for the "
        "estimated ones) is in its column; the sampler thread integrates, apportions and flushes to the ledger. "
        "`all greenai threads` adds any other thread of the tracker (the co-load and process-tree readers run in "
        "the sampler). Whole process: `time.process_time()`, the sleeping main thread included. Co-load: other "
        "processes' busy CPUs over each run, steal included. " + _harness.machine_words(load),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
