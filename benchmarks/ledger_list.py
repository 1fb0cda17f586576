"""`greenai runs list --all` (table and --json) on a ledger of 100,000 runs: greenai before and after a change.

The ledger (kept in --ledger, reused when it holds --runs runs) is written through the ledger's
own write path (`queries.insert_run`, `write_snapshot`, `set_status`; 1,000 runs a transaction):
each run has 2 tags, 3 devices, 6 phase rows (2 phases x 3 devices) and 2 counters. Each
command runs in a process of its own, `python -m greenai runs list --all [--json]`, its stdout to
a file: wall time, and its CPU time (user + system, from wait4). `before` runs the same command
with another commit's `src/` first on PYTHONPATH (`git archive COMMIT src`); the two alternate
in rounds (order rotated each round), and their outputs must be byte-identical (sha256).

The machine's co-load (CPUs other processes kept busy, steal included; greenai's own reader)
is recorded over all the timings; the script first waits up to --quiet-wait s for a quiet machine.

    python benchmarks/ledger_list.py [--runs 100000] [--before COMMIT] [--rounds 2] [--write]
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _harness

DEVICES = (("gpu:0", "gpu", 250.0), ("cpu:0", "cpu", 65.0), ("dram:0", "dram", 8.0))
PHASES = ("train", "eval")
PER_TRANSACTION = 1000


def build(path: Path, runs: int) -> None:
    """The benchmark ledger: `runs` completed runs, 1 s apart, newest last."""
    from greenai.ledger import queries
    from greenai.ledger.records import DeviceTotal, PhaseTotal, RunSnapshot, RunStart, RunStatus
    from greenai.ledger.store import Ledger
    from greenai.meters.base import DeviceKind, Provenance

    t0 = 1_735_689_600.0  # 2025-01-01 UTC

    def one(conn: Any, i: int) -> None:
        run_id = uuid.UUID(int=i + 1).hex
        started = t0 + i
        duration = 60.0 + i % 500
        energy = {d: w * duration for d, _, w in DEVICES}
        total = sum(energy.values())
        tags = {"model": ("cnn", "mlp", "bert", "resnet")[i % 4], "seq": str(i)}
        queries.insert_run(conn, RunStart(run_id, f"job-{i % 97}", started, f"node-{i % 8}", 1, tags, {}), started)
        snapshot = RunSnapshot(
            duration_s=duration,
            energy_j=total,
            rel_uncertainty=0.05,
            provenance=Provenance.SIMULATED,
            facility_energy_j=total * 1.2,
            carbon_g=total * 1.2 / 3.6e6 * 56.0,
            cost=0.0,
            currency="EUR",
            devices=tuple(DeviceTotal(d, DeviceKind(k), energy[d], Provenance.SIMULATED, 0.05) for d, k, _ in DEVICES),
            phases=tuple(
                PhaseTotal(p, d, energy[d] / len(PHASES), duration / len(PHASES), 10)
                for p in PHASES
                for d, _, _ in DEVICES
            ),
            counters={"samples": 1000.0 + i % 7, "tokens": 5e5},
        )
        queries.write_snapshot(conn, run_id, snapshot, (), started + duration)
        queries.set_status(conn, run_id, RunStatus.COMPLETED, started + duration)

    with Ledger(path) as store:
        for first in range(0, runs, PER_TRANSACTION):
            last = min(first + PER_TRANSACTION, runs)
            store.transaction(lambda conn, a=first, b=last: [one(conn, i) for i in range(a, b)], write=True)


def before_source(commit: str, directory: Path) -> Path:
    """`src/` of greenai at `commit`, in `directory`."""
    archive = subprocess.run(
        ["git", "-C", str(_harness.ROOT), "archive", commit, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory / "src"


def timed(args: list[str], source: Path | None, ledger: Path, out: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds of `python -m greenai ARGS` (stdout to `out`), and its output's sha256."""
    env = {**os.environ, "GREENAI_LEDGER": str(ledger), "COLUMNS": "200"}
    if source is not None:
        env["PYTHONPATH"] = f"{source}{os.pathsep}{env.get('PYTHONPATH', '')}"
    with out.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "greenai", *args], stdout=sink, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"greenai {' '.join(args)} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, hashlib.sha256(out.read_bytes()).hexdigest()


