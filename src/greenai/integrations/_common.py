"""What the integrations share: the settings of the runs a callback starts, the size of a
batch, this process's rank, and the phases a callback has opened. Imports no framework (tensors are recognised by their `shape`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

# greenai.distributed registers the joiner: under torchrun (or Lightning's DDP) every rank's run
# an integration makes joins one job, each device counted once
import greenai.distributed  # noqa: F401
from greenai.tracking.progress import DEFAULT_PERIODIC_PHASES
from greenai.tracking.tracker import Tracker

MAX_DEPTH = 3  # how deep batch_size_of looks into nested sequences and mappings


def run_settings(run: Tracker | None, tracker_kwargs: dict[str, Any], eval_phase: str) -> dict[str, Any]:
    """The Tracker settings a callback starts its runs with: refused beside a run of the user's
    own (whose settings are the user's), and the framework's evaluation phase plus the
    periodic ones counted as evaluation unless the caller names its own `eval_phases`."""
    if run is not None and tracker_kwargs:
        raise ValueError(f"with run= the Tracker is yours; {', '.join(tracker_kwargs)} go to greenai.track(...)")
    return {"eval_phases": (eval_phase, *DEFAULT_PERIODIC_PHASES), **tracker_kwargs}


def batch_size_of(batch: Any, _depth: int = 0) -> int | None:
    """The first dimension of the first tensor found in `batch` (a tensor, or a tuple, list or
    mapping holding one, a few levels deep); None when there is none."""
    shape = getattr(batch, "shape", None)
    if shape is not None:
        try:
            return int(shape[0]) if len(shape) else None
        except (TypeError, ValueError, IndexError):
            return None
    if _depth >= MAX_DEPTH:
        return None
    if isinstance(batch, Mapping):
        items: Any = batch.values()
    elif isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        items = batch
    else:
        return None
    for item in items:
        n = batch_size_of(item, _depth + 1)
        if n is not None:
            return n
    return None


def process_rank() -> int:
    """This process's global rank: torch.distributed's when a process group is up (looked at
    only if torch.distributed was already imported), else the RANK variable the launchers
    (torchrun, Lightning, accelerate) set, else 0."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None:
        try:
            if dist.is_available() and dist.is_initialized():
                return int(dist.get_rank())
        except Exception:  # an unusual build: fall back on the environment
            pass
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_rank_zero() -> bool:
    return process_rank() == 0


class OpenPhases:
    """The phases a callback has entered on its run, by name, so that each is left once and
    all of them are left when the framework reports an exception or the run ends. A phase
    object is made once per name: entering and leaving are the tracker's own cheap appends."""

    def __init__(self, run: Tracker) -> None:
        self._run = run
        self._phases: dict[str, Any] = {}
        self._stack: list[str] = []

    def enter(self, name: str) -> None:
        phase = self._phases.get(name)
        if phase is None:
            phase = self._phases[name] = self._run.phase(name)
        phase.__enter__()
        self._stack.append(name)

    def is_open(self, name: str) -> bool:
        return name in self._stack

    def exit(self, name: str) -> None:
        """Leave `name` (and any phase entered after it that is still open)."""
        if name not in self._stack:
            return
        while self._stack:
            top = self._stack.pop()
            self._phases[top].__exit__(None, None, None)
            if top == name:
                return

    def close_all(self) -> None:
        while self._stack:
            self._phases[self._stack.pop()].__exit__(None, None, None)

    @property
    def depth(self) -> int:
        return len(self._stack)
