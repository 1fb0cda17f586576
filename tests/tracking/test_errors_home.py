"""Every exception lives in greenai/errors.py (docs/design.md, layer 0): the tracker's and the
distributed job's modules define none of their own; they import them from there, and the
names they are known by stay importable where they were (re-exported)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import greenai.distributed
import greenai.tracking
from greenai import errors


def _modules(package: object) -> list[str]:
    return [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("module_name", [*_modules(greenai.tracking), *_modules(greenai.distributed)])
def test_no_exception_is_defined_outside_errors_py(module_name: str) -> None:
    module = importlib.import_module(module_name)
    own = [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module_name
    ]
    assert own == [], f"{module_name} defines {own}: move them to greenai/errors.py"


def test_the_moved_exceptions_are_still_importable_where_they_were() -> None:
    from greenai.distributed.channel import ChannelError
    from greenai.tracking.reading import TimedOut
    from greenai.tracking.tracker import TerminatedBySignal

    assert (TimedOut, ChannelError, TerminatedBySignal) == (
        errors.TimedOut,
        errors.ChannelError,
        errors.TerminatedBySignal,
    )
    assert issubclass(TerminatedBySignal, SystemExit) and issubclass(ChannelError, errors.GreenAIError)
