"""What schema v9's overview trigger costs the tracker's flush: `Ledger.flush` timed with the
trigger as v9 made it (every sample row upserts 4 widths x 2 tables), with the finest width
only (1 s buckets: 2 upserts a row; the coarser widths would be derived when read), and with no
trigger at all, interleaved in rounds (order rotated each round), each in a ledger file of its
own (WAL, on the same disk).

A flush is what the sampler writes: `--ticks` ticks of `--devices` devices (at the default
10 Hz and 1 s flush interval, 10 ticks of each device), with the run's totals, devices and
phases replaced; the run grows flush after flush, as a real one does. Reported: the median
flush (its 95 % interval), the cost per sample row, and the trigger's share of the flush.

`--read-seconds N` also times what keeping only the finest width would cost a chart's read: a
run of N seconds of `--devices` devices at 10 Hz written through the v9 trigger, its chart of
1,000 buckets read from the coarsest width that gives them (as `Ledger.power_series` does) and
derived from the 1 s buckets instead (the same merge, over 1 s buckets).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import _harness
from greenai.ledger.records import DeviceTotal, PhaseTotal, RunSnapshot, RunStart, SampleRow
from greenai.ledger.schema import V9
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance

ARMS = ("v9 trigger (4 widths)", "finest width only", "no trigger")
KINDS = (DeviceKind.GPU, DeviceKind.GPU, DeviceKind.CPU, DeviceKind.DRAM)


def trigger_sql(widths: tuple[int, ...]) -> str:
    """V9's trigger with only `widths` (the same statements, its width list changed)."""
    body = V9[V9.index("CREATE TRIGGER samples_overview") :]
    full = "(SELECT 1 AS width_s UNION ALL SELECT 10 UNION ALL SELECT 100 UNION ALL SELECT 1000)"
    assert body.count(full) == 2, "V9's trigger changed: update this benchmark"
    fewer = (
        "(" + " UNION ALL ".join(f"SELECT {w}" + (" AS width_s" if i == 0 else "") for i, w in enumerate(widths)) + ")"
    )
    return body.replace(full, fewer)


def make_ledger(path: Path, arm: str) -> Ledger:
    ledger = Ledger(path)
    if arm != ARMS[0]:
        ledger.transaction(lambda conn: conn.execute("DROP TRIGGER samples_overview"), write=True)
        if arm == ARMS[1]:
            ledger.transaction(lambda conn: conn.execute(trigger_sql((1,))), write=True)
    return ledger


def snapshot(devices: int, energy_j: float) -> RunSnapshot:
    return RunSnapshot(
        duration_s=1.0,
        energy_j=energy_j,
        rel_uncertainty=0.05,
        provenance=Provenance.SIMULATED,
        facility_energy_j=energy_j,
        carbon_g=0.0,
        cost=0.0,
        currency="EUR",
        devices=tuple(
            DeviceTotal(f"dev:{d}", KINDS[d % len(KINDS)], energy_j / devices, Provenance.SIMULATED, 0.05)
            for d in range(devices)
        ),
        phases=(PhaseTotal("train", "dev:0", energy_j, 1.0, 1),),
    )


def rows(t0: float, ticks: int, devices: int, hz: float, start_tick: int) -> list[SampleRow]:
    out = []
    for i in range(start_tick, start_tick + ticks):
        t = t0 + i / hz
        for d in range(devices):
            kind = KINDS[d % len(KINDS)]
            out.append(SampleRow(t, f"dev:{d}", kind, 100.0 + (i % 7), 100.0 * i / hz, Provenance.SIMULATED, "train"))
    return out


