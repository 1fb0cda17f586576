"""Which aten operator calls start a Python-level call.

Eager PyTorch pays the interpreter's share of a call (the Python frame, argument parsing,
the binding) once per call made from Python, not once per aten operator that call issues
from C++: one ``_VF.gru`` call issues hundreds of operators (per time step: matmuls, gates,
activations), ``F.linear`` issues ``t`` and ``addmm``. The class overheads calibrate.py fits
are measured on operators called one at a time from Python; `predict` takes the Python share
(``Profile.python_call_s``, measured by ``eager.python_call_cost``) off the operators
issued from C++.

How it is seen while counting, with a ``sys.setprofile`` hook: Python calls into C functions
(``c_call`` ... ``c_return``) are followed. The first operator recorded after Python ran at
the top level (a C call started, a Python function called or returned, outside any C call)
starts a Python call; an operator that reaches the mode outside any C call comes from
operator syntax (``a * b``: a type slot, no profile event) and starts one too. Python that
C++ calls back while an operator is dispatched (dispatch-rule lookups, the mode itself,
garbage-collection callbacks) runs inside a C call and is not the model's. The hook is off
while the mode handles an operator (fake tensors run much Python there).
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any, Self

_C_EVENTS = {"c_call": 1, "c_return": -1, "c_exception": -1}


class PythonCalls:
    """Tracks, for a dispatch mode, whether the operator it records started a Python call.

    Use as a context manager around the counted run; call `enter()`/`exit()` around each
    operator the mode sees and `take()` when one is recorded."""

    def __init__(self) -> None:
        self.fresh = True  # Python ran at the top level since the last recorded operator
        self._in_c = 0  # C calls (made from Python) under way
        self._depth = 0  # operators being dispatched
        self._active = False
        self._previous: Any = None

    def __enter__(self) -> Self:
        self._previous = sys.getprofile()
        self._active, self._in_c, self.fresh = True, 0, True
        sys.setprofile(self._event)
        return self

    def __exit__(self, *exc: object) -> None:
        self._active = False
        sys.setprofile(self._previous)

    def _event(self, frame: FrameType, event: str, arg: Any) -> None:
        if arg is sys.setprofile:  # the hook switching itself off and on (calls unpaired)
            return
        step = _C_EVENTS.get(event, 0)
        if self._in_c == 0 and step >= 0:
            self.fresh = True
        self._in_c = max(self._in_c + step, 0)

    def enter(self) -> None:
        """An operator reaches the mode (before its own Python runs)."""
        self._depth += 1
        if self._depth != 1 or not self._active:
            return  # issued from inside another operator (a decomposition): C++
        if self._in_c == 0:
            self.fresh = True  # operator syntax (a + b): a call of its own
        sys.setprofile(None)

    def exit(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._active:
            sys.setprofile(self._event)

    def take(self) -> bool:
        """Whether the operator being recorded started a Python call (at most one per call)."""
        fresh, self.fresh = self.fresh, False
        return fresh
