"""Size and generation time of `greenai report` for a run with 1,000,000 samples per device.

Writes a ledger holding one run of two devices (cpu:0, gpu:0) sampled at 10 Hz for 100,000 s
(27.8 h): 1,000,000 samples each, with phases alternating every 60 s and a forecast every
10 s, as the tracker would have written them; then times `greenai.report(...)` (reading the
ledger, downsampling, drawing, writing) and reports the file's size. Target: <= 5 MB.

    python benchmarks/report_size.py [--samples 1000000] [--repeats 3] [--write]
"""

from __future__ import annotations

import math
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
    _harness.add_write(ap, KEY)
    args = ap.parse_args(argv)
    import greenai

    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.db"
        start = time.perf_counter()
        run_id = build(ledger, args.samples)
        _harness.log(f"ledger with {2 * args.samples:,} sample rows written in {time.perf_counter() - start:.0f} s")
        times, size = [], 0
        for r in range(args.repeats):
            _harness.wait_for_quiet(30)
            out = Path(tmp) / f"report-{r}.html"
            start = time.perf_counter()
            greenai.report(run_id, ledger=ledger, output=out)
            times.append(time.perf_counter() - start)
            size = out.stat().st_size
            _harness.log(f"round {r + 1}: {times[-1]:.2f} s, {size:,} bytes")
        import plotly.offline

        js = len(plotly.offline.get_plotlyjs().encode())
    verdict = "met" if size <= TARGET_BYTES else "NOT met"
    section = (
        f"## Report size (issue 18)\n\n"
        f"`{_harness.command(__file__, argv)}`: a run of 2 devices x {args.samples:,} samples "
        f"(10 Hz for {args.samples / HZ / 3600:.1f} h), written to an SQLite ledger as the tracker writes one, "
        f"then `greenai.report(run_id)` (read the ledger, downsample, draw, write).\n\n"
        f"| | figure |\n|---|---|\n"
        f"| report file | {size:,} bytes ({size / 1e6:.2f} MB; target <= 5 MB: {verdict}) |\n"
        f"| of which plotly.js (inlined once) | {js:,} bytes |\n"
        f"| the rest: data, tables, styles | {size - js:,} bytes |\n"
        f"| generation time, median of {len(times)} | {statistics.median(times):.2f} s "
        f"(min {min(times):.2f} s, max {max(times):.2f} s) |\n\n"
        f"Each device's 1,000,000 samples are drawn from ~1,000 time buckets, keeping each bucket's "
        f"first, lowest, highest and last sample (M4: `greenai/reports/downsample.py`), so peaks survive; "
        f"series go into the file as base64 float32 arrays. Most of the time is `Ledger.samples()`, "
        f"which builds and checks one record per row (cProfile at 2 x 300,000 samples: 7.4 of 10.3 s).\n"
    )
    print(section)
    if args.write:
        _harness.write_section(args.write, KEY, section)


if __name__ == "__main__":
    main()
