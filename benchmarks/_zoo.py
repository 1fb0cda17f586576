"""The estimator's model zoo (tests/estimate/models.py) and its held-out set
(tests/estimate/held_out_models.py: models the estimator was not shaped on, judged apart) as the
benchmarks use them, and the replay of an accuracy run's log (benchmarks/estimate_accuracy.py's
output) against profiles."""

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
HELD_OUT_FILE = ROOT / "tests" / "estimate" / "held_out_models.py"
# every model of the zoo, in its order (the default of the scripts that take --models)
ZOO_MODELS = "mlp,cnn,mobilenet,transformer,lstm,embedding,gru,audio1d,resnet"
# the sets a script can be run on (estimate_accuracy.py --set)
SETS = ("zoo", "held-out", "all")
ZOO_REGIME = "zoo"  # the regime of every zoo model (the held-out ones name theirs)


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def load_zoo() -> dict[str, Any]:
    """`ZOO[name](batch) -> (model, example input)`, loaded from its file (tests/ is no package)."""
    return _load(ZOO_FILE, "zoo_models").ZOO


@functools.cache
def _held_out_module() -> Any:
    return _load(HELD_OUT_FILE, "held_out_models")


def load_held_out() -> dict[str, Any]:
    """`HELD_OUT[name](batch) -> (model, example input)`: models kept aside from the zoo."""
    return _held_out_module().HELD_OUT


def regime(name: str) -> str:
    """The regime a model stands for: "zoo" for the zoo's, the held-out set's own name else."""
    return _held_out_module().REGIMES.get(name, ZOO_REGIME)


def models_of(which: str) -> dict[str, Any]:
    """The builders of a set: "zoo", "held-out" or "all" (the zoo's first)."""
    if which not in SETS:
        raise ValueError(f"unknown set {which!r}: one of {', '.join(SETS)}")
    out: dict[str, Any] = {}
    if which in ("zoo", "all"):
        out.update(load_zoo())
    if which in ("held-out", "all"):
        out.update(load_held_out())
    return out


def build(name: str, batch: int, seed: int = 0) -> tuple[Any, Any]:
    """A freshly built model of the zoo or of the held-out set and its input, seeded (as the
    estimate predicts it)."""
    import torch

    torch.manual_seed(seed)
    return models_of("all")[name](batch)


def zoo_models(ap: argparse.ArgumentParser, text: str, which: str = "zoo") -> list[str]:
    """The models named in a comma-separated option ("" for the whole set `which`), or a usage
    error naming the set's."""
    known = models_of("all" if text else which)
    chosen = names(text) or list(known)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; the zoo and the held-out set have {', '.join(known)}")
    return chosen


# -- replaying an accuracy run ---------------------------------------------------------------

# estimate_accuracy.py prints one line per case and round: "[1/3] mlp          b=4    inference time     0.12 ms ..."
CASE_LINE = re.compile(r"\[\d+/\d+\] (\S+)\s+b=(\d+)\s+(\w+)\s+time\s+([\d.]+) ms")
# ... "pred     0.10 (-16.7%)  energy     1.00 mJ pred ..."
ENERGY = re.compile(r"energy\s+([\d.]+) mJ")


def measured_cases(log: str) -> dict[tuple[str, int, str], tuple[float, float]]:
    """(time, energy) per case of an estimate_accuracy.py log: the round of least time (as it
    keeps), its energy (nan in logs without it)."""
    cases: dict[tuple[str, int, str], tuple[float, float]] = {}
    for line in log.splitlines():
        m = CASE_LINE.search(line)
        if m is None:
            continue
        key, t = (m[1], int(m[2]), m[3]), float(m[4]) / 1e3
        e = ENERGY.search(line)
        if key not in cases or t < cases[key][0]:
            cases[key] = (t, float(e[1]) / 1e3 if e else float("nan"))
    return cases


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
