"""Opening a large ledger: the cheap checks every open makes against the full checks it used to make.

Every `Tracker.start` and every command opens the ledger. Opening checks only what is cheap
(the SQLite header, greenai's identity, the schema version, every table and column that version
needs, each table's root page: greenai/ledger/connect.py); before, each open ran
`PRAGMA quick_check`, which reads every page. The full check is `greenai runs check`
(`greenai.ledger.check.check_ledger`). This script times the three on one ledger:

- open: `Ledger(path)` then `close()`, in this process, median of --opens;
- quick_check: `PRAGMA quick_check` on a connection of its own (what each open used to add),
  median of --checks;
- runs check: `check_ledger(path)`, median of --checks.

The ledger (kept in --ledger, reused when it holds --samples samples) is one greenai ledger whose
runs hold --samples sample rows in all (3 devices, 10 Hz, 1,000,000 rows a run), inserted by SQL
through the real schema (its overview trigger included). The page cache is warm: the file was
just written or read (the figures do not include reading 1 GB from disk). The machine's co-load
(CPUs other processes kept busy, steal included) is recorded over the timings.

    python benchmarks/ledger_open.py [--samples 12000000] [--opens 20] [--checks 3] [--write]
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import time
from pathlib import Path

import _harness

PER_RUN = 1_000_000
DEVICES = 3


def build(path: Path, samples: int) -> None:
    """A ledger of completed runs holding `samples` sample rows, PER_RUN a run."""
    from greenai.ledger.records import RunStart, RunStatus
    from greenai.ledger.store import Ledger

    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with Ledger(path) as store:
        for first in range(0, samples, PER_RUN):
            n = min(PER_RUN, samples - first)
            run_id = f"run{first // PER_RUN:04d}"
            started = 1_735_689_600.0 + first  # far enough apart
            store.begin_run(RunStart(run_id, "long", started, "host", 1))

            def insert(conn: sqlite3.Connection, run_id: str = run_id, n: int = n, started: float = started) -> None:
                conn.execute(
                    "WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM i WHERE k < ?) "
                    "INSERT INTO samples (run_id, t, device, kind, power_w, energy_j, provenance) "
                    "SELECT ?, ? + (k / ?) / 10.0, 'gpu:' || (k % ?), 'gpu', 250.0, 25.0 * (k / ?), 'simulated' FROM i",
                    (n - 1, run_id, started, DEVICES, DEVICES, DEVICES),
                )
                conn.execute(
                    "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?",
                    (RunStatus.COMPLETED, started + n / DEVICES / 10.0, run_id),
                )

            store.transaction(insert, write=True)
            _harness.log(f"built {first + n:,} of {samples:,} samples")
    conn = sqlite3.connect(path)  # fold the WAL into the file: the size measured is the ledger's
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def timed(work, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def open_once(path: Path) -> None:
    from greenai.ledger.store import Ledger

    Ledger(path).close()


def quick_check(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def runs_check(path: Path) -> None:
    from greenai.ledger.check import check_ledger

    assert check_ledger(path).ok


def cell(values: list[float], unit_s: float, unit: str, digits: int) -> str:
    def f(v: float) -> str:
        return f"{v / unit_s:.{digits}f} {unit}"

    return f"{f(statistics.median(values))} ({f(min(values))}–{f(max(values))}, {len(values)} times)"


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--ledger", type=Path, default=Path("/tmp/greenai-open-bench.db"))
    ap.add_argument("--samples", type=int, default=12_000_000, help="sample rows in all (default 12,000,000: ~1 GB)")
    ap.add_argument("--opens", type=int, default=20)
    ap.add_argument("--checks", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for a quiet machine at most")
    _harness.add_write(ap, "ledger-open")
    args = ap.parse_args(argv)
    if _harness.count_rows(args.ledger, "samples") != args.samples:
        _harness.log(f"building {args.ledger}: {args.samples:,} samples")
        build(args.ledger, args.samples)
    size_mb = args.ledger.stat().st_size / 1e6
    quick_check(args.ledger)  # the page cache holds the file from here on
    waited = _harness.wait_for_quiet(args.quiet_wait)
    start = _harness.cpu_sample()
    opens = timed(lambda: open_once(args.ledger), args.opens)
    _harness.log(f"open: median {statistics.median(opens) * 1e3:.1f} ms")
    checks = timed(lambda: quick_check(args.ledger), args.checks)
    _harness.log(f"quick_check: median {statistics.median(checks):.2f} s")
    full = timed(lambda: runs_check(args.ledger), args.checks)
    _harness.log(f"check_ledger: median {statistics.median(full):.2f} s")
    load = _harness.cpu_sample().others_cores(start)
    cores = os.cpu_count()
    text = "\n".join(
        [
            "## Opening a large ledger",
            "",
            f"`{_harness.command(__file__, argv)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.machine()}, {cores} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}). "
            f"Ledger: {args.samples:,} sample rows (3 devices, {PER_RUN:,} a run; {size_mb:,.0f} MB), the page cache "
            f"warm. Co-load (CPUs other processes kept busy, steal included) over the timings: {load:.2f} of {cores} "
            f"(after waiting {waited:.0f} s for a quiet machine).",
            "",
            "| what | median (min–max) |",
            "|---|---:|",
            f"| open: `Ledger(path)` and `close()` (header, identity, schema, tables and columns, root pages) "
            f"| {cell(opens, 1e-3, 'ms', 1)} |",
            f"| `PRAGMA quick_check` (what every open used to add) | {cell(checks, 1.0, 's', 2)} |",
            f"| `greenai runs check` (`check_ledger`: integrity_check, dangling rows, every run read back) "
            f"| {cell(full, 1.0, 's', 2)} |",
            "",
            _harness.machine_words(load),
            "",
        ]
    )
    print(text)
    if args.write:
        _harness.write_section(args.write, "ledger-open", text)


if __name__ == "__main__":
    main()
