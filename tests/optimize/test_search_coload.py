"""optimize on a busy machine (a fake /proc/stat at the co-load reader's boundary): disturbed
rounds are measured again, a bounded number of times; what stays disturbed is said next to
the ratio and on the recommendation, which never claims a saving beyond the spread then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from greenai.cli.demo_cmd import before_after_table
from greenai.cli.render import make_console, render_study, study_to_dict
from greenai.config import Config
from greenai.hardware import coload
from greenai.optimize import measure
from greenai.optimize.candidate import OptimizeTask
from greenai.optimize.search import optimize
from greenai.optimize.transforms.runtime import Threads
from greenai.testing.fake_machine import FakeMachine

REPEATS = 3  # half of them (rounded up) must be quiet for a measurement to be quiet


def task() -> OptimizeTask:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    x = torch.randn(64, 32)
    return OptimizeTask(model, lambda m: 1.0, inputs=[x[i : i + 16] for i in range(0, 64, 16)], quality_name="q")


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMachine]:
    path = tmp_path / "proc-stat"
    with FakeMachine(path, cores=1.6) as fake:
        monkeypatch.setattr(coload, "PROC_STAT", path)
        monkeypatch.setattr(measure, "QUIET_WAIT_S", 0.3)  # the wait before re-measuring: short here
        yield fake


def run(tmp_path: Path, on_advance=None):
    return optimize(
        task(),
        [Threads(1)],
        repeats=REPEATS,
        min_repeat_s=0.25,
        config=Config(ledger=tmp_path / "l.db", sample_hz=50),
        on_advance=on_advance,
    )


def test_a_machine_busy_throughout_is_measured_again_then_said(machine: FakeMachine, tmp_path: Path) -> None:
    rounds: list[str] = []
    study = run(tmp_path, lambda done, total, what: rounds.append(what))
    remeasured = {w.split(":")[0] for w in rounds if w.startswith("re-measuring")}
    assert 1 <= len(remeasured) <= REPEATS  # measured again; bounded: as many extra rounds as planned
    base, threads = study.baseline.measurement, study.outcome("threads-1").measurement
    assert base is not None and threads is not None
    assert base.disturbed and threads.disturbed and base.disturbed_repeats >= REPEATS
    assert base.coload_cores is not None and base.coload_cores > 1.0  # 1.6 CPUs, read through a lagging fake
    assert study.disturbed("threads-1") and study.recommended is not None and not study.greener
    assert "measured on a busy machine" in study.caveat and "run again when the machine is quiet" in study.caveat
    assert "before acting on it" in study.caveat
    assert any("measured on a busy machine: other processes kept 1." in n for n in study.outcome("threads-1").notes)
    console = make_console()
    with console.capture() as captured:
        render_study(console, study)
    out = captured.get()
    assert "(busy machine)" in out  # next to the ratio
    assert "Recommendation: " in out and "(provisional: " in out and "before acting on it" in out
    assert "greener, beyond the measurement spread" not in out
    data = study_to_dict(study)
    assert data["caveat"] == study.caveat and data["coload"]["disturbed"] is True
    with console.capture() as captured:  # the demo's before/after table: the machine beside each
        console.print(before_after_table(study))
    assert "busy: 1." in captured.get() and "CPUs used by others" in captured.get()
    assert all(c["disturbed"] and c["ratio_disturbed"] for c in data["candidates"] if c["status"] == "measured")


def test_a_busy_spell_is_measured_again_and_leaves_no_mark(machine: FakeMachine, tmp_path: Path) -> None:
    def quiet_once_remeasuring(done: float, total: float, what: str) -> None:
        if what.startswith("re-measuring"):
            machine.cores = 0.0

    study = run(tmp_path, quiet_once_remeasuring)
    for name in ("baseline", "threads-1"):
        m = study.outcome(name).measurement
        assert m is not None and not m.disturbed and m.disturbed_repeats >= 1  # seen, then re-measured
        assert m.repeats >= 1
    assert study.caveat == "" and not study.disturbed("threads-1")
    assert study.coload is not None and study.coload.disturbed  # the run itself was busy for a while
