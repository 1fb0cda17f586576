"""Every benchmark script imports (a broken import is caught here, not on the day of a rerun),
importing it runs nothing, and the scripts share benchmarks/_*.py rather than each other; the
scripts that run in seconds run end to end in their smoke mode (behaviour, never timing)."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
MODULES = sorted(BENCHMARKS.glob("*.py"))
SCRIPTS = [p for p in MODULES if not p.name.startswith("_")]


def test_there_are_benchmark_scripts_and_a_harness() -> None:
    assert len(SCRIPTS) >= 15
    assert (BENCHMARKS / "_harness.py") in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_each_module_imports_without_running(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as an import would (dataclasses look it up)
    spec.loader.exec_module(module)  # a script must guard its run with `if __name__ == "__main__"`
    out = capsys.readouterr()
    assert out.out == "" and out.err == "", f"importing {path.name} printed something: it ran"
    if not path.name.startswith("_"):
        assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
        assert module.__doc__, f"{path.name} has no docstring (its --help and its command lines)"


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_module_imports_a_script_or_edits_sys_path(path: Path) -> None:
    scripts = {p.stem for p in SCRIPTS}
    assert not _imported_names(path) & scripts, f"{path.name} imports a script; share code through benchmarks/_*.py"
    assert "sys.path.insert" not in path.read_text(), "greenai is installed; benchmarks/ is on sys.path of a script"


def test_the_overhead_report_renders_the_published_section_from_its_saved_run() -> None:
    """benchmarks/results/overhead.json is the run docs/benchmarks.md's overhead section was
    written from (its command line says --json): the report module renders it again, as
    `overhead.py --render` does."""
    from _harness import DOCS, markers
    from _overhead_report import render

    saved = json.loads((BENCHMARKS / "results" / "overhead.json").read_text())
    info, command, date = saved.pop("machine"), saved.pop("command"), saved.pop("date")
    start, end = markers("overhead")
    published = DOCS.read_text().split(start + "\n", 1)[1].split(end, 1)[0]
    assert render(saved, info, command, date) == published


def smoke(script: str, *args: str) -> str:
    """What `python benchmarks/<script> args...` prints (no --write: docs stay as they are)."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, or the parent-death signal")


@linux_only
def test_wrapper_kill_smoke_run_kills_each_wrapper_and_its_program_is_gone() -> None:
    out = smoke("wrapper_kill.py", "--kills", "1", "--quiet-wait", "0")
    # a program left running 5 s after its wrapper's SIGKILL fails the script
    assert "| `greenai run -- PROGRAM` | 1 |" in out and "| `greenai schedule run` (a command job) | 1 |" in out


@linux_only
def test_tracker_cpu_smoke_run_reads_the_sampler_and_the_meter_worker() -> None:
    out = smoke("tracker_cpu.py", "--rounds", "1", "--seconds", "1", "--quiet-wait", "0")
    rows = [line for line in out.splitlines() if line.startswith(("| simulated", "| estimated"))]
    assert [row.split(" | ")[1] for row in rows] == ["10 Hz", "1000 Hz", "10 Hz", "1000 Hz"]


@linux_only
def test_memory_long_run_smoke_run_records_rss_and_co_load() -> None:
    out = smoke("memory_long_run.py", "--seconds", "2", "--every", "0.5", "--warmup", "0.5", "--quiet-wait", "0")
    assert all(f"| {mode} |" in out for mode in ("store", "no-store", "locked")) and "CPUs |" in out


@pytest.mark.skipif(
    shutil.which("git") is None or not (BENCHMARKS.parent / ".git").exists(), reason="reads a commit: not a git clone"
)
def test_run_list_queries_smoke_run_compares_two_commits_queries_on_one_ledger(tmp_path: Path) -> None:
    """HEAD against this tree: every query finds the same runs in both (the script fails if not)."""
    from tests.dashboard.conftest import add_run

    from greenai.ledger.store import Ledger

    ledger = tmp_path / "l.db"
    with Ledger(ledger) as store:
        for i in range(60):
            add_run(store, f"job-{i}", 1_700_000_000.0 + i, 10.0, host=f"node-{i % 8}", tags={"model": "bert"})
    out = smoke(
        "run_list_queries.py", "--ledger", str(ledger), "--before", "HEAD", "--rounds", "1", "--quiet-wait", "0"
    )
    assert "| search `job-42` |" in out and "| tag model=bert | " in out and "| 60 |" in out
