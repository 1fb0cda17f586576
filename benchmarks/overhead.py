"""Tracking overhead: how much slower a CPU training loop runs under greenai (and CodeCarbon).

    python benchmarks/overhead.py                    # full run (7 interleaved trials, ~8.5 min on 2 idle cores)
    python benchmarks/overhead.py --quick            # smoke run (short trials)
    python benchmarks/overhead.py --write docs/benchmarks.md

What it measures (DESIGN.md principle 3, "the overhead is benchmarked, not assumed"):

1. Throughput of one training loop (a small CNN on synthetic in-memory data, PyTorch, CPU)
   in three variants that differ only in tracking:
     baseline    no tracker; phases are `contextlib.nullcontext()`, counters a no-op
     greenai     `greenai.track(..., sample_hz=10)` with phases and counters, ledger in a
                 temp dir (the path users get)
     codecarbon  `codecarbon.OfflineEmissionsTracker` around the loop, its default interval
   Trials are interleaved (the variants' order rotates each trial) and every variant runs in
   a fresh process. Throughput is timed over the loop only; tracker start and stop are
   reported apart. Overhead = 1 - median over trials of (variant / baseline of the same
   trial), the pairwise ratio being robust to slow drift of the machine. Each run also
   records its throughput per ~1 s window with the CPU other processes used meanwhile, so a
   shared machine's bursts can be left out ("quiet windows").
2. greenai on and off in alternating ~2 s blocks inside ONE process (ABBA), which takes
   each process's own speed out of the ratio; reported with a confidence interval.
3. The cost of a phase boundary (`with run.phase("x"): pass`) with the sampler running.
4. Where the sampler's time goes: each meter's `read()`, the accumulator's tick, a ledger
   flush, the sampler thread's CPU time during training and while the program idles.

Targets: overhead <= 0.5 % at 10 Hz; one phase boundary (enter + exit) <= 50 us.
The report is Markdown on stdout; `--write FILE` replaces the section between
`<!-- overhead:start -->` and `<!-- overhead:end -->` in FILE (created if absent);
`--json FILE` keeps the raw measurements and `--render FILE` re-renders them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_OVERHEAD = 0.005  # 0.5 % lower throughput
TARGET_PHASE_US = 50.0  # one enter + exit
SAMPLE_HZ = 10.0
COUNTRY = "FRA"  # both trackers get the same grid intensity source; no network
VARIANTS = ("baseline", "greenai", "codecarbon")
START_MARK, END_MARK = "<!-- overhead:start -->", "<!-- overhead:end -->"
SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent

# The workload: CIFAR-sized images, a small CNN, SGD with momentum.
BATCH = 64
DATASET = 4096
IMAGE = (3, 32, 32)
CLASSES = 10
WARMUP_STEPS = 30


# --------------------------------------------------------------------------------------
# worker side: one variant in one fresh process, result as one JSON line on stdout
# --------------------------------------------------------------------------------------


def _build(threads: int) -> tuple[Any, Callable[..., None]]:
    """Model, data and a `step(phase, count)` closure; identical for every variant."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 128),
        nn.ReLU(),
        nn.Linear(128, CLASSES),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.randn(DATASET, *IMAGE)
    labels = torch.randint(0, CLASSES, (DATASET,))
    state = {"order": torch.randperm(DATASET), "pos": 0}

    def step(phase: Callable[[str], Any], count: Callable[[str, float], None]) -> None:
        with phase("data"):
            if state["pos"] + BATCH > DATASET:  # next epoch: reshuffle
                state["order"], state["pos"] = torch.randperm(DATASET), 0
            idx = state["order"][state["pos"] : state["pos"] + BATCH]
            state["pos"] += BATCH
            x, y = images.index_select(0, idx), labels.index_select(0, idx)
        with phase("forward"):
            loss = loss_fn(model(x), y)
        with phase("backward"):
            loss.backward()
        with phase("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        count("samples", BATCH)
        count("steps", 1)

    return model, step


def _no_phase(name: str) -> contextlib.nullcontext[None]:
    return contextlib.nullcontext()


def _no_count(name: str, amount: float = 1) -> None:
    return None


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_jiffies() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


_LOAD: dict[str, float] = {}


def thread_cpu_s(name: str) -> float | None:
    """CPU seconds used so far by this process's Python thread called `name`, from
    /proc/self/task/<tid>/schedstat (Linux); None if there is no such thread."""
    import threading

    for t in threading.enumerate():
        if t.name == name and t.native_id is not None:
            try:
                return int(Path(f"/proc/self/task/{t.native_id}/schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                return None
    return None


WINDOW_S = 1.0  # throughput is also recorded per ~1 s window (10 sampler ticks, 1 flush)
QUIET_CORES = 0.10  # a window is "quiet" if other processes kept fewer cores than this busy


def _loop(
    step: Callable[..., None], steps: int, phase: Callable[[str], Any], count: Callable[[str, float], None]
) -> float:
    """Run `steps` steps and return the seconds taken. Also records, per ~1 s window, the
    steps done and how many cores other processes kept busy meanwhile (machine busy time
    from /proc/stat minus this process's CPU time), so bursts of other work on a shared
    machine can be told apart from the tracker's cost."""
    windows: list[tuple[int, float, float]] = []  # (steps, seconds, foreign cores)
    (b0, s0), c0 = cpu_jiffies(), time.process_time()
    t0 = time.perf_counter()
    wb, wc, wt, wn = b0, c0, t0, 0
    for _ in range(steps):
        step(phase, count)
        wn += 1
        now = time.perf_counter()
        if now - wt >= WINDOW_S:
            (b, _), c = cpu_jiffies(), time.process_time()
            windows.append((wn, now - wt, max(0.0, ((b - wb) / CLK_TCK - (c - wc)) / (now - wt))))
            wb, wc, wt, wn = b, c, now, 0
    elapsed = time.perf_counter() - t0
    (b1, s1), c1 = cpu_jiffies(), time.process_time()
    _LOAD.update(
        foreign_cores=max(0.0, ((b1 - b0) / CLK_TCK - (c1 - c0)) / elapsed),
        steal_cores=(s1 - s0) / CLK_TCK / elapsed,
        own_cores=(c1 - c0) / elapsed,
    )
    quiet = [n / dt for n, dt, f in windows if f < QUIET_CORES]
    _LOAD.update(
        windows=len(windows),
        quiet_windows=len(quiet),
        quiet_steps_per_s=statistics.median(quiet) if len(quiet) >= MIN_QUIET_WINDOWS else None,
    )
    return elapsed


MIN_QUIET_WINDOWS = 3


def worker_calibrate(threads: int, seconds: float) -> dict[str, Any]:
    """Untracked steps/s: the median of quiet ~1 s windows if there are enough, else the
    fastest window (other work on the machine only ever slows a window down)."""
    _, step = _build(threads)
    _loop(step, WARMUP_STEPS, _no_phase, _no_count)
    rates: list[tuple[float, float]] = []  # (steps/s, foreign cores)
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        (b0, _), c0, t0, n = cpu_jiffies(), time.process_time(), time.perf_counter(), 0
        while time.perf_counter() - t0 < min(WINDOW_S, seconds):
            step(_no_phase, _no_count)
            n += 1
        (b1, _), c1, dt = cpu_jiffies(), time.process_time(), time.perf_counter() - t0
        rates.append((n / dt, max(0.0, ((b1 - b0) / CLK_TCK - (c1 - c0)) / dt)))
    quiet = [r for r, f in rates if f < QUIET_CORES]
    if len(quiet) >= 2:
        return {"steps_per_s": statistics.median(quiet), "how": f"median of {len(quiet)} quiet 1 s windows"}
    return {"steps_per_s": max(r for r, _ in rates), "how": f"fastest of {len(rates)} busy 1 s windows"}


def worker_trial(variant: str, steps: int, threads: int, workdir: Path) -> dict[str, Any]:
    model, step = _build(threads)
    _loop(step, WARMUP_STEPS, _no_phase, _no_count)  # warm caches and allocator, untracked
    out: dict[str, Any] = {"variant": variant, "steps": steps}
    if variant == "baseline":
        t0 = time.perf_counter()
        with contextlib.nullcontext():
            t1 = time.perf_counter()
            loop_s = _loop(step, steps, _no_phase, _no_count)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
    elif variant == "greenai":
        import greenai

        t0 = time.perf_counter()
        with greenai.track(
            "overhead-bench",
            sample_hz=SAMPLE_HZ,
            ledger=str(workdir / "ledger.db"),
            intensity=COUNTRY,
            tags={"benchmark": "overhead"},
        ) as run:
            t1 = time.perf_counter()
            cpu0 = thread_cpu_s("greenai-sampler")
            loop_s = _loop(step, steps, run.phase, run.count)
            cpu1 = thread_cpu_s("greenai-sampler")
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        sampler_ms_per_s = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / loop_s
        result = run.result
        snap = result.snapshot
        out["greenai"] = {
            "energy_j": snap.energy_j,
            "rel_uncertainty": snap.rel_uncertainty,
            "provenance": str(getattr(snap.provenance, "value", snap.provenance)),
            "devices": [
                [d.device, str(getattr(d.provenance, "value", d.provenance)), d.energy_j] for d in snap.devices
            ],
            "phase_energy_j": {p: result.phase_energy_j(p) for p in ("data", "forward", "backward", "optimizer")},
            "samples_counted": snap.counters.get("samples", 0.0),
            "carbon_g": snap.carbon_g,
            "carbon_source": snap.carbon_source,
            "status": result.status,
            "ledger_bytes": (workdir / "ledger.db").stat().st_size,
            "sampler_cpu_ms_per_s": sampler_ms_per_s,
        }
    elif variant == "codecarbon":
        from codecarbon import OfflineEmissionsTracker

        t0 = time.perf_counter()
        tracker = OfflineEmissionsTracker(
            project_name="overhead-bench",
            country_iso_code=COUNTRY,
            save_to_file=False,
            log_level="error",
        )
        tracker.start()
        t1 = time.perf_counter()
        loop_s = _loop(step, steps, _no_phase, _no_count)
        t2 = time.perf_counter()
        emissions_kg = tracker.stop()
        t3 = time.perf_counter()
        data = tracker.final_emissions_data
        from greenai.units import kwh_to_joules  # after the measurement: not timed

        out["codecarbon"] = {
            "energy_j": kwh_to_joules(float(data.energy_consumed)),
            "carbon_g": float(emissions_kg or 0.0) * 1000.0,
            "measure_power_secs": float(getattr(tracker, "_measure_power_secs", float("nan"))),
            "tracking_mode": getattr(data, "tracking_mode", ""),
            "cpu_power_w": float(getattr(data, "cpu_power", float("nan"))),
            "cpu_model": getattr(data, "cpu_model", ""),
        }
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    del model
    out.update(loop_s=loop_s, steps_per_s=steps / loop_s, start_s=t1 - t0, stop_s=t3 - t2, **_LOAD)
    return out


def worker_paired(pairs: int, block_s: float, threads: int, workdir: Path) -> dict[str, Any]:
    """greenai on and off in the SAME process, in alternating blocks of equal step counts
    (order ABBA, so a linear drift cancels): each process's own speed (thread placement,
    memory layout, host contention) then divides out of the ratio, which interleaving fresh
    processes cannot do. A fresh tracker (own sampler thread, ledger run) per tracked block;
    its start and stop are outside the timed block."""
    import greenai

    _, step = _build(threads)
    _loop(step, WARMUP_STEPS, _no_phase, _no_count)
    # steps per block from this process's own untracked speed
    n = max(5, round(block_s * 10 / _loop(step, 10, _no_phase, _no_count)))
    rows = []
    for i in range(pairs):
        order = ("off", "on") if i % 2 == 0 else ("on", "off")
        res: dict[str, tuple[float, float]] = {}
        for which in order:
            time.sleep(0.2)  # same pause before both kinds of block
            if which == "off":
                dt = _loop(step, n, _no_phase, _no_count)
            else:
                with greenai.track(
                    "overhead-paired", sample_hz=SAMPLE_HZ, intensity=COUNTRY, ledger=str(workdir / "ledger.db")
                ) as run:
                    dt = _loop(step, n, run.phase, run.count)
            res[which] = (n / dt, _LOAD["foreign_cores"])
        rows.append({"on": res["on"][0], "off": res["off"][0], "foreign": max(res["on"][1], res["off"][1])})
    return {"steps_per_block": n, "pairs": rows}


def worker_phase(iterations: int, repeats: int, workdir: Path) -> dict[str, Any]:
    """µs per iteration of: an empty loop, `with nullcontext()`, `with run.phase()`, and the
    timeline's raw enter()/exit(), with a live tracker sampling at 10 Hz. The kinds are
    interleaved inside each repeat so they share the machine's drift."""
    import greenai

    with greenai.track("phase-bench", sample_hz=SAMPLE_HZ, ledger=str(workdir / "ledger.db"), intensity=COUNTRY) as run:
        timeline = getattr(run, "_timeline", None)  # deliberately reaching in, for the raw figure
        if timeline is None:
            from greenai.tracking.phases import PhaseTimeline

            timeline = PhaseTimeline()
        nullcontext, rng = contextlib.nullcontext, range(iterations)

        def empty_loop() -> None:
            for _ in rng:
                pass

        def null_with() -> None:
            for _ in rng:
                with nullcontext():
                    pass

        def phase_with() -> None:
            phase = run.phase
            for _ in rng:
                with phase("x"):
                    pass

        def raw_timeline() -> None:
            enter, exit_ = timeline.enter, timeline.exit
            for _ in rng:
                enter("x")
                exit_()

        kinds = {
            "empty loop": empty_loop,
            "with nullcontext()": null_with,
            'with run.phase("x")': phase_with,
            "timeline.enter()+exit()": raw_timeline,
        }
        time.sleep(0.3)  # let the sampler take its first ticks
        times: dict[str, list[float]] = {k: [] for k in kinds}
        cpu: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(repeats):
            for name, fn in kinds.items():
                c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                fn()
                times[name].append((time.perf_counter_ns() - t0) / iterations / 1000.0)
                cpu[name].append((time.thread_time_ns() - c0) / iterations / 1000.0)
                time.sleep(0.05)
    return {"us": times, "cpu_us": cpu, "iterations": iterations, "repeats": repeats}


def _percentiles(values: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]
    out = {"median_us": statistics.median(v) * 1e6, "p90_us": pick(0.9) * 1e6, "max_us": v[-1] * 1e6}
    if cpu:
        out["cpu_median_us"] = statistics.median(cpu) * 1e6
        out["cpu_mean_us"] = statistics.fmean(cpu) * 1e6
    return out


def _time_calls(fn: Callable[[], Any], n: int, gap_s: float) -> dict[str, float]:
    """Wall and thread-CPU time of n calls of fn, spaced by gap_s (the CPU figure is immune
    to preemption by other processes; the mean includes once-a-second refreshes)."""
    wall, cpu = [], []
    for _ in range(n):
        time.sleep(gap_s)
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return _percentiles(wall, cpu)


def worker_costs(workdir: Path, threads: int) -> dict[str, Any]:
    """Black-box and per-part costs of the tracker on this machine (no training running)."""
    import psutil

    import greenai
    from greenai.carbon.accounting import CarbonAccount
    from greenai.config import load_config
    from greenai.ledger.records import RunStart, SampleRow
    from greenai.ledger.store import Ledger
    from greenai.meters.discover import discover
    from greenai.meters.process import ProcessScope
    from greenai.tracking.accumulator import RunAccumulator
    from greenai.tracking.tracker import intensity_from_config

    out: dict[str, Any] = {}
    gap = 1.0 / SAMPLE_HZ
    # 1. each meter's read(), at the sampler's cadence (30 reads = 3 s, so the scope's
    #    once-a-second refreshes are in the mean)
    cfg = load_config(
        directory=workdir, environ={}, sample_hz=SAMPLE_HZ, intensity=COUNTRY, ledger=str(workdir / "ledger.db")
    )
    found = discover(cfg, ProcessScope(os.getpid()))
    meters = []
    for meter in found.meters:
        meter.start()
        meters.append(
            {
                "meter": meter.info().name,
                "detail": meter.info().detail,
                "provenance": str(getattr(meter.info().provenance, "value", "")),
                **_time_calls(meter.read, 30, gap),
            }
        )
    me = psutil.Process()
    out["primitives"] = {
        "psutil.net_io_counters(pernic=True)": _time_calls(
            lambda: psutil.net_io_counters(pernic=True, nowrap=False), 30, 0.01
        ),
        "psutil.Process().children(recursive=True)": _time_calls(lambda: me.children(recursive=True), 30, 0.01),
        "psutil.Process().memory_info()": _time_calls(me.memory_info, 30, 0.01),
        "psutil.Process().io_counters()": _time_calls(me.io_counters, 30, 0.01),
        "os.times()": _time_calls(os.times, 30, 0.01),
    }
    out["processes_on_machine"] = len(psutil.pids())
    out["meters"] = meters
    out["unavailable"] = [[u.name, u.reason] for u in found.unavailable]
    # 2. the accumulator's share of a tick: readings of all meters + 30 phase events
    account = CarbonAccount(intensity_from_config(cfg), pue=cfg.pue, price_per_kwh=0.0, currency=cfg.currency)
    acc = RunAccumulator(account)
    readings = [r for m in found.meters for r in m.read()]
    paths = ["data", "forward", "backward", "optimizer"]
    samples, cpus, t_ns, wall = [], [], time.perf_counter_ns(), time.time()
    for i in range(400):
        t1_ns = t_ns + 100_000_000
        events = [(t_ns + k * 3_000_000, paths[k % 4] if k % 2 == 0 else None, k % 2 == 0) for k in range(30)]
        c0, t0 = time.thread_time(), time.perf_counter()
        acc.tick(readings, t_ns, t1_ns, wall, wall + 0.1, events)
        samples.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
        t_ns, wall = t1_ns, wall + 0.1
        if i % 10 == 9:
            acc.take_samples()
    out["accumulator_tick"] = _percentiles(samples, cpus)
    # 3. a ledger flush: the snapshot plus one second of sample rows (10 ticks x devices)
    snapshot = acc.snapshot(40.0, {"samples": 1.0})
    rows = [
        SampleRow(time.time(), r.device, r.kind, 1.0, r.energy_j, r.provenance)
        for _ in range(int(SAMPLE_HZ))
        for r in readings
    ]
    with Ledger(workdir / "flush.db") as ledger:
        ledger.begin_run(
            RunStart(run_id="f" * 32, name="flush-bench", started_at=time.time(), host=platform.node(), pid=os.getpid())
        )
        flush = _time_calls(lambda: ledger.flush("f" * 32, snapshot, rows), 30, 0.02)
    out["ledger_flush"] = {**flush, "rows": len(rows), "phase_totals": len(snapshot.phases)}
    for meter in found.meters:
        meter.close()
    # 4. CPU time used by a live tracker while this (main) thread sleeps
    idle_s = 3.0
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(idle_s)
    base_cpu = (time.process_time() - c0) / (time.perf_counter() - t0)
    with greenai.track("idle-bench", sample_hz=SAMPLE_HZ, ledger=str(workdir / "idle.db"), intensity=COUNTRY):
        time.sleep(0.5)
        c0, t0, s0 = time.process_time(), time.perf_counter(), thread_cpu_s("greenai-sampler")
        time.sleep(idle_s)
        s1 = thread_cpu_s("greenai-sampler")
        elapsed = time.perf_counter() - t0
        greenai_cpu = (time.process_time() - c0) / elapsed
    out["idle_cpu_ms_per_s"] = {"nothing": base_cpu * 1000, "greenai": greenai_cpu * 1000}
    if s0 is not None and s1 is not None:
        out["idle_sampler_thread_ms_per_s"] = (s1 - s0) * 1000 / elapsed
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        return out
    tracker = OfflineEmissionsTracker(
        project_name="idle-bench", country_iso_code=COUNTRY, save_to_file=False, log_level="error"
    )
    tracker.start()
    time.sleep(0.5)
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(idle_s)
    cc_cpu = (time.process_time() - c0) / (time.perf_counter() - t0)
    tracker.stop()
    out["idle_cpu_ms_per_s"]["codecarbon"] = cc_cpu * 1000
    return out


# --------------------------------------------------------------------------------------
# driver side
# --------------------------------------------------------------------------------------


def _worker_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    return env


def wait_for_quiet(threshold_cores: float, max_wait_s: float) -> float:
    """Wait (up to max_wait_s) until other processes keep fewer than `threshold_cores` busy,
    judged over 1 s windows; return the seconds waited. On a shared machine this keeps
    trials out of other people's bursts; it cannot keep bursts out of a running trial."""
    waited, t0 = 0.0, time.perf_counter()
    while True:
        (b0, _), w0 = cpu_jiffies(), time.perf_counter()
        time.sleep(1.0)
        (b1, _), w1 = cpu_jiffies(), time.perf_counter()
        busy = (b1 - b0) / CLK_TCK / (w1 - w0)
        waited = time.perf_counter() - t0
        if busy < threshold_cores or waited >= max_wait_s:
            return waited


def run_worker(args: list[str], threads: int, timeout_s: float) -> dict[str, Any]:
    """Run this script as a worker in a fresh process, in a fresh temp dir (so no
    greenai.toml or .codecarbon.config of the caller applies); parse its last stdout line."""
    with tempfile.TemporaryDirectory(prefix="greenai-bench-") as tmp:
        proc = subprocess.run(  # noqa: PLW1510 (the return code is checked below)
            [sys.executable, str(SCRIPT), *args, "--workdir", tmp, "--threads", str(threads)],
            cwd=tmp,
            env=_worker_env(threads),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def codecarbon_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("codecarbon")
    except PackageNotFoundError:
        return None


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    import torch

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "greenai": version("greenai"),
        "codecarbon": codecarbon_version() or "not installed",
    }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def drive(args: argparse.Namespace) -> dict[str, Any]:
    variants = [v for v in args.variants.split(",") if v]
    notes: list[str] = []
    if "codecarbon" in variants and codecarbon_version() is None:
        variants.remove("codecarbon")
        notes.append(
            "CodeCarbon is not installed, so its variant was skipped "
            "(`make bench` installs it through the `bench` extra)."
        )
        log("codecarbon not installed: skipping its variant")
    if variants[0] != "baseline":
        raise SystemExit("the first variant must be baseline")
    timeout = max(120.0, args.seconds * 6)
    if args.quiet_wait > 0:
        wait_for_quiet(0.25, args.quiet_wait)
    cal = run_worker(["--worker", "calibrate", "--seconds", str(args.calibrate_seconds)], args.threads, timeout)
    steps = max(20, round(cal["steps_per_s"] * args.seconds))
    log(
        f"calibrated: {cal['steps_per_s']:.1f} steps/s untracked ({cal['how']}) -> {steps} steps "
        f"per trial (~{args.seconds:g} s)"
    )
    trials: list[dict[str, dict[str, Any]]] = []
    orders: list[str] = []
    waited_total = 0.0
    for trial in range(args.trials):
        k = trial % len(variants)
        order = variants[k:] + variants[:k]
        results: dict[str, dict[str, Any]] = {}
        for variant in order:
            if args.quiet_wait > 0 and waited_total < args.quiet_budget:
                waited = wait_for_quiet(0.25, min(args.quiet_wait, args.quiet_budget - waited_total))
                waited_total += waited
                if waited > 1.5:
                    log(f"  waited {waited:.0f} s for the machine to quieten")
            results[variant] = run_worker(["--worker", variant, "--steps", str(steps)], args.threads, timeout)
        trials.append(results)
        orders.append("".join(v[0].upper() for v in order))
        log(
            f"trial {trial + 1}/{args.trials} ({orders[-1]}): "
            + ", ".join(
                f"{v} {results[v]['steps_per_s']:.2f} (others {results[v]['foreign_cores']:.2f})" for v in variants
            )
        )
    log(f"phase-boundary microbenchmark ({args.phase_iterations} x {args.phase_repeats})")
    phase = run_worker(
        ["--worker", "phase", "--iterations", str(args.phase_iterations), "--repeats", str(args.phase_repeats)],
        args.threads,
        600,
    )
    paired = None
    if "greenai" in variants and args.pairs > 0:
        log(f"in-process paired blocks ({args.pairs} pairs)")
        if args.quiet_wait > 0:
            wait_for_quiet(0.25, args.quiet_wait)
        paired = run_worker(
            ["--worker", "paired", "--repeats", str(args.pairs), "--seconds", str(args.block_seconds)],
            args.threads,
            900,
        )
    costs = None
    if not args.no_costs:
        log("sampler costs")
        if args.quiet_wait > 0:
            wait_for_quiet(0.25, args.quiet_wait)
        costs = run_worker(["--worker", "costs"], args.threads, 300)
    return {
        "calibration": cal,
        "steps": steps,
        "variants": variants,
        "trials": trials,
        "orders": orders,
        "quiet_waited_s": waited_total,
        "phase": phase,
        "costs": costs,
        "paired": paired,
        "notes": notes,
    }


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


MIN_PAIRS = 4  # the quiet-window estimate is used for the verdict when it has this many pairs


def summarize(data: dict[str, Any], key: str = "steps_per_s") -> dict[str, dict[str, Any]]:
    """Per variant: median throughput and overhead = 1 - median of pairwise (same-trial)
    ratios to the baseline, over the trials where both runs have a value for `key`."""
    out: dict[str, dict[str, Any]] = {}
    for v in data["variants"]:
        pairs = [
            (t[v][key], t["baseline"][key])
            for t in data["trials"]
            if t[v].get(key) is not None and t["baseline"].get(key) is not None
        ]
        if not pairs:
            out[v] = {"pairs": 0}
            continue
        sps, base = [p[0] for p in pairs], [p[1] for p in pairs]
        ratios = [x / y for x, y in pairs]
        out[v] = {
            "pairs": len(pairs),
            "median_sps": statistics.median(sps),
            "overhead_pairwise": 1 - statistics.median(ratios),
            "overhead_of_medians": 1 - statistics.median(sps) / statistics.median(base),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "start_s": statistics.median(t[v]["start_s"] for t in data["trials"]),
            "stop_s": statistics.median(t[v]["stop_s"] for t in data["trials"]),
        }
    return out


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval for a median: [X_(i+1), X_(n-i)] covers it
    with probability 1 - 2 P(B <= i), B ~ Binomial(n, 1/2); the narrowest such interval
    reaching `confidence`. Returns (low, high, achieved confidence); when even (min, max)
    falls short (n < 6 for 95 %), returns (min, max) and its lower confidence."""
    from math import comb

    v, n = sorted(values), len(values)
    cover = lambda i: 1 - 2 * sum(comb(n, k) for k in range(i + 1)) / 2**n
    i = 0
    while i + 1 < n - 1 - (i + 1) and cover(i + 1) >= confidence:
        i += 1
    return v[i], v[n - 1 - i], cover(i)


def _pct(x: float) -> str:
    return f"{x * 100:+.2f} %"


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


LABELS = {
    "baseline": "baseline (untracked)",
    "greenai": f"greenai, {SAMPLE_HZ:g} Hz, ledger on",
    "codecarbon": "CodeCarbon OfflineEmissionsTracker",
}


def render(data: dict[str, Any], info: dict[str, str], command: str, date: str) -> str:
    whole = summarize(data, "steps_per_s")
    quiet = summarize(data, "quiet_steps_per_s")
    trials, steps, variants = data["trials"], data["steps"], data["variants"]
    n = len(trials)
    step_ms = 1000.0 / data["calibration"]["steps_per_s"]
    trial_s = steps / data["calibration"]["steps_per_s"]
    L: list[str] = []
    add = L.append
    add("## Tracking overhead")
    add("")
    add(
        f"Measured {date} by `benchmarks/overhead.py` on {info['cpu']} ({info['cores']} logical "
        f"cores), {info['os']}; Python {info['python']}, torch {info['torch']}, greenai "
        f"{info['greenai']}, CodeCarbon {info['codecarbon']}."
    )
    add("")
    add(f"Command: `{command}`")
    add("")
    add(
        f"**Workload.** A small CNN (2 conv + 2 linear layers) trained with SGD + momentum on "
        f"synthetic CIFAR-sized images (3x32x32, batch {BATCH}, {DATASET} images in memory), "
        f"torch threads = {data['threads']}. Each step marks 4 phases (data, forward, backward, "
        f"optimizer) and adds 2 counters; in the untracked and CodeCarbon variants the phases "
        f"are `contextlib.nullcontext()` and the counters a no-op, so only tracking differs. "
        f"{steps} steps per trial (calibrated once at start-up, {data['calibration']['how']}: "
        f"{step_ms:.1f} ms per step untracked, ~{trial_s:.1f} s per trial). {n} trials; in each, the variants run in a "
        f"rotated order (BGC, GCB, CBG, ...), each in a fresh process. Throughput is timed over "
        f"the loop; the trackers' start and stop are timed apart."
    )
    add("")
    add(
        f"**Two estimates.** This machine is shared with other work that comes in bursts, so "
        f"each run also records its throughput per ~{WINDOW_S:g} s window (10 sampler ticks and "
        f"one ledger flush each) together with the cores other processes kept busy in that "
        f"window (machine busy time from /proc/stat minus the run's own CPU time). *Whole loop* "
        f"is steps / loop time. *Quiet windows* is the median over the windows in which other "
        f"processes kept fewer than {QUIET_CORES:g} cores busy (a run needs at least "
        f"{MIN_QUIET_WINDOWS} such windows to count). Overhead = 1 - median over trials of "
        f"(variant / baseline of the same trial), positive = slower than untracked."
    )
    add("")
    add(
        "| variant | estimate | pairs | median steps/s | overhead (pairwise) | pairwise ratio min ... max "
        "| overhead (ratio of medians) |"
    )
    add("|---|---|---:|---:|---:|---:|---:|")
    for v in variants:
        for name, summ in (("whole loop", whole), ("quiet windows", quiet)):
            r = summ[v]
            if not r["pairs"]:
                add(f"| {LABELS.get(v, v)} | {name} | 0 | - | - | - | - |")
            elif v == "baseline":
                add(f"| {LABELS[v]} | {name} | {r['pairs']} | {r['median_sps']:.2f} | - | - | - |")
            else:
                add(
                    f"| {LABELS.get(v, v)} | {name} | {r['pairs']} | {r['median_sps']:.2f} | "
                    f"{_pct(r['overhead_pairwise'])} | {r['ratio_min']:.4f} ... {r['ratio_max']:.4f} | "
                    f"{_pct(r['overhead_of_medians'])} |"
                )
    add("")
    add(
        "Start and stop of the trackers (median seconds, outside the timed loop): "
        + "; ".join(f"{v} {whole[v]['start_s']:.3f} / {whole[v]['stop_s']:.3f}" for v in variants if v != "baseline")
        + "."
    )
    add("")
    add(
        "Per trial: steps/s over the whole loop (cores kept busy by other processes meanwhile) "
        "/ steps/s over quiet windows [quiet windows of all windows]:"
    )
    add("")
    add("| trial | order | " + " | ".join(variants) + " |")
    add("|---:|---|" + "---|" * len(variants))

    def cell(r: dict[str, Any]) -> str:
        q = r.get("quiet_steps_per_s")
        return (
            f"{r['steps_per_s']:.2f} ({r.get('foreign_cores', 0.0):.2f}) / "
            f"{'-' if q is None else f'{q:.2f}'} [{r.get('quiet_windows', 0)}/{r.get('windows', 0)}]"
        )

    for i, t in enumerate(trials, 1):
        add(f"| {i} | {data['orders'][i - 1]} | " + " | ".join(cell(t[v]) for v in variants) + " |")
    add("")
    # targets
    phase = data["phase"]
    med = {k: statistics.median(v) for k, v in phase["us"].items()}
    phase_us = med['with run.phase("x")']
    add("**Targets**")
    add("")
    if "greenai" in variants:
        use_quiet = quiet["greenai"]["pairs"] >= MIN_PAIRS
        g = quiet["greenai"] if use_quiet else whole["greenai"]
        which = (
            "quiet-window estimate"
            if use_quiet
            else f"whole-loop estimate (only {quiet['greenai']['pairs']} trials had enough quiet windows in both runs)"
        )
        spread = (g["ratio_max"] - g["ratio_min"]) * 100
        point = "PASS" if g["overhead_pairwise"] <= TARGET_OVERHEAD else "FAIL"
        noisy = spread > TARGET_OVERHEAD * 100 * 2
        if not use_quiet:
            verdict = f"**INCONCLUSIVE** (the machine was too busy with other work; point estimate: {point})"
        elif noisy:
            verdict = f"**NOT RESOLVED** (point estimate: {point}, but within noise)"
        else:
            verdict = f"**{point}**"
        add(
            f"- greenai overhead at {SAMPLE_HZ:g} Hz <= 0.5 %, fresh processes: {verdict}: "
            f"{_pct(g['overhead_pairwise'])}, {which}, median of {g['pairs']} pairwise ratios; "
            f"the ratios span {g['ratio_min']:.4f} ... {g['ratio_max']:.4f} ({spread:.1f} "
            f"percentage points" + (", far wider than the 0.5 % to be resolved)." if noisy else ").")
        )
        paired = data.get("paired")
        if paired and paired["pairs"]:
            rows = paired["pairs"]
            quiet_r = [r["on"] / r["off"] for r in rows if r["foreign"] < QUIET_CORES]
            best = quiet_r if len(quiet_r) >= 6 else [r["on"] / r["off"] for r in rows]
            blo, bhi, conf = median_ci(best)
            ov = 1 - statistics.median(best)
            if 1 - blo <= TARGET_OVERHEAD:
                pv = "**PASS**"
            elif 1 - bhi > TARGET_OVERHEAD:
                pv = "**FAIL**"
            else:
                pv = f"**NOT RESOLVED** (point estimate: {'PASS' if ov <= TARGET_OVERHEAD else 'FAIL'})"
            add(
                f"- the same, greenai on/off blocks in one process: {pv}: {_pct(ov)}, median of "
                f"{len(best)} {'quiet ' if best is quiet_r else ''}pairs, {conf * 100:.0f} % "
                f"confidence interval {_pct(1 - bhi)} ... {_pct(1 - blo)}."
            )
        live = [t["greenai"]["greenai"].get("sampler_cpu_ms_per_s") for t in trials]
        live = [x for x in live if x is not None]
        if live:
            cores = int(info["cores"]) if info["cores"].isdigit() else 1
            floor = statistics.median(live) / (10 * cores) / 100
            marks = 4 * med['with run.phase("x")'] / (step_ms * 1000)
            low, high = floor + marks, 2 * floor + marks
            cv = "**PASS**" if high <= TARGET_OVERHEAD else "**FAIL**" if low > TARGET_OVERHEAD else "**BORDERLINE**"
            add(
                f"- CPU accounting (not a throughput measurement, but nearly free of noise): {cv}. "
                f"During the trials greenai's sampler thread used {statistics.median(live):.2f} ms of "
                f"CPU per second (median), {floor * 100:.2f} % of the {cores} cores the loop keeps "
                f"busy, and marking 4 phases costs {marks * 100:.3f} % of a step; so the expected "
                f"throughput loss is {low * 100:.2f} % (the sampler only displaces training work) "
                f"to {high * 100:.2f} % (a preempted torch thread also stalls the others at the "
                f"next barrier)."
            )
    add(
        f"- one phase boundary (enter + exit) <= {TARGET_PHASE_US:g} us: "
        f"{_verdict(phase_us <= TARGET_PHASE_US)} ({phase_us:.2f} us, median of "
        f"{phase['repeats']} x {phase['iterations']:,} iterations, loop overhead included)."
    )
    add("")
    if "greenai" in variants:
        base_q = [
            t["baseline"]["quiet_steps_per_s"] for t in trials if t["baseline"].get("quiet_steps_per_s") is not None
        ]
        base_w = [t["baseline"]["steps_per_s"] for t in trials]
        text = (
            f"**Noise.** The untracked baseline alone varies by "
            f"{(max(base_w) / min(base_w) - 1) * 100:.1f} % between its slowest and fastest "
            f"trial over the whole loop"
        )
        if len(base_q) >= 2:
            text += f", {(max(base_q) / min(base_q) - 1) * 100:.1f} % over quiet windows"
        use_quiet = quiet["greenai"]["pairs"] >= MIN_PAIRS
        g = quiet["greenai"] if use_quiet else whole["greenai"]
        if not use_quiet:
            text += (
                ". Too few trials had quiet windows in both runs to separate greenai's cost "
                "from other work on the machine."
            )
        elif g["ratio_min"] <= 1.0 <= g["ratio_max"]:
            text += (
                ". greenai's pairwise ratios bracket 1.0: its overhead is not "
                "distinguishable from run-to-run noise at this number of trials, and the "
                "median is the best single figure."
            )
        else:
            text += (
                f". greenai's pairwise ratios lie entirely "
                f"{'below' if g['ratio_max'] < 1 else 'above'} 1.0 (a consistent difference)."
            )
        text += (
            f" Expected cost of phase marking alone: 4 boundaries x {phase_us:.2f} us = "
            f"{4 * phase_us:.1f} us per {step_ms:.1f} ms step = "
            f"{4 * phase_us / (step_ms * 10):.3f} %."
        )
        add(text)
        add("")
    paired = data.get("paired")
    if paired:
        rows = paired["pairs"]
        ratios = [r["on"] / r["off"] for r in rows]
        quiet_r = [r["on"] / r["off"] for r in rows if r["foreign"] < QUIET_CORES]
        lo, hi, conf = median_ci(ratios)
        add(
            f"**greenai on/off in one process.** To take each process's own speed out of the "
            f"comparison, one more process alternates untracked blocks and greenai-tracked blocks "
            f"of {paired['steps_per_block']} steps (~{paired['steps_per_block'] / data['calibration']['steps_per_s']:.1f} s) each, {len(rows)} pairs in "
            f"ABBA order, a fresh tracker (10 Hz, phases, counters, ledger) per tracked block, its "
            f"start and stop outside the timed block."
        )
        add("")
        add("| pairs | overhead: 1 - median(on/off) | 95 % CI of the overhead | on/off ratio min ... max |")
        add("|---|---:|---:|---:|")
        add(
            f"| all {len(ratios)} | {_pct(1 - statistics.median(ratios))} | {_pct(1 - hi)} ... "
            f"{_pct(1 - lo)} ({conf * 100:.0f} %) | {min(ratios):.4f} ... {max(ratios):.4f} |"
        )
        if 3 <= len(quiet_r) < len(ratios):
            qlo, qhi, qconf = median_ci(quiet_r)
            add(
                f"| {len(quiet_r)} quiet (other processes < {QUIET_CORES:g} cores in both blocks) | "
                f"{_pct(1 - statistics.median(quiet_r))} | {_pct(1 - qhi)} ... {_pct(1 - qlo)} "
                f"({qconf * 100:.0f} %) | {min(quiet_r):.4f} ... {max(quiet_r):.4f} |"
            )
        add("")
    # liveness: greenai energy per trial
    if "greenai" in variants:
        add("**greenai was live.** Energy it recorded per trial (IT energy, before PUE):")
        add("")
        add("| trial | energy (J) | band | provenance | per device (J) | J per sample | sampler thread CPU (ms/s) |")
        add("|---:|---:|---:|---|---|---:|---:|")
        for i, t in enumerate(trials, 1):
            g = t["greenai"]["greenai"]
            dev = ", ".join(f"{d} {e:.1f} ({p})" for d, p, e in g["devices"])
            per = g["energy_j"] / g["samples_counted"] if g["samples_counted"] else float("nan")
            sam = g.get("sampler_cpu_ms_per_s")
            add(
                f"| {i} | {g['energy_j']:.1f} | ±{g['rel_uncertainty'] * 100:.0f} % | "
                f"{g['provenance']} | {dev} | {per:.4f} | {'-' if sam is None else f'{sam:.2f}'} |"
            )
        g0 = trials[0]["greenai"]["greenai"]
        add("")
        add(
            f"Carbon source: {g0['carbon_source']}. Phase shares in trial 1: "
            + ", ".join(f"{p} {e:.1f} J" for p, e in g0["phase_energy_j"].items())
            + f". Ledger file after the run: {g0['ledger_bytes'] / 1024:.0f} KiB."
        )
        add("")
    if "codecarbon" in variants:
        c = trials[0]["codecarbon"]["codecarbon"]
        energies = [t["codecarbon"]["codecarbon"]["energy_j"] for t in trials]
        add(
            f"**CodeCarbon** ran with its default measure interval, "
            f"`measure_power_secs` = {c['measure_power_secs']:g} s (so within a ~{trial_s:.0f} s "
            f"loop it measures energy only at start and stop; a second timer thread samples "
            f"CPU load every 1 s), tracking mode `{c['tracking_mode']}`, CPU power "
            f"{c['cpu_power_w']:.1f} W "
            f"(CPU seen as '{c['cpu_model']}'); it reported {statistics.median(energies):.1f} J "
            f"per trial (median). Its start-up (hardware detection) is in the start column."
        )
        add("")
    for note in data["notes"]:
        add(f"_{note}_")
        add("")
    # phase micro-benchmark
    add(
        f"**Phase boundary** ({phase['repeats']} repeats x {phase['iterations']:,} iterations "
        f"in a tight loop, a tracker sampling at {SAMPLE_HZ:g} Hz with its ledger on):"
    )
    add("")
    add(
        "| operation per iteration | wall median (us) | wall min ... max (us) | wall minus empty loop (us) | thread CPU median (us) |"
    )
    add("|---|---:|---:|---:|---:|")
    empty = med["empty loop"]
    for k, v in phase["us"].items():
        net = "-" if k == "empty loop" else f"{med[k] - empty:.3f}"
        cpu = phase.get("cpu_us", {}).get(k)
        add(
            f"| `{k}` | {med[k]:.3f} | {min(v):.3f} ... {max(v):.3f} | {net} | "
            f"{'-' if not cpu else f'{statistics.median(cpu):.3f}'} |"
        )
    add("")
    add(
        "Wall time includes waiting for the GIL while the sampler thread runs (the sampler's "
        "work grows with the number of phase events it apportions: a tight loop like this one "
        "makes tens of thousands per 100 ms tick, a training step a handful); thread CPU time "
        "is the calling thread's own cost."
    )
    add("")
    costs = data.get("costs")
    if costs:
        cores = int(info["cores"]) if info["cores"].isdigit() else 1
        add(
            "**Where greenai's sampler time goes** (this machine, measured in isolation with no "
            "training running; CPU is the calling thread's CPU time, immune to preemption by "
            "other processes; the mean includes the process scope's once-a-second refreshes; "
            f"the last column is the mean CPU cost times how often the sampler pays it at "
            f"{SAMPLE_HZ:g} Hz with a 1 s flush):"
        )
        add("")
        add(
            "| part | CPU median (us) | CPU mean (us) | wall median (us) | wall max (us) | CPU per second of run (ms/s) |"
        )
        add("|---|---:|---:|---:|---:|---:|")
        budget = 0.0

        def row(label: str, r: dict[str, float], per_s: float | None) -> None:
            nonlocal budget
            cost = "-" if per_s is None else f"{r['cpu_mean_us'] * per_s / 1000:.2f}"
            if per_s is not None:
                budget += r["cpu_mean_us"] * per_s / 1000
            add(
                f"| {label} | {r['cpu_median_us']:.0f} | {r['cpu_mean_us']:.0f} | "
                f"{r['median_us']:.0f} | {r['max_us']:.0f} | {cost} |"
            )

        for m in costs["meters"]:
            row(f"`{m['meter']}` read() ({m['provenance']})", m, SAMPLE_HZ)
        row("accumulator tick (all devices, 30 phase events)", costs["accumulator_tick"], SAMPLE_HZ)
        f = costs["ledger_flush"]
        row(
            f"ledger flush ({f['rows']} sample rows + snapshot with {f['phase_totals']} "
            "phase totals, one SQLite transaction)",
            f,
            1.0,
        )
        add(f"| **sum of the parts** | | | | | **{budget:.2f}** |")
        for name, r in costs.get("primitives", {}).items():
            row(f"_for reference_: `{name}`", r, None)
        add("")
        idle = costs["idle_cpu_ms_per_s"]
        sampler_idle = costs.get("idle_sampler_thread_ms_per_s")
        live = [t["greenai"]["greenai"].get("sampler_cpu_ms_per_s") for t in data["trials"] if "greenai" in t]
        live = [x for x in live if x is not None]
        text = "Measured as a whole, the CPU time of the process while its main thread sleeps: " + ", ".join(
            f"{k} {v:.2f} ms/s" for k, v in idle.items()
        )
        if sampler_idle is not None:
            text += f"; greenai's sampler thread alone {sampler_idle:.2f} ms/s"
        if live:
            med_live = statistics.median(live)
            text += (
                f". During the training trials greenai's sampler thread used "
                f"{med_live:.2f} ms/s (median; {min(live):.2f} ... {max(live):.2f}), i.e. "
                f"{med_live / (10 * cores):.2f} % of this machine's {cores} cores: a floor "
                f"for the throughput a loop that keeps every core busy loses to it"
            )
        add(
            text + f". (ms of CPU per second of wall time; 10 ms/s = 1 % of one core.) "
            f"{costs.get('processes_on_machine', '?')} processes were running on the machine."
        )
        if costs["unavailable"]:
            add("")
            add("Meters not available here: " + "; ".join(f"{n}: {r}" for n, r in costs["unavailable"]) + ".")
        add("")
    return "\n".join(L).rstrip() + "\n"


INTRO = """# Benchmarks

Every figure here was measured by the named script on the named machine; rerun with the
command shown to check it on yours. Figures are regenerated in place by the scripts (the
sections between the HTML comment markers), never edited by hand.

"""


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else INTRO + START_MARK + "\n" + END_MARK + "\n"
    if START_MARK not in text or END_MARK not in text:
        text = text.rstrip() + "\n\n" + START_MARK + "\n" + END_MARK + "\n"
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + START_MARK + "\n" + section + END_MARK + tail)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=None, help="interleaved trials (default 7; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="short smoke run: 2 short trials")
    p.add_argument("--seconds", type=float, default=None, help="target seconds per trial (default 8; 1.5 with --quick)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, baseline first")
    p.add_argument("--write", type=Path, metavar="FILE", help="update the overhead section of FILE")
    p.add_argument("--json", type=Path, metavar="FILE", help="also save the raw measurements")
    p.add_argument(
        "--render", type=Path, metavar="FILE", help="measure nothing: re-render the report of a run saved with --json"
    )
    p.add_argument("--no-costs", action="store_true", help="skip the sampler cost breakdown")
    p.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="greenai on/off block pairs in one process (default 16; 4 with --quick; 0: skip)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        metavar="S",
        help="before each run wait up to S s for other processes to go idle (0: never)",
    )
    p.add_argument(
        "--quiet-budget", type=float, default=60.0, metavar="S", help="at most S s of such waiting in all (default 60)"
    )
    # worker-side arguments (internal)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="greenai-bench-"))
        if args.worker == "calibrate":
            res = worker_calibrate(args.threads, args.seconds or 2.0)
        elif args.worker == "phase":
            res = worker_phase(args.iterations or 200_000, args.repeats or 7, workdir)
        elif args.worker == "paired":
            res = worker_paired(args.repeats or 20, args.seconds or 2.0, args.threads, workdir)
        elif args.worker == "costs":
            res = worker_costs(workdir, args.threads)
        else:
            res = worker_trial(args.worker, args.steps, args.threads, workdir)
        print(json.dumps(res))
        return 0

    if args.render:
        saved = json.loads(args.render.read_text())
        info, command, date = saved.pop("machine"), saved.pop("command"), saved.pop("date")
        section = render(saved, info, command, date)
        print(section)
        if args.write:
            write_section(args.write, section)
            log(f"updated {args.write} from {args.render}")
        return 0

    args.trials = args.trials or (2 if args.quick else 7)
    args.seconds = args.seconds or (1.5 if args.quick else 8.0)
    args.calibrate_seconds = 3.0 if args.quick else 5.0
    args.phase_iterations = 20_000 if args.quick else 200_000
    args.phase_repeats = 3 if args.quick else 7
    args.pairs = args.pairs if args.pairs is not None else (4 if args.quick else 16)
    args.block_seconds = 1.0 if args.quick else 2.0
    if args.write and args.quick:
        log("note: writing a --quick run's figures")
    command = " ".join(
        ["python", "benchmarks/overhead.py", *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))]
    )
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    data = drive(args)
    data["threads"] = args.threads
    info = machine()
    log(f"done in {time.perf_counter() - t0:.0f} s")
    section = render(data, info, command, date)
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"date": date, "machine": info, "command": command, **data}, indent=1))
    if args.write:
        write_section(args.write, section)
        log(f"updated {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
