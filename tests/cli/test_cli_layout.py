"""The CLI's shape: command modules import only cli/options.py, cli/render.py and the
library (never another command), and hold no SQL (queries live in greenai/ledger/); `runs show`
gives a parent phase what is nested in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from rich.console import Console

import greenai.cli

CLI = Path(greenai.cli.__file__).parent
SHARED = {"greenai.cli.options", "greenai.cli.render"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "greenai.cli":  # `from greenai.cli import x_cmd`
                found.update(f"greenai.cli.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("greenai.cli")}


def test_commands_import_only_the_shared_modules_and_main_assembles_them():
    commands = sorted(p for p in CLI.glob("*.py") if p.stem not in ("__init__", "main", "options", "render"))
    assert {p.stem for p in commands} >= {"run_cmd", "runs_cmd", "optimize_cmd", "schedule_cmd", "schedule_run"}
    for path in commands:
        assert _imports(path) <= SHARED, f"{path.name} imports {sorted(_imports(path) - SHARED)}"
    for shared in ("options", "render"):
        assert not _imports(CLI / f"{shared}.py"), f"{shared}.py imports a CLI module"
    assert {f"greenai.cli.{p.stem}" for p in commands} <= _imports(CLI / "main.py")


def test_no_cli_module_holds_sql():
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET)\b|\.execute\(|sqlite3")
    for path in sorted(CLI.glob("*.py")):
        found = [f"{path.name}:{n}" for n, text in enumerate(path.read_text().splitlines(), 1) if sql.search(text)]
        assert found == [], f"SQL in the CLI (it belongs in greenai/ledger/): {found}"


def test_main_assembles_the_command_tree():
    from greenai.cli.main import app

    def names(typer_app) -> list[str]:
        return [c.name for c in typer_app.registered_commands]

    groups = {g.name: g.typer_instance for g in app.registered_groups}
    assert names(app) == [
        "env",
        "run",
        "demo",
        "estimate",
        "calibrate",
        "optimize",
        "studies",
        "report",
        "monitor",
        "dashboard",
    ]
    assert names(groups["runs"]) == ["list", "show", "export", "compare", "delete", "check"]
    assert names(groups["jobs"]) == ["list", "show"]
    assert names(groups["schedule"]) == ["simulate", "run", "batches", "show"]
    assert names(groups["carbon"]) == ["countries", "regions", "traces"]


def test_phase_table_shows_inclusive_totals_and_missing_parents():
    from greenai.cli.render import phase_table
    from greenai.ledger.records import DeviceTotal, PhaseTotal, RunSnapshot
    from greenai.meters.base import DeviceKind, Provenance

    phases = (
        PhaseTotal("train_step", "cpu:0", 1.0, 0.1, 3),  # little time of its own
        PhaseTotal("train_step/forward", "cpu:0", 30.0, 3.0, 3),
        PhaseTotal("train_step/backward", "cpu:0", 60.0, 6.0, 3),
        PhaseTotal("eval/forward", "cpu:0", 9.0, 0.9, 1),  # "eval" itself never held time
    )
    snapshot = RunSnapshot(
        duration_s=10.0,
        energy_j=100.0,
        rel_uncertainty=0.0,
        provenance=Provenance.SIMULATED,
        facility_energy_j=100.0,
        carbon_g=0.0,
        cost=0.0,
        currency="",
        devices=(DeviceTotal("cpu:0", DeviceKind.CPU, 100.0, Provenance.SIMULATED, 0.0),),
        phases=phases,
    )
    console = Console(record=True, width=200)
    console.print(phase_table(snapshot))
    rows = []
    for line in console.export_text().splitlines():
        cells = [c.strip() for c in line.strip()[1:-1].split("│")]
        if len(cells) == 5 and cells[0] and cells[0] != "phase":
            rows.append(cells)
    assert [r[0] for r in rows] == ["eval", "forward", "train_step", "backward", "forward"]
    eval_, eval_forward, step, backward, forward = rows
    assert step[1:] == ["91.0 J ± 0%", "91.0%", "9.10 s", "3"]  # inclusive: not 1 %, 0.10 s
    assert forward[1:] == ["30.0 J ± 0%", "30.0%", "3.00 s", "3"] and backward[1] == "60.0 J ± 0%"
    assert eval_[1:] == ["9.0 J ± 0%", "9.0%", "0.90 s", ""]  # a parent without time of its own
    assert eval_forward[1:] == ["9.0 J ± 0%", "9.0%", "0.90 s", "1"]


def test_a_finished_run_names_its_ledger_only_once_the_ledger_holds_it(tmp_path: Path):
    """greenai run, demo and monitor print a run that just ended through render_result: the
    'Stored in' line only when the result was written (a failed final write is a note)."""
    from dataclasses import replace

    from greenai.cli.render import render_result
    from greenai.ledger.records import RunSnapshot
    from greenai.meters.base import Provenance
    from greenai.tracking.result import RunResult

    snapshot = RunSnapshot(10.0, 100.0, 0.0, Provenance.SIMULATED, 100.0, 0.0, 0.0, "", (), ())
    stored = RunResult("r" * 32, "train", "completed", snapshot, tmp_path / "l.db", False, stored=True)

    def shown(result: RunResult) -> str:
        console = Console(record=True, width=200)
        render_result(console, result)
        return console.export_text()

    assert f"Stored in {tmp_path}/l.db as run {'r' * 32}" in shown(stored)
    assert "Stored in" not in shown(replace(stored, stored=False))
    assert "Stored in" not in shown(replace(stored, ledger_path=None, stored=None))
    assert "Run train" in shown(replace(stored, stored=False))
