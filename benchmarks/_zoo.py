"""The estimator's model zoo (tests/estimate/models.py) as the benchmarks use it, and the replay
of an accuracy run's log (benchmarks/estimate_accuracy.py's output) against profiles."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import ROOT, names

ZOO_FILE = ROOT / "tests" / "estimate" / "models.py"
# every model of the zoo, in its order (the default of the scripts that take --models)
ZOO_MODELS = "mlp,cnn,mobilenet,transformer,lstm,embedding,gru,audio1d,resnet"


@functools.cache
def load_zoo() -> dict[str, Any]:
    """`ZOO[name](batch) -> (model, example input)`, loaded from its file (tests/ is no package)."""
    spec = importlib.util.spec_from_file_location("zoo_models", ZOO_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ZOO


def build(name: str, batch: int, seed: int = 0) -> tuple[Any, Any]:
    """A freshly built zoo model and its input, seeded (as the estimate predicts it)."""
    import torch

    torch.manual_seed(seed)
    return load_zoo()[name](batch)


def zoo_models(ap: argparse.ArgumentParser, text: str) -> list[str]:
    """The models named in a comma-separated option ("" for all), or a usage error naming the
    zoo's."""
    zoo = load_zoo()
    chosen = names(text) or list(zoo)
    unknown = [n for n in chosen if n not in zoo]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; the zoo has {', '.join(zoo)}")
    return chosen


# -- replaying an accuracy run ---------------------------------------------------------------

# estimate_accuracy.py prints one line per case and round: "[1/3] mlp          b=4    inference time     0.12 ms ..."
CASE_LINE = re.compile(r"\[\d+/\d+\] (\S+)\s+b=(\d+)\s+(\w+)\s+time\s+([\d.]+) ms")


def measured_times(log: str) -> dict[tuple[str, int, str], float]:
    """Least time per case over the rounds of an estimate_accuracy.py log (as it keeps)."""
    times: dict[tuple[str, int, str], float] = {}
    for m in CASE_LINE.finditer(log):
        key = (m[1], int(m[2]), m[3])
        times[key] = min(times.get(key, float("inf")), float(m[4]) / 1e3)
    return times


def replayed_run(log: Path, profiles: list[Path]) -> dict[tuple[str, int, str], float]:
    """The measured times of an accuracy run's log, after checking the log and profiles exist."""
    missing = [str(f) for f in (log, *profiles) if not f.is_file()]
    if missing:
        raise SystemExit(
            f"no such file: {', '.join(missing)} (a log of benchmarks/estimate_accuracy.py "
            "and the profiles it or `greenai calibrate` saved)"
        )
    times = measured_times(log.read_text())
    if not times:
        raise SystemExit(f"{log}: no measured cases found (is it estimate_accuracy.py's output?)")
    return times


def zoo_counts(times: dict[tuple[str, int, str], float]) -> Iterator[tuple[tuple[str, int, str], float, Any]]:
    """(case, measured time, OpCounts) for every case of a replayed run, counted as the
    accuracy benchmark counts it."""
    from greenai.estimation.counting import count_ops

    for (name, batch, mode), t in sorted(times.items()):
        model, x = build(name, batch)
        yield (name, batch, mode), t, count_ops(model, x, training=mode == "training", optimizer="adam")
