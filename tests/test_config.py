"""config: the one true/false rule (settings and job traces) and the one list of meter names
(the meters name themselves from it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from greenai.config import FALSE_WORDS, KNOWN_METERS, TRUE_WORDS, Config, MeterName, load_config, parse_bool
from greenai.errors import ConfigError
from greenai.schedule.trace_jobs import job_from_record

WORDS = [*((w, True) for w in TRUE_WORDS), *((w, False) for w in FALSE_WORDS), (True, True), (False, False)]


@pytest.mark.parametrize("word, value", [*WORDS, (" On ", True), ("N", False), ("YES", True), (1, True), (0, False)])
def test_one_true_false_rule(word: object, value: bool) -> None:
    assert parse_bool(word) is value


@pytest.mark.parametrize("word, value", [("on", True), ("off", False), ("y", True), ("n", False), ("", False)])
def test_settings_and_job_traces_read_flags_alike(tmp_path: Path, word: str, value: bool) -> None:
    # before, the environment refused y/n and job traces refused on/off
    assert load_config(tmp_path, environ={"GREENAI_SIMULATE": word}).simulate is value
    record = {"job_id": "a", "arrival": 0, "duration_s": 60, "interruptible": word}
    assert job_from_record(record, "jobs.csv line 2").interruptible is value


@pytest.mark.parametrize("word", ["maybe", "2", "tru", None])
def test_a_word_that_is_neither_says_what_is_accepted(tmp_path: Path, word: object) -> None:
    with pytest.raises(ConfigError, match=r"environment: simulate .* is not true or false: use 1, true, yes, y, on or"):
        load_config(tmp_path, environ={"GREENAI_SIMULATE": str(word)})
    with pytest.raises(ConfigError, match=r"jobs.csv line 2: interruptible .* is not true or false"):
        job_from_record({"job_id": "a", "arrival": 0, "duration_s": 60, "interruptible": word}, "jobs.csv line 2")


def test_meters_name_themselves_from_the_one_list(tmp_path: Path) -> None:
    from greenai.meters.base import Unavailable
    from greenai.meters.cpu_model import CpuModelMeter
    from greenai.meters.dram_model import DramModelMeter
    from greenai.meters.io import IoMeter
    from greenai.meters.nvml import probe_nvml
    from greenai.meters.process import ProcessScope
    from greenai.meters.rapl import probe_rapl
    from greenai.meters.simulated import make_simulated_meters
    from greenai.testing.fake_nvml import FakeGpu, FakeNvml

    assert KNOWN_METERS == {"rapl", "nvml", "cpu_model", "dram_model", "io", "simulated"}
    scope = ProcessScope(os.getpid())
    reported = {
        CpuModelMeter(scope).info().name,
        DramModelMeter(scope).info().name,
        IoMeter(scope).info().name,
        *(m.info().name for m in make_simulated_meters()),
    }
    gpus = FakeNvml(gpus=[FakeGpu()])
    for probed in (probe_rapl(tmp_path / "no-powercap"), probe_nvml(gpus), probe_nvml(FakeNvml(library_missing=True))):
        reported.add(probed.name if isinstance(probed, Unavailable) else probed.info().name)
    assert reported == KNOWN_METERS
    assert MeterName.NVML == "nvml" and type(MeterName.NVML) is str
    with pytest.raises(ConfigError, match="unknown meter 'papi'; known meters: cpu_model, dram_model, io, nvml"):
        Config(meters=("rapl", "papi")).validate()
