"""What every benchmark script shares: the machine's load and waiting for it to quieten
(greenai's own co-load reader, greenai/hardware/coload.py), interleaving alternatives in rounds,
medians, spreads and confidence intervals, writing a section of docs/benchmarks.md, running a
script's own worker processes, and argument parsing.

A script imports it as `import _harness` (run as `python benchmarks/x.py`, benchmarks/ is on
sys.path); greenai itself comes from the installed package. The estimator's model zoo and the
replay of an accuracy run's log are in `_zoo.py`.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from greenai.hardware.coload import CLK_TCK as CLK_TCK
from greenai.hardware.coload import QUIET_CORES as QUIET_CORES
from greenai.hardware.coload import CpuSample as CpuSample
from greenai.hardware.coload import cpu_sample as cpu_sample
from greenai.hardware.coload import machine_cpu_s as machine_cpu_s
from greenai.hardware.coload import wait_for_quiet as wait_for_quiet

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULTS_DIR = BENCHMARKS / "results"
DOCS = ROOT / "docs" / "benchmarks.md"


# -- the machine's load ---------------------------------------------------------------------
# greenai's own reader (greenai/hardware/coload.py), imported above and re-exported: the one the
# tracker records runs with (other processes' CPU time from /proc/stat minus ours, hypervisor
# steal), `cpu_sample`, `CpuSample.others_cores` and `wait_for_quiet`.


# -- interleaving -----------------------------------------------------------------------------


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """`items` started at position `shift` (mod its length): ABC, BCA, CAB, ..."""
    k = shift % len(items) if items else 0
    return [*items[k:], *items[:k]]


def rotations(items: Sequence[T], rounds: int, stride: int = 1) -> Iterator[tuple[int, list[T]]]:
    """(round, order) for `rounds` rounds, each round's order rotated by `stride` more than the
    last: every alternative runs once per round and in every position in turn, so a slow spell
    of a shared machine or a drift hits all of them alike. Two items give ABBA ordering."""
    for r in range(rounds):
        yield r, rotated(items, r * stride)


def for_seconds(seconds: float, at_least: int = 5, at_most: int | None = None) -> Iterator[int]:
    """0, 1, 2, ... until `seconds` have passed and at least `at_least` were taken (and never
    more than `at_most`): the steps of a timed window."""
    end = time.perf_counter() + seconds
    i = 0
    while (time.perf_counter() < end or i < at_least) and (at_most is None or i < at_most):
        yield i
        i += 1


# -- statistics -------------------------------------------------------------------------------


def spread(values: Iterable[float]) -> float:
    """max / min: how far the slowest and fastest of identical measurements land apart."""
    v = list(values)
    return max(v) / min(v)


def median_ratio(numerators: Iterable[float], denominators: Iterable[float]) -> float:
    """The median of the pairwise ratios (a round's own a / b): robust to slow drift of the
    machine, which moves both members of a pair."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def quantile(values: Iterable[float], q: float) -> float:
    """The value at rank round(q x (n - 1)) of the sorted values (q = 0.9: the 90th percentile)."""
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def mape(errors: Iterable[float]) -> float:
    """Mean absolute value of relative errors; nan for none."""
    v = [abs(e) for e in errors]
    return sum(v) / len(v) if v else float("nan")


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval for a median: [X_(i+1), X_(n-i)] covers it
    with probability 1 - 2 P(B <= i), B ~ Binomial(n, 1/2); the narrowest such interval
    reaching `confidence`. Returns (low, high, achieved confidence); when even (min, max)
    falls short (n < 6 for 95 %), returns (min, max) and its lower confidence."""
    v, n = sorted(values), len(values)

    def cover(i: int) -> float:
        return 1 - 2 * sum(math.comb(n, k) for k in range(i + 1)) / 2**n

    i = 0
    while i + 1 < n - 1 - (i + 1) and cover(i + 1) >= confidence:
        i += 1
    return v[i], v[n - 1 - i], cover(i)


def median_call_s(
    call: Callable[[], object], calls: int, before: Callable[[], object] | None = None, warmup: float = 0.0
) -> float:
    """Median wall time of `calls` calls (the first `warmup` fraction left out); `before`, if
    given, runs untimed before each call."""
    times = []
    for _ in range(calls):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times[int(calls * warmup) :])


# -- docs/benchmarks.md -----------------------------------------------------------------------

INTRO = """# Benchmarks

Every figure here was measured by the named script on the named machine; rerun with the
command shown to check it on yours. Figures are regenerated in place by the scripts (the
sections between the HTML comment markers), never edited by hand.

"""


def markers(key: str) -> tuple[str, str]:
    return f"<!-- {key}:start -->", f"<!-- {key}:end -->"


def write_section(path: Path, key: str, section: str) -> None:
    """Put `section` between the `<!-- key:start -->` and `<!-- key:end -->` markers of the
    Markdown file at `path`, replacing what was there and leaving the rest as it is; if the
    file has no such markers, append them with the section at the end (a missing file is
    created with the benchmarks page's introduction)."""
    start, end = markers(key)
    body = section if section.endswith("\n") else section + "\n"
    text = path.read_text() if path.exists() else INTRO
    head, found_start, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if found_start and found_end:
        text = head + start + "\n" + body + end + tail
    elif found_start or end in text:
        raise ValueError(f"{path}: {start} and {end} do not both appear, in that order")
    else:
        text = text.rstrip("\n") + "\n\n" + start + "\n" + body + end + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- ledgers ----------------------------------------------------------------------------------


def count_rows(path: Path, table: str) -> int:
    """Rows of `table` in the SQLite file at `path` (read-only), or -1 when there is no such
    file or table: whether a benchmark's ledger from an earlier run can be reused."""
    import sqlite3

    if not path.exists():
        return -1
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        conn.close()


# -- arguments, processes, output -------------------------------------------------------------


def machine_words(load_cores: float) -> str:
    """What a section says of the machine it was measured on, from the co-load it reports."""
    if load_cores >= QUIET_CORES:
        return (
            "The machine was shared with other jobs (co-load above): on a quiet machine the figures are likely lower."
        )
    return "The machine was quiet (co-load above)."


def parser(doc: str | None, paragraph: bool = False) -> argparse.ArgumentParser:
    """A script's parser, described by its docstring's first line (paragraph=True: its first
    paragraph, kept as written)."""
    text = doc or ""
    if paragraph:
        return argparse.ArgumentParser(
            description=text.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
        )
    return argparse.ArgumentParser(description=text.splitlines()[0] if text else None)


def add_write(ap: argparse.ArgumentParser, key: str) -> None:
    """`--write [FILE]`: replace the script's section (markers `key`) of FILE, by default
    docs/benchmarks.md."""
    ap.add_argument(
        "--write",
        nargs="?",
        const=DOCS,
        type=Path,
        metavar="FILE",
        help=f"update the {key} section of FILE (default docs/benchmarks.md)",
    )


def ints(text: str) -> list[int]:
    """ "4,32" -> [4, 32]."""
    return [int(x) for x in text.split(",") if x]


def names(text: str) -> list[str]:
    """ "mlp,gru" -> ["mlp", "gru"]."""
    return [x for x in text.split(",") if x]


def command(script: str, argv: Sequence[str] | None) -> str:
    """How a report quotes the command that made it: `python benchmarks/<script> args...`."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return " ".join(["python", f"benchmarks/{Path(script).name}", *(shlex.quote(a) for a in args)])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: Any) -> None:
    """A worker process's result: one JSON line, the last on stdout (see run_worker)."""
    print(json.dumps(result), flush=True)


def run_worker(
    script: str | Path,
    args: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> Any:
    """Run `python script args...` in a fresh process (a measurement's own process: its warm-up
    is real, and nothing of the parent's state leaks in) and return the JSON of its last
    stdout line (see emit); a failure raises with the end of its stderr."""
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{Path(script).name} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1])


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
