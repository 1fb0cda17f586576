"""Every exception (and warning class) lives in greenai/errors.py (docs/design.md, layer 0): no
other module of greenai defines one; they import them from there, and the names they are known
by stay importable where they were (re-exported). The one exception is the fake NVML module,
which mimics pynvml's own NVMLError classes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import greenai
from greenai import errors

# the fake of pynvml has pynvml's error classes (NVMLError and its subclasses): that is what it fakes
VENDOR_FAKES = {"greenai.testing.fake_nvml"}


def _modules(package: object) -> list[str]:
    return [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]  # type: ignore[attr-defined]


MODULES = [m for m in _modules(greenai) if m not in {"greenai.errors", "greenai.__main__", *VENDOR_FAKES}]


def test_every_module_is_checked() -> None:
    assert {"greenai.tracking.tracker", "greenai.estimation.profile", "greenai.cli.main"} <= set(MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_no_exception_is_defined_outside_errors_py(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:  # an optional extra that is not installed
        pytest.skip(f"{module_name}: {e}")
    own = [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module_name
    ]
    assert own == [], f"{module_name} defines {own}: move them to greenai/errors.py"


def test_the_moved_exceptions_are_still_importable_where_they_were() -> None:
    from greenai.distributed.channel import ChannelError
    from greenai.estimation.profile import ProfileWarning
    from greenai.tracking.reading import TimedOut
    from greenai.tracking.tracker import TerminatedBySignal

    assert (TimedOut, ChannelError, TerminatedBySignal, ProfileWarning) == (
        errors.TimedOut,
        errors.ChannelError,
        errors.TerminatedBySignal,
        errors.ProfileWarning,
    )
    assert issubclass(TerminatedBySignal, SystemExit) and issubclass(ChannelError, errors.GreenAIError)
