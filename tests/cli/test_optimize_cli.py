"""`greenai optimize` as a user runs it: a factory file, pipelines, the table, the files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch
from tests.helpers import as_json, assert_one_line_error, greenai

from greenai.optimize.saved import load_model

FACTORY = textwrap.dedent("""
    import threading
    import torch
    from torch import nn
    from greenai.optimize.candidate import OptimizeTask

    def task():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 4))
        x = torch.randn(128, 32)
        reference = model(x).detach()

        def fidelity(m):
            with torch.no_grad():
                return float(nn.functional.cosine_similarity(m(x), reference).min())

        return OptimizeTask(model, fidelity, inputs=[(x[i:i + 32],) for i in range(0, 128, 32)],
                            quality_name="min cosine")

    def not_a_task():
        return 42

    def no_inputs():
        made = task()
        made.inputs = []
        return made

    class Unsaveable(nn.Module):
        # neither picklable (a lock) nor traceable (a non-tensor output)

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(32, 4)
            self.lock = threading.Lock()

        def forward(self, x):
            return {"out": self.lin(x), "rows": x.shape[0]}

    def unsaveable():
        model = Unsaveable()
        x = torch.randn(64, 32)
        return OptimizeTask(model, lambda m: 1.0, inputs=[(x[i:i + 32],) for i in range(0, 64, 32)])
""")


def _factory(tmp_path: Path) -> str:
    path = tmp_path / "mytask.py"
    path.write_text(FACTORY)
    return f"{path}:task"


def test_optimize_prints_json_saves_the_model_and_the_plot(tmp_path: Path) -> None:
    proc = greenai(
        "optimize",
        _factory(tmp_path),
        "--try",
        "threads=1",
        "--try",
        "int8-dynamic",
        "--try",
        "depthwise-separable",
        "--repeats",
        "2",
        "--max-quality-drop",
        "0.05",
        "--save",
        str(tmp_path / "best.pt"),
        "--plot",
        str(tmp_path / "plot.png"),
        "--json",
        ledger=tmp_path / "l.db",
        timeout=240,
    )
    data = as_json(proc)
    by_name = {c["name"]: c for c in data["candidates"]}
    assert set(by_name) == {"baseline", "threads-1", "int8-dynamic", "depthwise-separable"}
    assert by_name["depthwise-separable"]["status"] == "skipped"
    assert "Conv2d" in by_name["depthwise-separable"]["reason"]
    for name in ("baseline", "threads-1", "int8-dynamic"):
        c = by_name[name]
        assert c["status"] == "measured" and c["energy_per_sample_j"] > 0 and c["provenance"]
    assert by_name["int8-dynamic"]["quality"] > 0.95
    assert data["recommended"] in by_name
    model, facts = load_model(tmp_path / "best.pt")
    assert facts["name"] == data["recommended"]
    assert model(torch.randn(2, 32)).shape == (2, 4)
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_optimize_table_output(tmp_path: Path) -> None:
    proc = greenai(
        "optimize",
        _factory(tmp_path),
        "--try",
        "threads=1",
        "--repeats",
        "1",
        "--save",
        str(tmp_path / "m.pt"),
        "--plot",
        str(tmp_path / "p.png"),
        ledger=tmp_path / "l.db",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Candidates: energy per sample" in proc.stdout and "threads-1" in proc.stdout
    assert "Recommendation:" in proc.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    factory = _factory(tmp_path)
    assert_one_line_error(
        greenai("optimize", factory, "--try", "int9-magic", ledger=tmp_path / "l.db"),
        1,
        "unknown transform 'int9-magic'",
        "int8-dynamic",
    )
    assert_one_line_error(
        greenai("optimize", factory.replace(":task", ":not_a_task"), ledger=tmp_path / "l.db"),
        1,
        "must return an OptimizeTask",
    )
    assert_one_line_error(
        greenai("optimize", "no_such_module_xyz:task", ledger=tmp_path / "l.db"), 1, "cannot import no_such_module_xyz"
    )
    # a bad --try is refused before the factory runs (it may train a model first)
    assert_one_line_error(
        greenai("optimize", "no_such_module_xyz:task", "--try", "int9-magic", ledger=tmp_path / "l.db"),
        1,
        "unknown transform 'int9-magic'",
    )
    assert_one_line_error(
        greenai("optimize", factory.replace(":task", ":no_inputs"), ledger=tmp_path / "l.db"),
        1,
        "the task has no input batches to measure energy on",
    )
    assert_one_line_error(
        greenai("optimize", factory, "--max-quality-drop", "-0.1", ledger=tmp_path / "l.db"),
        2,
        "--max-quality-drop",
        "greater than or equal to 0",
    )


def test_a_model_that_cannot_be_saved_still_shows_the_results(tmp_path: Path) -> None:
    factory = _factory(tmp_path).replace(":task", ":unsaveable")
    proc = greenai(
        "optimize",
        factory,
        "--try",
        "threads=1",
        "--repeats",
        "1",
        "--json",
        "--save",
        str(tmp_path / "m.pt"),
        "--plot",
        str(tmp_path / "p.png"),
        ledger=tmp_path / "l.db",
        timeout=240,
    )
    data = as_json(proc)
    assert data["recommended"] in {"baseline", "threads-1"} and data["saved_model"] is None
    assert "neither pickled nor traced" in data["save_error"]
    assert not (tmp_path / "m.pt").exists() and (tmp_path / "p.png").exists()