READ = """
import json, sys, time
from pathlib import Path
from greenai.ledger.store import Ledger
with Ledger(Path(sys.argv[1]), read_only=True) as store:
    cpu = []
    for _ in range(3):
        start = time.process_time()
        runs = store.list_runs(limit=1_000_000)
        cpu.append(time.process_time() - start)
print(json.dumps({"cpu": sorted(cpu)[1], "runs": len(runs)}))
"""


def read_cpu_s(source: Path | None, ledger: Path) -> float:
    """CPU seconds of `Ledger.list_runs` of every run in a process of its own (median of 3)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = f"{source}{os.pathsep}{env.get('PYTHONPATH', '')}"
    out = subprocess.run(
        [sys.executable, "-c", READ, str(ledger)], capture_output=True, text=True, env=env, check=True
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["cpu"])


BREAKDOWN = """
import json, sys, time
from pathlib import Path
from greenai.cli.options import print_json
from greenai.cli.runs_cmd import list_runs
from greenai.ledger import record_to_dict
from greenai.ledger.store import Ledger

path = Path(sys.argv[1])
cpu = {}

def timed(key, work):
    start = time.process_time()
    result = work()
    cpu[key] = time.process_time() - start
    return result

with Ledger(path, read_only=True) as store:
    records = timed("read", lambda: store.list_runs(limit=1_000_000))
dicts = timed("dicts", lambda: [record_to_dict(r) for r in records])
timed("print_json", lambda: print_json(dicts))  # to this process's stdout, as the CLI writes
timed("dumps", lambda: sys.stdout.write(json.dumps(dicts, indent=2, default=str)))
timed("table", lambda: list_runs(all_runs=True, ledger=path, json_out=False))
timed("json", lambda: list_runs(all_runs=True, ledger=path, json_out=True))
sys.stdout.flush()
print(json.dumps(cpu), file=sys.stderr)
"""


def breakdown(ledger: Path) -> dict[str, float]:
    """CPU seconds of each part of `runs list --all`, in one process (this tree's greenai, its
    stdout a file, the environment this script's): reading the runs, making the JSON's dicts,
    `print_json` of them (json.dump, as the CLI does) and json.dumps of the same in one write,
    and the two commands' functions whole."""
    with tempfile.TemporaryFile() as sink:  # stdout: a file, as in the timings above
        err = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(ledger)],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        ).stderr
    return {k: float(v) for k, v in json.loads(err.strip().splitlines()[-1]).items()}


