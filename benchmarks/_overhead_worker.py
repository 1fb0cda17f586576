"""The worker side of benchmarks/overhead.py: one measurement in one fresh process, its
result as one JSON line on stdout. Started by overhead.py (never by hand):

    python benchmarks/_overhead_worker.py KIND --threads N --workdir DIR [--steps N] [--seconds S]
                                          [--iterations N] [--repeats N]

KIND: `baseline`, `greenai` or `codecarbon` (a trial of that variant, `--steps` steps),
`calibrate` (untracked steps/s), `paired` (greenai on/off blocks in one process), `phase` (the
phase-boundary micro-benchmark) or `costs` (where the sampler's time goes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import CpuSample, cpu_sample, emit, quantile, rotated

SAMPLE_HZ = 10.0
COUNTRY = "FRA"  # both trackers get the same grid intensity source; no network
VARIANTS = ("baseline", "greenai", "codecarbon")
KINDS = (*VARIANTS, "calibrate", "paired", "phase", "costs")

# The workload: CIFAR-sized images, a small CNN, SGD with momentum.
BATCH = 64
DATASET = 4096
IMAGE = (3, 32, 32)
CLASSES = 10
WARMUP_STEPS = 30

WINDOW_S = 1.0  # throughput is also recorded per ~1 s window (10 sampler ticks, 1 flush)
QUIET_CORES = 0.10  # a window is "quiet" if other processes kept fewer cores than this busy
MIN_QUIET_WINDOWS = 3


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


def _loop(
    step: Callable[..., None], steps: int, phase: Callable[[str], Any], count: Callable[[str, float], None]
) -> tuple[float, dict[str, Any]]:
    """Run `steps` steps; return the seconds taken and the load meanwhile. The load includes,
    per ~1 s window, the steps done and how many cores other processes kept busy meanwhile
    (machine busy time from /proc/stat minus this process's CPU time), so bursts of other
    work on a shared machine can be told apart from the tracker's cost."""
    windows: list[tuple[int, float, float]] = []  # (steps, seconds, foreign cores)
    start = window = cpu_sample()
    t0 = time.perf_counter()
    wt, wn = t0, 0
    for _ in range(steps):
        step(phase, count)
        wn += 1
        now = time.perf_counter()
        if now - wt >= WINDOW_S:
            sample = cpu_sample()
            windows.append((wn, now - wt, _foreign(sample, window)))
            window, wt, wn = sample, now, 0
    elapsed = time.perf_counter() - t0
    end = cpu_sample()
    quiet = [n / dt for n, dt, f in windows if f < QUIET_CORES]
    load = {
        "foreign_cores": _foreign(end, start),
        "steal_cores": end.steal_cores(start),
        "own_cores": end.own_cores(start),
        "windows": len(windows),
        "quiet_windows": len(quiet),
        "quiet_steps_per_s": statistics.median(quiet) if len(quiet) >= MIN_QUIET_WINDOWS else None,
    }
    return elapsed, load


def _foreign(now: CpuSample, since: CpuSample) -> float:
    """Cores other processes kept busy (steal apart: reported as steal_cores)."""
    return now.others_cores(since, steal=False)


def worker_calibrate(threads: int, seconds: float) -> dict[str, Any]:
    """Untracked steps/s: the median of quiet ~1 s windows if there are enough, else the
    fastest window (other work on the machine only ever slows a window down)."""
    _, step = _build(threads)
    _loop(step, WARMUP_STEPS, _no_phase, _no_count)
    rates: list[tuple[float, float]] = []  # (steps/s, foreign cores)
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        before, t0, n = cpu_sample(), time.perf_counter(), 0
        while time.perf_counter() - t0 < min(WINDOW_S, seconds):
            step(_no_phase, _no_count)
            n += 1
        dt = time.perf_counter() - t0
        rates.append((n / dt, _foreign(cpu_sample(), before)))
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
            loop_s, load = _loop(step, steps, _no_phase, _no_count)
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
            loop_s, load = _loop(step, steps, run.phase, run.count)
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
        loop_s, load = _loop(step, steps, _no_phase, _no_count)
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
    out.update(loop_s=loop_s, steps_per_s=steps / loop_s, start_s=t1 - t0, stop_s=t3 - t2, **load)
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
    n = max(5, round(block_s * 10 / _loop(step, 10, _no_phase, _no_count)[0]))
    rows = []
    for i in range(pairs):
        order = rotated(("off", "on"), i)  # ABBA
        res: dict[str, tuple[float, float]] = {}
        for which in order:
            time.sleep(0.2)  # same pause before both kinds of block
            if which == "off":
                dt, load = _loop(step, n, _no_phase, _no_count)
            else:
                with greenai.track(
                    "overhead-paired", sample_hz=SAMPLE_HZ, intensity=COUNTRY, ledger=str(workdir / "ledger.db")
                ) as run:
                    dt, load = _loop(step, n, run.phase, run.count)
            res[which] = (n / dt, load["foreign_cores"])
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
    out = {
        "median_us": statistics.median(values) * 1e6,
        "p90_us": quantile(values, 0.9) * 1e6,
        "max_us": max(values) * 1e6,
    }
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
    from greenai.carbon.resolve import configured_intensity
    from greenai.config import load_config
    from greenai.ledger.records import RunStart, SampleRow
    from greenai.ledger.store import Ledger
    from greenai.meters.discover import discover
    from greenai.meters.process import ProcessScope
    from greenai.tracking.accumulator import RunAccumulator

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
    account = CarbonAccount(configured_intensity(cfg.intensity), pue=cfg.pue, price_per_kwh=0.0, currency=cfg.currency)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--steps", type=int, help="a trial's steps")
    ap.add_argument("--seconds", type=float, help="calibrate: seconds of windows; paired: seconds per block")
    ap.add_argument("--iterations", type=int, default=200_000, help="phase: iterations per repeat")
    ap.add_argument("--repeats", type=int, help="phase: repeats (default 7); paired: pairs (default 20)")
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="greenai-bench-"))
    if args.kind == "calibrate":
        res = worker_calibrate(args.threads, args.seconds or 2.0)
    elif args.kind == "phase":
        res = worker_phase(args.iterations, args.repeats or 7, workdir)
    elif args.kind == "paired":
        res = worker_paired(args.repeats or 20, args.seconds or 2.0, args.threads, workdir)
    elif args.kind == "costs":
        res = worker_costs(workdir, args.threads)
    else:
        if args.steps is None:
            ap.error(f"{args.kind} needs --steps")
        res = worker_trial(args.kind, args.steps, args.threads, workdir)
    emit(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
