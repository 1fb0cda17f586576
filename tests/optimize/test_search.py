"""The search: candidates built, judged, measured in one tracked run, and recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from greenai.errors import TransformSkipped
from greenai.ledger import Ledger
from greenai.ledger.candidates import study_candidates
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.plot import plot_study
from greenai.optimize.runtime import BatchSize, Threads
from greenai.optimize.saved import load_model, save_model
from greenai.optimize.search import optimize


@dataclass(frozen=True)
class Shrink:
    """A real change of work: keep only the first `keep` hidden units (quality drops)."""

    keep: int
    name: str = "shrink"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        model = candidate.model_copy()
        first, last = model[0], model[2]
        small_first = nn.Linear(first.in_features, self.keep)
        small_last = nn.Linear(self.keep, last.out_features)
        with torch.no_grad():
            small_first.weight.copy_(first.weight[: self.keep])
            small_first.bias.copy_(first.bias[: self.keep])
            small_last.weight.copy_(last.weight[:, : self.keep])
            small_last.bias.copy_(last.bias)
        return candidate.derive(self.name, nn.Sequential(small_first, nn.ReLU(), small_last))


@dataclass(frozen=True)
class NeverApplies:
    name: str = "never"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        raise TransformSkipped("this model has no layer it can change")


@dataclass(frozen=True)
class Broken:
    name: str = "broken"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        raise RuntimeError("bug inside the transform")


def _task() -> OptimizeTask:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 8))
    x = torch.randn(256, 64)
    with torch.no_grad():
        reference = model(x)

    def fidelity(m: nn.Module) -> float:
        if any(p.numel() == 0 for p in m.parameters()):
            raise ValueError("a layer has no units")
        with torch.no_grad():
            out = m(x)
        return float(nn.functional.cosine_similarity(out, reference).min())

    return OptimizeTask(model, fidelity, inputs=[x[i:i + 32] for i in range(0, 256, 32)],
                        quality_name="min cosine")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ["GREENAI_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "ledger.db")
    task = _task()
    return optimize(task, [Threads(1), BatchSize(128), Shrink(32), NeverApplies(), (NeverApplies(), Threads(1)),
                           Broken(), Shrink(0, name="shrink-0")],
                    max_quality_drop=0.001, repeats=3, min_repeat_s=0.1), task


def test_every_candidate_is_accounted_for(study) -> None:
    result, _ = study
    status = {o.name: (o.status, o.reason) for o in result.outcomes}
    assert status["baseline"][0] == "measured"
    assert status["threads-1"][0] == "measured"
    assert status["batch-128"][0] == "measured"
    assert status["never"] == ("skipped", "this model has no layer it can change")
    assert status["never+threads-1"][0] == "skipped" and "never" in status["never+threads-1"][1]
    assert status["broken"][0] == "failed" and "bug inside the transform" in status["broken"][1]
    # Shrink(0) builds but its evaluation raises: that candidate fails, the search goes on
    assert status["shrink"][0] == "measured"
    assert status["shrink-0"][0] == "failed" and "evaluation raised ValueError" in status["shrink-0"][1]


def test_measurements_carry_provenance_and_the_bound_picks_within_quality(study) -> None:
    result, _ = study
    for o in result.outcomes:
        if o.status == "measured":
            m = o.measurement
            assert m is not None and m.energy_per_sample_j > 0 and m.time_per_sample_s > 0
            assert m.provenance.value in {"measured", "integrated", "estimated", "simulated"}
            assert m.rel_uncertainty >= m.rel_spread >= 0
    shrink = result.outcome("shrink")
    assert shrink.quality is not None and shrink.quality < result.bound  # lost fidelity
    assert shrink.parameters < result.baseline.parameters
    assert result.recommended is not None and result.recommended.quality >= result.bound
    assert result.recommended.name != "shrink"
    assert result.front and result.front[0] == min(
        (o for o in result.outcomes if o.measurement), key=lambda o: o.energy_j).name


def test_candidates_land_in_the_ledger(study) -> None:
    result, _ = study
    with Ledger(result.ledger_path) as ledger:
        rows = {r.name: r for r in study_candidates(ledger, result.study_id[:8])}
        run = ledger.get_run(result.run_id)
    assert set(rows) == {o.name for o in result.outcomes}
    assert rows["never"].status == "skipped" and rows["never"].reason
    assert rows["threads-1"].run_id == result.run_id and rows["threads-1"].energy_per_sample_j > 0
    assert rows["threads-1"].provenance == run.snapshot.provenance.value
    assert run.start.tags["study"] == result.study_id


def test_plot_and_saved_model_round_trip(study, tmp_path: Path) -> None:
    result, task = study
    png = plot_study(result, tmp_path / "pareto.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = result.recommended
    saved = save_model(tmp_path / "model.pt", rec.candidate.model, {"name": rec.name})
    model, facts = load_model(saved)
    assert facts == {"name": rec.name}
    assert task.evaluate(model) == pytest.approx(rec.quality)
