"""`greenai --version`, shell completion, and help that reads like a person wrote it: every
command's --help shows FILE, NAME, KEY=VALUE, never Typer's <path>, <str>, <list[str]>, <bool>."""

from __future__ import annotations

import re
import sys

import pytest
from tests.helpers import greenai

from greenai._version import __version__
from greenai.cli.main import _invoke, command


def _paths(cmd, prefix=()):
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _paths(sub, (*prefix, name))


ALL_COMMANDS = list(_paths(command()))


def test_every_command_is_covered():
    assert ("run",) in ALL_COMMANDS and ("runs", "list") in ALL_COMMANDS and ("carbon", "traces") in ALL_COMMANDS
    assert len(ALL_COMMANDS) > 25


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "greenai")
def test_help_has_no_type_placeholders(path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert _invoke([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: greenai" in out
    assert not re.findall(r"<[a-z][^<>]*>", out), re.findall(r"<[a-z][^<>]*>", out)


def test_run_help_names_its_values():
    out = greenai("run", "--help", env={"COLUMNS": "200"}).stdout
    assert re.search(r"--tag\s+-t\s+KEY=VALUE", out) and re.search(r"--ledger\s+FILE", out)
    assert re.search(r"--name\s+-n\s+NAME", out) and "{COMMAND}..." in out


def test_version():
    for flag in ("--version", "-V"):
        proc = greenai(flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"greenai {__version__}"


def test_shell_completion_is_offered_and_completes_commands():
    help_text = greenai("--help", env={"COLUMNS": "200"}).stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    script = greenai("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_GREENAI_COMPLETE" in script.stdout, script.stderr
    # what the installed script asks: the words completing "greenai ru"
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "greenai"],
        env={"_GREENAI_COMPLETE": "complete_bash", "COMP_WORDS": "greenai ru", "COMP_CWORD": "1", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert {"run", "runs"} <= set(proc.stdout.split()), (proc.stdout, proc.stderr)
