"""Names a package exports lazily: a table of name -> module, read on first use.

A package's ``__getattr__`` calls ``lazy_attribute`` so that importing the package loads none
of the modules behind its names (torch, Ray) until one of the names is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def lazy_attribute(package: str, names: Mapping[str, str], name: str) -> Any:
    """``name`` from the module ``names`` maps it to; an AttributeError (as Python words it)
    for a name ``package`` does not export."""
    module = names.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