def read_cost(seconds: int, devices: int, directory: Path | None, repeat: int = 7) -> str:
    """Median time of a 1,000-bucket chart's overview read of a `seconds`-long run: from the
    width `Ledger.power_series` picks, and derived from the 1 s buckets."""
    import math
    import sqlite3

    from greenai.ledger import series

    buckets = 1000
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "read.db"
        t0 = 1_700_000_000.0
        with Ledger(path) as ledger:
            start = RunStart(os.urandom(16).hex(), "long", t0, "bench", os.getpid())
            ledger.begin_run(start)
            chunk = 600  # ticks per write: 60 s at 10 Hz
            for tick in range(0, seconds * 10, chunk):
                ledger.flush(start.run_id, snapshot(devices, 1.0), rows(t0, chunk, devices, 10.0, tick))
        conn = sqlite3.connect(path)
        cur = conn.cursor()
        span = (seconds * 10 - 1) / 10.0
        width = series._overview_width(span, buckets) or 1
        k = max(1, math.ceil(span / (buckets * width)))
        times: dict[str, list[float]] = {"kept": [], "derived": []}
        for _ in range(repeat):
            for arm, (w, g) in (("kept", (width, k)), ("derived", (1, width * k))):
                begin = time.perf_counter()
                series._from_overview(cur, start.run_id, w, g)
                series._phases_from_overview(cur, start.run_id, w, g)
                times[arm].append(time.perf_counter() - begin)
        rows_at = {
            w: cur.execute(
                "SELECT count(*) FROM sample_overview WHERE run_id = ? AND width_s = ?", (start.run_id, w)
            ).fetchone()[0]
            for w in (width, 1)
        }
        conn.close()
    kept, derived = (statistics.median(times[a]) for a in ("kept", "derived"))
    return (
        f"A chart of 1,000 buckets of a {seconds:,} s run ({devices} devices at 10 Hz, "
        f"{seconds * 10 * devices:,} samples), its overview read (points and phases, median of {repeat}): "
        f"{kept * 1e3:.0f} ms from the {width} s buckets the trigger keeps ({rows_at[width]:,} rows), "
        f"{derived * 1e3:.0f} ms derived from the 1 s buckets ({rows_at[1]:,} rows): "
        f"{derived / kept:.1f}x, and it grows with the run's length in seconds."
    )


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--rounds", type=int, default=300, help="flushes timed per arm")
    ap.add_argument("--ticks", type=int, default=10, help="ticks per flush (10: 10 Hz, 1 s flushes)")
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--hz", type=float, default=10.0, help="sampling rate the rows' times follow")
    ap.add_argument("--dir", type=Path, default=None, help="where the ledgers go (default: a temporary directory)")
    ap.add_argument("--read-seconds", type=int, default=0, help="also time a chart's read of a run this long")
    _harness.add_write(ap, "ledger-flush")
    args = ap.parse_args(argv)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    machine0 = _harness.cpu_sample()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ledgers = {arm: make_ledger(Path(tmp) / f"{i}.db", arm) for i, arm in enumerate(ARMS)}
        t0 = time.time()
        runs = {}
        for arm, ledger in ledgers.items():
            start = RunStart(os.urandom(16).hex(), "flush", t0, "bench", os.getpid())
            ledger.begin_run(start)
            runs[arm] = start.run_id
        for warm in range(5):  # the files' first pages
            for arm, ledger in ledgers.items():
                tick = warm * args.ticks
                ledger.flush(runs[arm], snapshot(args.devices, 1.0), rows(t0, args.ticks, args.devices, args.hz, tick))
        for r, order in _harness.rotations(ARMS, args.rounds):
            tick = (5 + r) * args.ticks
            batch = rows(t0, args.ticks, args.devices, args.hz, tick)
            snap = snapshot(args.devices, float(tick))
            for arm in order:
                begin = time.perf_counter()
                ledgers[arm].flush(runs[arm], snap, batch)
                times[arm].append(time.perf_counter() - begin)
        for ledger in ledgers.values():
            ledger.close()
    per_flush = args.ticks * args.devices
    none = statistics.median(times[ARMS[2]])
    lines = [
        "## Ledger: what the series overview costs a flush (issue 18)",
        "",
        f"`{_harness.command(__file__, argv)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs; other processes kept {_harness.cpu_sample().others_cores(machine0):.2f} cores busy). "
        f"`Ledger.flush` of {args.ticks} ticks x {args.devices} devices ({per_flush} sample rows, with the "
        f"run's totals, devices and phases), {args.rounds} flushes per arm, interleaved (order rotated each "
        "round), each arm in a ledger file of its own (WAL); the run grows as a real one does.",
        "",
        "| trigger | flush, median | 95 % interval | per sample row | vs no trigger |",
        "|---|---:|---:|---:|---:|",
    ]
    for arm in ARMS:
        med = statistics.median(times[arm])
        low, high, _ = _harness.median_ci(times[arm])
        lines.append(
            f"| {arm} | {med * 1e3:.2f} ms | {low * 1e3:.2f}–{high * 1e3:.2f} ms | "
            f"{med / per_flush * 1e6:.1f} us | {med / none:.2f}x |"
        )
    v9, finest = statistics.median(times[ARMS[0]]), statistics.median(times[ARMS[1]])
    flushes_per_s = args.hz / args.ticks
    lines += [
        "",
        f"The v9 trigger makes a flush {v9 / none:.1f}x as long as without it: {(v9 - none) * 1e3:.2f} ms more per "
        f"flush, {(v9 - none) * flushes_per_s * 1e3:.2f} ms a second of run at {args.hz:g} Hz "
        f"({(v9 - none) * flushes_per_s * 100:.3f} % of a core, on the sampler thread, never the user's); keeping "
        f"only the 1 s buckets would save {(v9 - finest) * 1e3:.2f} ms of it and still leave "
        f"{finest / none:.1f}x.",
    ]
    if args.read_seconds:
        lines += ["", read_cost(args.read_seconds, args.devices, args.dir)]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        _harness.write_section(args.write, "ledger-flush", report)


if __name__ == "__main__":
    main()
