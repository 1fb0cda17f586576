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


def test_studies_says_ratios_as_optimize_does_and_names_the_task(tmp_path: Path) -> None:
    """A candidate that costs more than the baseline is "1.16x more" (it read "0.86x less"), the
    baseline row says "baseline" (it read "1.00x less"), and the task's name is shown."""
    from greenai.cli.render import energy_ratio_text
    from greenai.config import Config
    from greenai.ledger import Ledger
    from greenai.ledger.candidates import CandidateRow, record_candidates
    from greenai.tracking.tracker import Tracker

    ledger = tmp_path / "l.db"
    tracker = Tracker("optimize mytask.py:task", config=Config(simulate=True, ledger=ledger)).start()
    run_id = tracker.stop().run_id
    rows = [
        CandidateRow("s" * 32, "baseline", "measured", run_id=run_id, energy_per_sample_j=1.0e-3, quality=0.9),
        CandidateRow("s" * 32, "threads-1", "measured", run_id=run_id, energy_per_sample_j=1.16e-3, quality=0.9),
        CandidateRow("s" * 32, "int8-dynamic", "measured", run_id=run_id, energy_per_sample_j=0.5e-3, quality=0.9),
    ]
    with Ledger(ledger) as store:
        record_candidates(store, rows)
    shown = greenai("studies", "ssss", ledger=ledger)
    assert shown.returncode == 0, shown.stderr
    cells = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 3}
    assert "baseline" in cells["baseline"].split("│")[5] and "x less" not in cells["baseline"]
    assert "1.16x more" in cells["threads-1"] and energy_ratio_text(1.0 / 1.16) == "1.16x more"
    assert "2.00x less" in cells["int8-dynamic"]
    assert "mytask.py:task" in shown.stdout
    listed = greenai("studies", ledger=ledger)
    assert "mytask.py:task" in listed.stdout
    data = as_json(greenai("studies", "ssss", "--json", ledger=ledger))
    assert {r["task"] for r in data} == {"mytask.py:task"}