def render(result: dict[str, Any], command: str) -> str:
    lines = [
        "## Listing runs: `greenai runs list --all` on 100,000 runs",
        "",
        f"`{command}` ({result['date']}, {result['machine']}). Ledger: {result['runs']:,} runs, each with 2 tags, "
        f"3 devices, 6 phase rows and 2 counters ({result['ledger_mb']:.0f} MB). Each command in a process of its "
        "own, stdout to a file; CPU = user + system of that process (wait4). Before: commit "
        f"{result['before']}, run from its `src/` (git archive); after: this tree. {result['rounds']} rounds, the "
        "order rotated each round. Co-load (CPUs other processes kept busy, steal included, greenai's own reader) "
        f"over the timings: {result['load']:.2f} of {result['cores']} (after waiting {result['waited_s']:.0f} s for a "
        "quiet machine).",
        "",
        "| command | before: CPU, median (min–max) | after: CPU, median (min–max) | before: wall | after: wall "
        "| output |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for args, arms in result["commands"].items():
        b, a = arms["before"], arms["after"]

        def cell(values: list[float]) -> str:
            return f"{statistics.median(values):.1f} s ({min(values):.1f}–{max(values):.1f})"

        same = "byte-identical" if arms["identical"] else "DIFFERENT"
        lines.append(
            f"| `greenai {args}` | {cell(b['cpu'])} | {cell(a['cpu'])} | {statistics.median(b['wall']):.1f} s "
            f"| {statistics.median(a['wall']):.1f} s | {same} |"
        )
    reads = result["reads"]
    lines.append(
        f"| `Ledger.list_runs` of all {result['runs']:,} runs, in a process of its own (median of 3 calls) "
        f"| {statistics.median(reads['before']):.1f} s | {statistics.median(reads['after']):.1f} s | | | |"
    )
    p = result["parts"]
    unbuffered = f"PYTHONUNBUFFERED={result['unbuffered']}" if result["unbuffered"] else "PYTHONUNBUFFERED unset"
    lines += [
        "",
        "Before, `ledger/queries.list_records` ran four queries per run (tags, devices, phases, counters): "
        f"{4 * result['runs']:,} queries for this list. After, it reads the child rows of 50 runs at once, one "
        f"`IN (...)` query per child table: {4 * -(-result['runs'] // 50):,} queries.",
        "",
        f"Where the CPU goes (after; one process, stdout a file, {unbuffered} as in the rows above): reading the "
        f"{result['runs']:,} runs {p['read']:.1f} s; the whole `runs list --all` {p['table']:.1f} s, so rich's "
        f"table takes about {p['table'] - p['read']:.0f} s of it; the whole `--json` {p['json']:.1f} s, of which "
        f"making the dicts {p['dicts']:.1f} s and `cli/options.print_json` {p['print_json']:.1f} s, against "
        f"{p['dumps']:.1f} s for `json.dumps` of the same text in one write (json.dump writes each small piece, "
        "and an unbuffered stdout makes each a system call).",
        "",
        _harness.machine_words(result["load"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--ledger", type=Path, default=Path("/tmp/greenai-list-bench.db"))
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--before", default=None, help="the commit to compare with (default: none, after only)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for a quiet machine at most")
    _harness.add_write(ap, "ledger-list")
    args = ap.parse_args(argv)
    if _harness.count_rows(args.ledger, "runs") != args.runs:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.ledger}{suffix}").unlink(missing_ok=True)
        _harness.log(f"building {args.ledger}: {args.runs:,} runs")
        build(args.ledger, args.runs)
    commands = {
        "runs list --all": ["runs", "list", "--all"],
        "runs list --all --json": ["runs", "list", "--all", "--json"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        sources: dict[str, Path | None] = {"after": None}
        if args.before:
            sources["before"] = before_source(args.before, Path(tmp))
        times: dict[str, dict[str, dict[str, list[float]]]] = {
            c: {arm: {"wall": [], "cpu": []} for arm in sources} for c in commands
        }
        digests: dict[str, dict[str, set[str]]] = {c: {arm: set() for arm in sources} for c in commands}
        reads: dict[str, list[float]] = {arm: [] for arm in sources}
        waited = _harness.wait_for_quiet(args.quiet_wait)
        children_cpu = lambda: sum(os.times()[2:4])  # noqa: E731
        start_sample = _harness.cpu_sample(time.process_time() + children_cpu())
        for r, order in _harness.rotations(list(sources), args.rounds):
            for arm in order:
                for name, cmd in commands.items():
                    wall, cpu, digest = timed(cmd, sources[arm], args.ledger, Path(tmp) / f"{arm}.out")
                    times[name][arm]["wall"].append(wall)
                    times[name][arm]["cpu"].append(cpu)
                    digests[name][arm].add(digest)
                    _harness.log(f"round {r}: {arm} `greenai {name}`: {cpu:.1f} s CPU, {wall:.1f} s wall")
                reads[arm].append(read_cpu_s(sources[arm], args.ledger))
                _harness.log(f"round {r}: {arm} Ledger.list_runs: {reads[arm][-1]:.1f} s CPU")
        load = _harness.cpu_sample(time.process_time() + children_cpu()).others_cores(start_sample)
    parts = breakdown(args.ledger)
    _harness.log(f"breakdown (CPU s): {parts}")
    import platform

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "cores": os.cpu_count(),
        "runs": args.runs,
        "ledger_mb": args.ledger.stat().st_size / 1e6,
        "before": args.before,
        "rounds": args.rounds,
        "load": load,
        "waited_s": waited,
        "reads": reads,
        "parts": parts,
        "unbuffered": os.environ.get("PYTHONUNBUFFERED", ""),
        "commands": {
            name: {
                **arms,
                "identical": len(set().union(*digests[name].values())) == 1,
            }
            for name, arms in times.items()
        },
    }
    if not args.before:
        for name, arms in times.items():
            print(f"greenai {name}: CPU {statistics.median(arms['after']['cpu']):.2f} s")
        return
    section = render(result, _harness.command(__file__, argv))
    print(section)
    if args.write:
        _harness.write_section(args.write, "ledger-list", section)


if __name__ == "__main__":
    main()
