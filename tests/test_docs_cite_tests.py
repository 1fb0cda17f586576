"""The tests the docs name exist: docs/measurement.md says which test holds each promise (and other
pages do the same), so a test renamed or removed would leave a promise citing nothing. Every
`test_...` name and every `tests/....py` path in inline code of README.md and docs/*.md (outside
fenced code blocks, which show user code) must be a test function or a test file of tests/."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


@functools.cache
def _test_names() -> tuple[set[str], set[str]]:
    """Test functions and test file names (with and without .py) under tests/."""
    functions: set[str] = set()
    files: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        files.update({path.name, path.stem})
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                functions.add(node.name)
    return functions, files


def cited(text: str) -> tuple[set[str], set[str]]:
    """The test names and tests/ paths in the inline code of a Markdown text."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    names: set[str] = set()
    paths: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", prose):
        paths.update(re.findall(r"\btests/[\w/]+\.py\b", span))
        names.update(re.findall(r"\btest_\w+(?:\.py)?", span))
    return names, paths


def test_the_citations_are_found() -> None:
    names, paths = cited(
        "held by `tests/faults/test_kill.py::test_a_run_killed_early_keeps_its_energy` and `test_memory.py`\n"
        "```python\ntrainer.test(model, test_loader)\n```\n"
    )
    assert names == {"test_kill.py", "test_a_run_killed_early_keeps_its_energy", "test_memory.py"}
    assert paths == {"tests/faults/test_kill.py"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_test_a_doc_names_exists(doc: Path) -> None:
    functions, files = _test_names()
    names, paths = cited(doc.read_text())
    stale = sorted(n for n in names if n not in functions and n not in files)
    stale += sorted(p for p in paths if not (ROOT / p).is_file())
    assert not stale, f"{doc.name} names tests that do not exist: {stale}"
