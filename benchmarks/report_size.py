"""Size and generation time of `greenai report` for a run with 1,000,000 samples per device.

Writes a ledger holding one run of two devices (cpu:0, gpu:0) sampled at 10 Hz for 100,000 s
(27.8 h): 1,000,000 samples each, with phases alternating every 60 s and a forecast every
10 s, as the tracker would have written them; then times `greenai.report(...)` (reading the
ledger, downsampling, drawing, writing) and, apart, the ledger's read of the run's series
(`Ledger.power_series`), and reports the file's size. Target: <= 5 MB. Each round first waits up
to --quiet-wait seconds for a quiet machine; the co-load during each round (CPUs other processes
kept busy, steal included: greenai's own reader) is recorded.

    python benchmarks/report_size.py [--samples 1000000] [--repeats 3] [--write]
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import _harness
from greenai.ledger.records import DeviceTotal, PhaseTotal, RunSnapshot, RunStart, RunStatus, SampleRow
from greenai.ledger.run_forecasts import ForecastRow
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.units import J_PER_KWH

KEY = "report-size"
HZ = 10.0
TARGET_BYTES = 5_000_000
# Before the ledger read the series downsampled (commit 062ba9d, the same command on this machine):
# `Ledger.samples()` built one record per row, then the report downsampled in numpy.
BEFORE = {"commit": "062ba9d", "bytes": 4_978_348, "median_s": 14.81, "min_s": 14.78, "max_s": 31.72}


def build(path: Path, samples: int) -> str:
    """One completed run with `samples` rows per device, written in flush-sized batches."""
    run_id = uuid.uuid4().hex
    t0 = time.time() - samples / HZ - 60
    env = {
        "config": {"intensity": "FR", "pue": "1.2"},
        "meters": [
            {
                "name": "simulated",
                "devices": ["gpu:0"],
                "provenance": "simulated",
                "detail": "benchmark",
                "max_power_w": {"gpu:0": {"watts": 300.0, "source": "simulated trace maximum"}},
            },
            {
                "name": "simulated",
                "devices": ["cpu:0"],
                "provenance": "simulated",
                "detail": "benchmark",
                "max_power_w": {"cpu:0": {"watts": 80.0, "source": "simulated trace maximum"}},
            },
        ],
        "plan": {"planned_steps": samples},
    }
    energy = {"gpu:0": 0.0, "cpu:0": 0.0}
    with Ledger(path) as store:
        store.begin_run(RunStart(run_id, "million-samples", t0, "bench", 1, {"kind": "benchmark"}, env))
        batch: list[SampleRow] = []
        dt = 1 / HZ
        for i in range(samples):
            t = t0 + (i + 1) * dt
            phase = "train/step" if (i // 600) % 5 else "eval"
            gpu_w = 250 + 50 * math.sin(i / 3000) + (40 if phase == "eval" else 0) + (120 if i % 97_001 == 0 else 0)
            cpu_w = 60 + 10 * math.sin(i / 700)
            for device, kind, watts in (("gpu:0", DeviceKind.GPU, gpu_w), ("cpu:0", DeviceKind.CPU, cpu_w)):
                energy[device] += watts * dt
                batch.append(SampleRow(t, device, kind, watts, energy[device], Provenance.SIMULATED, phase))
            if len(batch) >= 20_000 or i == samples - 1:
                snap = snapshot(energy, (i + 1) * dt)
                progress = (i + 1) / samples
                forecast = None
                if progress > 0.05 and i % 100 == 0:
                    total = sum(energy.values()) / progress
                    forecast = ForecastRow(
                        (i + 1) * dt, progress, total, total * 0.9, total * 1.1, samples * dt, 0.0, 0.0, "simulated"
                    )
                store.flush(run_id, snap, batch, forecast)
                batch = []
        store.end_run(run_id, RunStatus.COMPLETED, t0 + samples * dt, snapshot(energy, samples * dt))
    return run_id


def snapshot(energy: dict[str, float], duration: float) -> RunSnapshot:
    total = sum(energy.values())
    return RunSnapshot(
        duration_s=duration,
        energy_j=total,
        rel_uncertainty=0.0,
        provenance=Provenance.SIMULATED,
        facility_energy_j=total * 1.2,
        carbon_g=total * 1.2 / J_PER_KWH * 56.0,
        cost=0.0,
        currency="EUR",
        devices=tuple(
            DeviceTotal(d, DeviceKind(d.split(":")[0]), e, Provenance.SIMULATED, 0.0) for d, e in energy.items()
        ),
        phases=(
            PhaseTotal("train/step", "gpu:0", total * 0.6, duration * 0.8, 1),
            PhaseTotal("eval", "gpu:0", total * 0.2, duration * 0.2, 1),
            PhaseTotal("train/step", "cpu:0", total * 0.15, duration * 0.8, 1),
            PhaseTotal("eval", "cpu:0", total * 0.05, duration * 0.2, 1),
        ),
        counters={"samples": 32.0 * duration * HZ, "steps": duration * HZ},
        carbon_source="country FRA: 56.0 gCO2e/kWh (Ember 2023)",
        pue=1.2,
    )


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000, help="samples per device")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=120.0, help="seconds to wait for a quiet machine at most")
    _harness.add_write(ap, KEY)
    args = ap.parse_args(argv)
    import greenai

    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.db"
        start = time.perf_counter()
        run_id = build(ledger, args.samples)
        _harness.log(f"ledger with {2 * args.samples:,} sample rows written in {time.perf_counter() - start:.0f} s")
        times, loads, reads, read_cpus, size = [], [], [], [], 0
        for r in range(args.repeats):
            _harness.wait_for_quiet(args.quiet_wait)
            out = Path(tmp) / f"report-{r}.html"
            before = _harness.cpu_sample()
            start = time.perf_counter()
            greenai.report(run_id, ledger=ledger, output=out)
            times.append(time.perf_counter() - start)
            with Ledger(ledger, read_only=True) as store:
                start, cpu = time.perf_counter(), time.process_time()
                series = store.power_series(run_id, 1000)
                reads.append(time.perf_counter() - start)
                read_cpus.append(time.process_time() - cpu)
            loads.append(_harness.cpu_sample().others_cores(before))
            size = out.stat().st_size
            _harness.log(
                f"round {r + 1}: {times[-1]:.2f} s, {size:,} bytes; series read {reads[-1]:.3f} s; "
                f"co-load {loads[-1]:.2f}"
            )
        import plotly.offline

        js = len(plotly.offline.get_plotlyjs().encode())
    verdict = "met" if size <= TARGET_BYTES else "NOT met"
    b = BEFORE
    points = sum(len(d.t) for d in series.devices)
    section = (
        f"## Report size (issue 18)\n\n"
        f"`{_harness.command(__file__, argv)}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs): a run of 2 devices "
        f"x {args.samples:,} samples (10 Hz for {args.samples / HZ / 3600:.1f} h), written to an SQLite ledger as the "
        f"tracker writes one, then `greenai.report(run_id)` (read the ledger, draw, write). Co-load during the rounds "
        f"(CPUs other processes kept busy, steal included): median {statistics.median(loads):.2f} of "
        f"{os.cpu_count()} (per round: {', '.join(f'{x:.2f}' for x in loads)}).\n\n"
        f"| | now | before ({b['commit']}) |\n|---|---|---|\n"
        f"| report file | {size:,} bytes ({size / 1e6:.2f} MB; target <= 5 MB: {verdict}) | {b['bytes']:,} bytes |\n"
        f"| of which plotly.js (inlined once) | {js:,} bytes | |\n"
        f"| the rest: data, tables, styles | {size - js:,} bytes | {b['bytes'] - js:,} bytes |\n"
        f"| generation time, median of {len(times)} | {statistics.median(times):.2f} s "
        f"(min {min(times):.2f} s, max {max(times):.2f} s) | {b['median_s']:.2f} s (min {b['min_s']:.2f} s, "
        f"max {b['max_s']:.2f} s) |\n"
        f"| of which the ledger's read of the series (`Ledger.power_series`), median | "
        f"{1000 * statistics.median(reads):,.0f} ms ({1000 * statistics.median(read_cpus):,.0f} ms of CPU) | "
        f"`Ledger.samples()`: 7.4 s of 10.3 s at 2 x 300,000 samples (cProfile) |\n\n"
        f"The ledger reads the run downsampled: per device, each of ~1,000 time buckets' first, lowest, highest and "
        f"last sample (M4), aggregated by SQLite from the overview it keeps as samples are inserted (schema v9: "
        f"buckets of 1, 10, 100 and 1000 s per device, kept by a trigger; here {series.source}: {points:,} points for "
        f"{series.rows:,} rows), so its cost follows the chart's buckets, not the run's length; peaks and both ends "
        f"are kept, series go into the file as base64 float32 arrays, and every figure comes from the run's totals. "
        f"The rest of the time is drawing (plotly figures) and writing the file with plotly.js in it. Before, "
        f"`Ledger.samples()` built and checked one record per row and the report downsampled them in numpy.\n"
    )
    print(section)
    if args.write:
        _harness.write_section(args.write, KEY, section)


if __name__ == "__main__":
    main()
