"""Helpers for tests that drive greenai as a user would: as a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def greenai(
    *args: str, ledger: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run the real `greenai` command (python -m greenai) and capture its output."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    if ledger is not None:
        full_env["GREENAI_LEDGER"] = str(ledger)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "greenai", *args], capture_output=True, text=True, env=full_env, timeout=timeout, **kw
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def run_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """What `greenai run --json` printed: the run as JSON, the last thing on stderr (after
    whatever the program itself wrote there)."""
    assert proc.returncode is not None
    text = proc.stderr
    start = 0 if text.startswith("{\n") else text.rindex("\n{\n") + 1
    return json.loads(text[start:])


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("greenai: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
