"""`MODULE:FUNCTION` specs, as the CLI takes them: a dotted module or a .py file, then a name."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greenai.errors import GreenAIError


def load_callable(spec: str, error: type[GreenAIError] = GreenAIError) -> Callable[..., Any]:
    """The function named by `spec` (`pkg.mod:build` or `path/file.py:build`)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise error(f"{spec!r} is not MODULE:FACTORY (e.g. mypkg.models:build or models.py:build)")
    module = import_module_or_file(module_name, error)
    function = getattr(module, attr, None)
    if not callable(function):
        raise error(f"{module_name} has no callable {attr!r}")
    return function


def call_factory(spec: str, error: type[GreenAIError] = GreenAIError) -> Any:
    """Call the function named by `spec` with no arguments; its failure is `error`."""
    function = load_callable(spec, error)
    try:
        return function()
    except Exception as e:
        raise error(f"{spec}() failed: {type(e).__name__}: {e}") from e


def import_module_or_file(name: str, error: type[GreenAIError] = GreenAIError) -> Any:
    path = Path(name)
    try:
        if name.endswith(".py"):
            if not path.is_file():
                raise error(f"no such file: {name}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` would, for local modules
        return importlib.import_module(name)
    except GreenAIError:
        raise
    except Exception as e:  # ImportError, SyntaxError, errors at import time
        raise error(f"cannot import {name}: {type(e).__name__}: {e}") from e
