"""benchmarks/_zoo.py: the zoo as the scripts load it, and the parsing of an accuracy run's log."""

from __future__ import annotations

import argparse
import ast
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


def _shapes(model) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def test_the_held_out_set_is_disjoint_from_the_zoo() -> None:
    """The held-out models (tests/estimate/held_out_models.py) judge the estimator on models it
    was not shaped on: no name, no model class and no architecture (parameter shapes) is the
    zoo's, the file does not build on the zoo's, and each names a regime of issue 17."""
    pytest.importorskip("torch")
    zoo, held_out = _zoo.load_zoo(), _zoo.load_held_out()
    assert len(held_out) >= 8 and not set(zoo) & set(held_out)
    imported = {
        alias.name if isinstance(node, ast.Import) else (node.module or "")
        for node in ast.walk(ast.parse(_zoo.HELD_OUT_FILE.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[-1] == "models"}, imported
    zoo_built = {name: _zoo.build(name, 2)[0] for name in zoo}
    for name in held_out:
        model, x = _zoo.build(name, 2)
        for other, zoo_model in zoo_built.items():
            assert type(model) is not type(zoo_model), (name, other)
            assert _shapes(model) != _shapes(zoo_model), (name, other)
        assert _zoo.regime(name) != _zoo.ZOO_REGIME
    assert {_zoo.regime(n) for n in held_out} == {"large dense", "embedding table", "grouped conv", "attention encoder"}
    assert {_zoo.regime(n) for n in zoo} == {_zoo.ZOO_REGIME}


def test_the_held_out_regimes_are_what_their_names_say() -> None:
    """Large dense: tens of millions of parameters; embedding table: one table of hundreds of
    thousands of rows holding most parameters; grouped conv: grouped, not depthwise,
    convolutions; attention encoder: nn.TransformerEncoderLayer."""
    torch = pytest.importorskip("torch")
    for name in _zoo.load_held_out():
        model, _ = _zoo.build(name, 2)
        params = sum(p.numel() for p in model.parameters())
        kind = _zoo.regime(name)
        if kind == "large dense":
            assert params >= 10_000_000, name
        elif kind == "embedding table":
            tables = [m for m in model.modules() if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))]
            assert tables and tables[0].num_embeddings >= 100_000, name
            assert tables[0].weight.numel() > 0.9 * params, name
        elif kind == "grouped conv":
            convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
            assert any(1 < c.groups < c.in_channels for c in convs), name
        else:
            assert any(isinstance(m, torch.nn.TransformerEncoderLayer) for m in model.modules()), name


def test_the_sets_a_script_runs_on() -> None:
    ap = argparse.ArgumentParser()
    held_out = list(_zoo.load_held_out())
    assert _zoo.zoo_models(ap, "", "held-out") == held_out
    assert _zoo.zoo_models(ap, "", "all") == [*_zoo.load_zoo(), *held_out]
    assert _zoo.zoo_models(ap, "mlp,wide_mlp") == ["mlp", "wide_mlp"]  # any model by name
    with pytest.raises(ValueError):
        _zoo.models_of("nope")
