"""`greenai studies`: the optimization studies in the ledger, read back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers import as_json, assert_one_line_error, greenai
from torch import nn

from greenai.optimize.candidate import OptimizeTask
from greenai.optimize.search import optimize
from greenai.optimize.transforms.runtime import Threads


def test_studies_lists_and_shows_what_optimize_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "l.db"
    monkeypatch.setenv("GREENAI_LEDGER", str(ledger))
    model = nn.Sequential(nn.Linear(16, 8))
    x = torch.randn(64, 16)
    task = OptimizeTask(model, lambda m: 1.0, inputs=[(x[:32],), (x[32:],)])
    study = optimize(task, [Threads(1), Threads(10_000)], repeats=1, min_repeat_s=0.05)

    listed = as_json(greenai("studies", "--json", ledger=ledger))
    assert [s["study_id"] for s in listed] == [study.study_id] and listed[0]["candidates"] == 3
    shown = as_json(greenai("studies", study.study_id[:8], "--json", ledger=ledger))
    by_name = {r["name"]: r for r in shown}
    assert by_name["threads-1"]["status"] == "measured" and by_name["threads-1"]["energy_per_sample_j"] > 0
    assert by_name["threads-10000"]["status"] == "skipped" and "usable CPUs" in by_name["threads-10000"]["reason"]
    table = greenai("studies", study.study_id[:8], ledger=ledger)
    assert table.returncode == 0 and "threads-10000" in table.stdout and "skipped" in table.stdout
    assert_one_line_error(greenai("studies", "ffffffff", ledger=ledger), 1, "no optimization study matches")
