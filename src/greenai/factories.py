"""`MODULE:FUNCTION` specs: the one parser and loader of a user's function, named on a command
line (`greenai estimate`, `greenai optimize`, `--forecast`) or in a job file (`callable`,
`estimate`), run in this process or in a job's subprocess.

The rule, in full:

- A spec is ``TARGET:NAME``, split at the last colon (a Windows drive letter stays in TARGET).
- A TARGET ending in ``.py`` is a file (``path/to/models.py``), imported as
  ``python path/to/models.py`` would import it: its directory is first on ``sys.path`` while
  the file runs, so it can import the modules beside it. It becomes ``sys.modules[stem]``
  (``models``), so that what it defines pickles and ``models:NAME`` reaches it afterwards. A
  stem already held by a module imported from another file (``json.py``) is refused rather
  than replaced: replacing it would break every later use of that module.
- Any other TARGET is a dotted module name (``pkg.models``), imported as ``python -m`` would:
  the current directory first on ``sys.path`` while it is imported.
- NAME is a function, or a dotted path to one (``build``, ``Zoo.build``).

``sys.path`` afterwards: the directory put first for the import is taken out again and, if it
was not on ``sys.path`` before, kept at its end. A function that imports a sibling module only
when it is called still finds it, and a file that happens to sit beside the spec's file can
never shadow a module installed elsewhere. A failed import leaves ``sys.path`` as it was.

Every problem is a `CallableError`, or the GreenAIError subclass a caller passes as `error`,
with a message for the person who wrote the spec.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from greenai.errors import CallableError, GreenAIError

_lock = threading.RLock()  # sys.path and sys.modules are edited by one load at a time
_file_modules: dict[str, ModuleType] = {}  # stem -> the module this loader made from a .py file


@dataclass(frozen=True)
class CallableSpec:
    """A parsed spec: `target` is a dotted module name or a path ending in .py; `name` is a
    function's name or a dotted path to one (``Zoo.build``)."""

    target: str
    name: str

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py")

    def __str__(self) -> str:
        return f"{self.target}:{self.name}"


def parse_callable_spec(spec: str, error: type[GreenAIError] = CallableError, noun: str = "FUNCTION") -> CallableSpec:
    """Check `spec`'s form without importing anything; `error` says what is accepted."""
    problem = spec_problem(spec)
    if problem:
        raise error(f"{spec!r} is not MODULE:{noun} (e.g. mypkg.models:build or path/to/models.py:build): {problem}")
    target, _, name = spec.rpartition(":")
    return CallableSpec(target, name)


def spec_problem(spec: object) -> str | None:
    """Why `spec` does not have a spec's form, in a few words; None if it has."""
    if not isinstance(spec, str):
        return f"a {type(spec).__name__}, not text"
    target, sep, name = spec.rpartition(":")
    if not sep:
        return "no ':' before the function's name"
    if not target:
        return "nothing before the ':'"
    if not name:
        return "nothing after the ':'"
    if not _dotted(name):
        return f"{name!r} is not a Python name (a function, or a dotted path to one)"
    if not target.endswith(".py") and not _dotted(target):
        return f"{target!r} is neither a dotted module name nor a file ending in .py"
    return None


def load_callable(spec: str, error: type[GreenAIError] = CallableError, noun: str = "FUNCTION") -> Callable[..., Any]:
    """The function named by `spec` (``pkg.mod:build``, ``path/file.py:build``, ``mod:Zoo.build``)."""
    parsed = parse_callable_spec(spec, error, noun)
    target: Any = import_target(parsed.target, error)
    for part in parsed.name.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise error(f"{parsed.target} has no callable {parsed.name!r}") from None
    if not callable(target):
        raise error(f"{spec} is not callable (it is a {type(target).__name__})")
    return target


def call_factory(spec: str, error: type[GreenAIError] = CallableError) -> Any:
    """Call the function named by `spec` with no arguments; its failure is `error`."""
    function = load_callable(spec, error, noun="FACTORY")
    try:
        return function()
    except Exception as e:
        raise error(f"{spec}() failed: {type(e).__name__}: {e}") from e


def import_target(target: str, error: type[GreenAIError] = CallableError) -> ModuleType:
    """Import a spec's TARGET (a .py file or a dotted module name) by the rule above."""
    try:
        if target.endswith(".py"):
            return _import_file(Path(target), error)
        if target in sys.modules:
            return importlib.import_module(target)
        with _lock, _first_on_path(os.getcwd()):
            return importlib.import_module(target)
    except GreenAIError:
        raise
    except Exception as e:  # ImportError, SyntaxError, errors at import time
        raise error(f"cannot import {target}: {type(e).__name__}: {e}") from e


def _import_file(path: Path, error: type[GreenAIError]) -> ModuleType:
    if not path.is_file():
        raise error(f"no such file: {path}")
    path = path.resolve()
    name = path.stem
    with _lock:
        held = sys.modules.get(name)
        if held is not None and held is not _file_modules.get(name):
            held_file = getattr(held, "__file__", None)
            if held_file and Path(held_file).resolve() == path:
                return held  # this very file, already imported by its name
            raise error(
                f"cannot import {path} as module {name!r}: a module of that name is already "
                f"imported ({held_file or 'built in'}); rename the file"
            )
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise error(f"cannot import {path}: not a Python source file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            with _first_on_path(str(path.parent)):
                spec.loader.exec_module(module)
        except BaseException:
            if held is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = held
            raise
        _file_modules[name] = module
        return module


@contextmanager
def _first_on_path(directory: str) -> Iterator[None]:
    """`directory` first on sys.path while the body runs; then out, and kept at the end of
    sys.path if it was not on it before and the body succeeded."""
    entry = directory  # a fresh string: removed below by identity, not by value
    sys.path.insert(0, entry)
    ok = False
    try:
        yield
        ok = True
    finally:
        for i, item in enumerate(sys.path):
            if item is entry:
                del sys.path[i]
                break
        if ok and directory not in sys.path:
            sys.path.append(directory)


def _dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))
