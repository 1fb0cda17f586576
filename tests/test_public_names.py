"""The package's public names never collide with its subpackages or modules.

Importing `greenai.X` binds the module X as an attribute of `greenai`; a lazy public name X
(`greenai.__getattr__`) would then be replaced by that module after its first import, and
`greenai.estimate(model, x)` worked once, then failed with "'module' object is not callable".
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import greenai


def test_no_public_name_is_also_a_module():
    modules = {m.name for m in pkgutil.iter_modules(greenai.__path__)}
    clashes = sorted(set(greenai.__all__) & modules)
    assert not clashes, f"public names that a subpackage or module would shadow: {clashes}"


def test_every_public_name_survives_importing_every_subpackage():
    """In a fresh interpreter: every public name, asked before and after importing each of
    the package's direct subpackages and modules, is the same object."""
    code = (
        "import importlib, pkgutil, greenai\n"
        "names = [n for n in greenai.__all__ if n != '__version__']\n"
        "before = {n: getattr(greenai, n) for n in names}\n"
        "for m in pkgutil.iter_modules(greenai.__path__):\n"
        "    if m.name in ('__main__',):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module('greenai.' + m.name)\n"
        "    except ImportError:\n"
        "        pass  # an optional extra that is not installed\n"
        "changed = [n for n in names if getattr(greenai, n) is not before[n]]\n"
        "assert not changed, changed\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_estimate_can_be_called_twice_after_importing_its_package():
    import torch
    from torch import nn

    importlib.import_module("greenai.estimation")
    model, x = nn.Linear(8, 2), torch.randn(4, 8)
    first = greenai.estimate(model, x, use_defaults=True)
    second = greenai.estimate(model, x, use_defaults=True)
    assert callable(greenai.estimate)
    assert first.inference.energy_j == second.inference.energy_j > 0
