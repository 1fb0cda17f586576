"""The package's shape: imports run one way (lower layers never import higher ones), no module
imports itself back through others, and every import path the README and docs/ teach runs (imports
in code blocks and in inline code, and dotted paths such as `greenai.tune.keep_freed_memory()`).

Checked on the source with `ast`: every import that can run, including those inside functions, so
a lazy import cannot hide a cycle or an upward dependency. Imports under `if TYPE_CHECKING:` never
run and are left out: they let a lower layer name a higher layer's type in an annotation (as
`errors.BudgetExceeded` names `tracking.budget.BudgetBreach`) without depending on it.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "greenai"

# Lower number = lower layer. A module may import its own layer and the layers below it.
LAYERS: dict[str, int] = {
    "_version": 0,
    "_lazy": 0,
    "units": 0,
    "errors": 0,
    "inputs": 0,
    "text": 0,
    "hardware": 1,
    "config": 2,
    "factories": 2,
    "data": 2,
    "meters": 3,
    "testing": 4,
    "carbon": 4,
    "ledger": 5,
    "tracking": 6,
    "distributed": 7,
    "estimation": 7,  # greenai.estimation: the function greenai.estimate must not be shadowed
    "optimize": 8,
    "tune": 8,
    "schedule": 9,
    "integrations": 10,
    "demo": 10,
    "report": 11,
    "reports": 11,  # greenai.reports: plural so that the function greenai.report is never shadowed
    "dashboard": 12,
    "monitor": 12,
    "cli": 13,
    "__main__": 14,
    "__init__": 14,  # the package's public surface: lazy names over every layer
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every greenai module this file imports at run time, at any depth of the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("greenai"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("greenai"):
                found.add(node.module)
                # `from greenai.x import y` imports greenai.x.y when y is a module
                for a in node.names:
                    candidate = f"{node.module}.{a.name}"
                    if (SRC.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or (
                        SRC.parent / candidate.replace(".", "/") / "__init__.py"
                    ).exists():
                        found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        edges[module_name(path)] |= {m for m in imports_of(path) if m != module_name(path)}
    return edges


def layer(module: str) -> int:
    parts = module.split(".")
    if module == "greenai":
        return LAYERS["__init__"]
    top = parts[1]
    if top not in LAYERS:
        raise AssertionError(f"{module}: package greenai.{top} has no layer in tests/test_layout.py")
    return LAYERS[top]


def test_every_package_has_a_layer():
    for path in SRC.rglob("*.py"):
        layer(module_name(path))


def test_imports_never_run_from_a_lower_layer_to_a_higher_one():
    upward = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, bs in graph().items()
        for b in bs
        if b != "greenai" and layer(b) > layer(a)
    ]
    assert upward == []


def test_only_the_public_surface_imports_the_package_root():
    offenders = [a for a, bs in graph().items() if "greenai" in bs and a not in {"greenai", "greenai.__main__"}]
    assert offenders == []


def test_no_private_name_is_imported_from_another_package():
    """A `_name` is its package's own: one used elsewhere is made public where it lives."""
    crossing = []
    for path in SRC.rglob("*.py"):
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("greenai"):
                owner = (
                    node.module
                    if (SRC.parent / node.module.replace(".", "/")).is_dir()
                    else node.module.rpartition(".")[0]
                )
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__") and owner != package:
                        crossing.append(f"{module_name(path)}: from {node.module} import {a.name}")
    assert crossing == []


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (Tarjan, SIAM J. Comput. 1(2), 1972), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    nodes = set(edges) | {b for bs in edges.values() for b in bs}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_there_are_no_import_cycles():
    # a package's __init__ that lazily names its own submodules is not a cycle of code
    edges = {
        a: {
            b for b in bs if not (b.startswith(a + ".") and (SRC.parent / a.replace(".", "/") / "__init__.py").exists())
        }
        for a, bs in graph().items()
    }
    assert strongly_connected(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# an import anywhere in a line: a code block's line or inline code in prose (`from greenai.tune import X`)
_FROM = re.compile(r"(?<![\w.])from (greenai[\w.]*) import (\([^)]*\)|[\w, ]+)")
_IMPORT = re.compile(r"(?<![\w.])import (greenai[\w.]*)")
# a dotted path in inline code: `greenai.tune.keep_freed_memory()`, `greenai.ledger.tuning.read_trials`
_DOTTED = re.compile(r"`(greenai(?:\.\w+)+)(?:\(\))?`")


def documented_imports() -> list[tuple[str, str, str | None]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for m in _FROM.finditer(text):
            for name in m.group(2).strip("()").replace("\n", " ").split(","):
                name = name.split("#")[0].strip()
                if name:
                    found.append((doc.name, m.group(1), name.split(" as ")[0]))
        for m in _IMPORT.finditer(text):
            found.append((doc.name, m.group(1), None))
    return found


def documented_paths() -> list[tuple[str, str]]:
    """Dotted paths in inline code whose first part after `greenai.` is a name greenai has (a
    module or a public name); others (`greenai.energy_j`, an MLflow metric) are not code."""
    import greenai

    top = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    found = []
    for doc in DOCS:
        for m in _DOTTED.finditer(doc.read_text()):
            first = m.group(1).split(".")[1]
            if first in top or first in getattr(greenai, "__all__", ()):
                found.append((doc.name, m.group(1)))
    return sorted(set(found))


def test_the_docs_teach_some_imports():
    assert len(documented_imports()) >= 10
    assert len(documented_paths()) >= 10


@pytest.mark.parametrize("doc,module,name", documented_imports())
def test_every_documented_import_runs(doc, module, name):
    imported = importlib.import_module(module)
    if name is not None:
        assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}") is not None, (
            f"{doc}: from {module} import {name}"
        )


@pytest.mark.parametrize("doc,path", documented_paths())
def test_every_documented_dotted_path_resolves(doc, path):
    parts = path.split(".")
    for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            assert hasattr(obj, attr), f"{doc}: `{path}`: {'.'.join(parts[:i])} has no {attr}"
            obj = getattr(obj, attr)
        return
