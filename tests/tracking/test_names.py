"""Names the ledger must store are checked when given, not at the next write: a counter,
phase or tag that SQLite cannot take (None, not a string, empty, a lone surrogate that UTF-8
cannot encode) made every flush and the final write fail, and the run was lost (0 J, left
`incomplete`). Refused with a ConfigError at the call; the run goes on and is stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.errors import ConfigError
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.tracker import Tracker

BAD_NAMES = [None, "", 3, b"steps", ("a",), "lone \ud800 surrogate"]


def _config(tmp_path: Path) -> Config:
    return Config(ledger=tmp_path / "ledger.db", intensity="100", sample_hz=50.0, flush_interval_s=0.1).validate()


def _gpu() -> SimulatedMeter:
    return SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)


def _assert_stored(run: Tracker, tmp_path: Path) -> None:
    result = run.result
    assert result is not None and result.stored is True and result.status == "completed"
    with Ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get_run(run.run_id)
    assert record.status == "completed"
    assert record.snapshot.energy_j == pytest.approx(result.energy_j) and record.snapshot.energy_j > 0


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_counter_name_the_ledger_cannot_store_is_refused_and_the_run_kept(tmp_path: Path, name: object) -> None:
    with Tracker("count-name", config=_config(tmp_path), meters=[_gpu()]) as run:
        with pytest.raises(ConfigError, match="counter name"):
            run.count(name, 3)  # type: ignore[arg-type]
        run.count("steps", 2)
        time.sleep(0.3)  # flushes go through
    assert run.result is not None and run.result.snapshot.counters == {"steps": 2.0}
    _assert_stored(run, tmp_path)


@pytest.mark.parametrize("name", [*BAD_NAMES, "a/b"], ids=repr)
def test_a_phase_name_the_ledger_cannot_store_is_refused_and_the_run_kept(tmp_path: Path, name: object) -> None:
    with Tracker("phase-name", config=_config(tmp_path), meters=[_gpu()]) as run:
        with pytest.raises(ConfigError, match="phase name"):
            run.phase(name)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="phase name"):
            run.lane(name)  # type: ignore[arg-type]
        with run.phase("train"):
            time.sleep(0.3)
    assert run.result is not None and {p.phase for p in run.result.snapshot.phases} >= {"train"}
    _assert_stored(run, tmp_path)


@pytest.mark.parametrize(
    "tags",
    [{None: "x"}, {"": "x"}, {3: "x"}, {"k": None}, {"k": object()}, {"k": "\ud800"}, {"\udcff": "v"}, ["k", "v"]],
    ids=repr,
)
def test_tags_the_ledger_cannot_store_are_refused_before_the_run_starts(tmp_path: Path, tags: object) -> None:
    with pytest.raises(ConfigError, match="tag"):
        Tracker("tags", config=_config(tmp_path), meters=[_gpu()], tags=tags)  # type: ignore[arg-type]


def test_tag_values_that_are_numbers_are_kept_as_text(tmp_path: Path) -> None:
    with Tracker("tags", config=_config(tmp_path), meters=[_gpu()], tags={"lr": 0.1, "epochs": 3, "ok": True}) as run:
        time.sleep(0.1)
    assert run.tags == {"lr": "0.1", "epochs": "3", "ok": "True"}
    _assert_stored(run, tmp_path)


@pytest.mark.parametrize("name", [None, 3, "bad \ud800"], ids=repr)
def test_a_run_name_the_ledger_cannot_store_is_refused(tmp_path: Path, name: object) -> None:
    with pytest.raises(ConfigError, match="run name"):
        Tracker(name, config=_config(tmp_path), meters=[_gpu()])  # type: ignore[arg-type]
