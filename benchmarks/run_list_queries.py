"""The dashboard's run-list query on a big ledger: this tree's `list_runs` against an earlier
commit's, interleaved.

`greenai.dashboard.query.list_runs` of a commit (`--before`, read with `git show` into a module
of its own) and of this tree are called alternately on one ledger, the order swapped each round,
for a search, filters and pages; each call is one count and one page, as the run list makes
them. The ledger is the one `benchmarks/dashboard_speed.py --ledger PATH --runs N` builds (it is
not built here). Prints medians and spreads; nothing is written to the docs (the figures are
quoted beside dashboard_speed.py's, in docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import _harness

CASES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "search `job-42`": ({"q": "job-42"}, ()),
    "tag model=bert": ({}, ("model=bert",)),
    "tag model=bert, host node-3": ({"host": "node-3"}, ("model=bert",)),
    "status completed": ({"status": "completed"}, ()),
    "first page": ({}, ()),
    "page 150": ({"page": "150"}, ()),
}


def query_module_of(commit: str) -> ModuleType:
    """`greenai/dashboard/query.py` as it was at `commit`, as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{commit}:src/greenai/dashboard/query.py"],
        cwd=_harness.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(f"/tmp/greenai_query_{commit}.py")
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"query_{commit}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(module: ModuleType, store: object, params: dict[str, str], tags: tuple[str, ...]) -> tuple[float, int]:
    f, _ = module.RunFilter.parse(params, tags)
    start = time.perf_counter()
    page = module.list_runs(store, f)
    return time.perf_counter() - start, int(page.total)


def main(argv: list[str] | None = None) -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--ledger", type=Path, required=True, help="a ledger dashboard_speed.py built")
    ap.add_argument("--before", required=True, help="the commit whose list_runs is the baseline")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--quiet-wait", type=float, default=120.0, help="seconds to wait for a quiet machine at most")
    args = ap.parse_args(argv)
    if not args.ledger.exists():
        ap.error(f"{args.ledger} does not exist: build it with benchmarks/dashboard_speed.py --ledger {args.ledger}")
    from greenai.dashboard import query as now
    from greenai.ledger.store import Ledger

    before = query_module_of(args.before)
    store = Ledger(args.ledger, read_only=True)
    runs = _harness.count_rows(args.ledger, "runs")
    waited = _harness.wait_for_quiet(args.quiet_wait)
    start = _harness.cpu_sample()
    times: dict[tuple[str, str], list[float]] = {}
    totals: dict[tuple[str, str], int] = {}
    for r, order in _harness.rotations([("before", before), ("now", now)], args.rounds):
        for case, (params, tags) in CASES.items():
            for label, module in order:
                took, total = timed(module, store, params, tags)
                times.setdefault((label, case), []).append(took)
                totals[(label, case)] = total
        _harness.log(f"round {r + 1} of {args.rounds}")
    load = _harness.cpu_sample().others_cores(start)
    print(
        f"`{_harness.command(__file__, argv)}`: `list_runs` of {args.before} and of this tree on "
        f"{runs:,} runs, {args.rounds} rounds, the order swapped each round. Co-load {load:.2f} CPUs "
        f"(after waiting {waited:.0f} s for a quiet machine). {_harness.machine_words(load)}\n"
    )
    print(f"| query | before ({args.before}), median (min–max) | now, median (min–max) | runs matched |")
    print("|---|---:|---:|---:|")
    for case in CASES:
        cells = []
        for label in ("before", "now"):
            t = times[(label, case)]
            cells.append(f"{statistics.median(t) * 1e3:.1f} ms ({min(t) * 1e3:.1f}–{max(t) * 1e3:.1f})")
        if totals[("before", case)] != totals[("now", case)]:
            raise SystemExit(f"{case}: {totals[('before', case)]} runs before, {totals[('now', case)]} now")
        print(f"| {case} | {cells[0]} | {cells[1]} | {totals[('now', case)]:,} |")


if __name__ == "__main__":
    main()
