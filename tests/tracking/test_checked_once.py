"""`run.count`, `run.tally` and `run.phase` check a name once and then take the fast path (a
set lookup): a name or an amount that was never valid is refused however many good ones came
before it."""

from __future__ import annotations

import enum
import math
from pathlib import Path

import numpy as np
import pytest

from greenai.config import Config
from greenai.errors import ConfigError, InvalidNameError
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.tracker import Tracker


def _run(tmp_path: Path) -> Tracker:
    config = Config(ledger=tmp_path / "ledger.db", intensity="100", sample_hz=50.0, flush_interval_s=0.2).validate()
    return Tracker("checked", config=config, meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 100.0)])


class Name(str):
    """A str subclass: equal to "c" and hashed alike, so only a type check keeps it off the
    fast path."""


@pytest.mark.parametrize("amount", [math.nan, -math.inf, True, 10**400, np.float64(math.nan), "1"])
def test_a_counter_checked_before_still_refuses_a_bad_amount(tmp_path: Path, amount: object) -> None:
    with _run(tmp_path) as run:
        run.count("c", 1)
        run.tally("c", 2.5)
        with pytest.raises(ConfigError, match="finite number"):
            run.count("c", amount)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="finite number"):
            run.tally("c", amount)  # type: ignore[arg-type]
        run.count("c", 2**60)  # past the fast path's exact ints, still a finite number
        run.count(Name("c"), np.int64(1))
    assert run.result is not None
    assert run.result.snapshot.counters == {"c": pytest.approx(2**60 + 4.5)}


@pytest.mark.parametrize("name", [None, "", b"c", "bad\udcff"])
def test_bad_counter_and_phase_names_are_refused_after_good_ones(tmp_path: Path, name: object) -> None:
    with _run(tmp_path) as run:
        for _ in range(3):
            run.count("c")
            with run.phase("forward"):
                pass
        with pytest.raises(InvalidNameError):
            run.count(name)  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError):
            run.phase(name)  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError, match="must not contain"):
            run.phase("a/b")
        with pytest.raises(InvalidNameError, match="must not contain"):
            run.phase("a/b")  # refused again: a refused name is never remembered as checked
    assert run.result is not None
    assert run.result.snapshot.counters == {"c": 3}


class Stage(str, enum.Enum):
    TRAIN = "train"
    FORWARD = "forward"


class Unhashable(str):
    """A str subclass that defines __eq__ (and so is not hashable)."""

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


def test_str_subclass_and_enum_names_are_stored_as_their_text(tmp_path: Path) -> None:
    with _run(tmp_path) as run:
        with run.phase(Stage.TRAIN), run.phase(Stage.FORWARD):  # type: ignore[arg-type]
            run.count(Stage.TRAIN)  # type: ignore[arg-type]
        with run.phase(Unhashable("eval")):  # neither raises (it is no set member) nor is stored as itself
            run.tally(Unhashable("tokens"), 3)
    assert run.result is not None
    paths = {p.phase for p in run.result.snapshot.phases}
    assert {"train/forward", "eval"} <= paths and all(type(p) is str for p in paths)
    assert run.result.snapshot.counters == {"train": 1.0, "tokens": 3.0}
    assert all(type(name) is str for name in run.result.snapshot.counters)
