"""benchmarks/_zoo.py: the zoo as the scripts load it, and the parsing of an accuracy run's log."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import _zoo

LOG = """calibrated in 58.1 s (budget 60 s)
[1/2] mlp          b=4    inference time     0.12 ms pred     0.10 (-16.7%)  energy     1.00 mJ pred     0.90 (-10.0%)
[1/2] mlp          b=4    training  time     0.50 ms pred     0.55 (+10.0%)  energy     4.00 mJ pred     4.40 (+10.0%)
[2/2] mlp          b=4    inference time     0.10 ms pred     0.10 ( +0.0%)  energy     1.00 mJ pred     0.90 (-10.0%)
[2/2] mlp          b=4    training  time     0.60 ms pred     0.55 ( -8.3%)  energy     4.00 mJ pred     4.40 (+10.0%)
"""


def test_the_default_model_list_is_the_whole_zoo_in_order() -> None:
    assert _zoo.ZOO_MODELS == ",".join(_zoo.load_zoo())
    assert _zoo.load_zoo() is _zoo.load_zoo()  # loaded once per process


def test_zoo_models_names_the_zoo_on_a_typo() -> None:
    ap = argparse.ArgumentParser()
    assert _zoo.zoo_models(ap, "gru,mlp") == ["gru", "mlp"]
    assert _zoo.zoo_models(ap, "") == list(_zoo.load_zoo())
    with pytest.raises(SystemExit):
        _zoo.zoo_models(ap, "mlp,nope")


def test_a_replayed_run_keeps_each_cases_least_time_over_its_rounds(tmp_path: Path) -> None:
    assert _zoo.measured_times(LOG) == {
        ("mlp", 4, "inference"): pytest.approx(0.10e-3),
        ("mlp", 4, "training"): pytest.approx(0.50e-3),
    }
    log, profile = tmp_path / "run.log", tmp_path / "p.json"
    with pytest.raises(SystemExit, match="no such file"):
        _zoo.replayed_run(log, [profile])
    log.write_text("nothing measured\n")
    profile.write_text("{}")
    with pytest.raises(SystemExit, match="no measured cases"):
        _zoo.replayed_run(log, [profile])
    log.write_text(LOG)
    assert len(_zoo.replayed_run(log, [profile])) == 2
