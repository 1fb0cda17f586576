"""What greenai's commands write by default into the current directory is ignored by git in
a clone of this repository (`make demo` left `greenai-demo/` as an untracked folder)."""

from __future__ import annotations

import inspect
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _default(function, name: str) -> Path:
    return Path(inspect.signature(function).parameters[name].default)


def default_outputs() -> list[Path]:
    from greenai.cli import demo_cmd, optimize_cmd
    from greenai.reports.api import DEFAULT_OUTPUT

    return [
        _default(demo_cmd.demo, "out_dir") / "digits-pareto.png",  # a file in the folder
        _default(optimize_cmd.optimize, "save"),
        _default(optimize_cmd.optimize, "plot"),
        *(Path(name) for name in DEFAULT_OUTPUT.values()),
    ]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git clone")
def test_default_outputs_are_ignored():
    paths = default_outputs()
    assert Path("greenai-demo/digits-pareto.png") in paths and Path("greenai-report.html") in paths
    for path in paths:
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", str(path)], cwd=ROOT)
        assert proc.returncode == 0, f"{path} is not covered by .gitignore"
