"""The search: candidates built, judged, measured in one tracked run, and recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from greenai.config import load_config
from greenai.errors import ConfigError, TransformSkipped
from greenai.ledger import Ledger
from greenai.ledger.candidates import study_candidates
from greenai.optimize.candidate import Candidate, OptimizeTask
from greenai.optimize.plot import plot_study
from greenai.optimize.saved import load_model, save_model
from greenai.optimize.search import optimize
from greenai.optimize.transforms.runtime import BatchSize, Threads


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

    return OptimizeTask(model, fidelity, inputs=[x[i : i + 32] for i in range(0, 256, 32)], quality_name="min cosine")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    config = load_config(ledger=tmp_path_factory.mktemp("ledger") / "ledger.db")  # no env left behind
    task = _task()
    return optimize(
        task,
        [
            Threads(1),
            BatchSize(128),
            Shrink(32),
            NeverApplies(),
            (NeverApplies(), Threads(1)),
            Broken(),
            Shrink(0, name="shrink-0"),
        ],
        max_quality_drop=0.001,
        repeats=3,
        min_repeat_s=0.1,
        config=config,
    ), task


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
    assert (
        result.front
        and result.front[0] == min((o for o in result.outcomes if o.measurement), key=lambda o: o.energy_j).name
    )


def test_candidates_land_in_the_ledger(study) -> None:
    result, _ = study
    with Ledger(result.ledger_path) as ledger:
        rows = {r.name: r for r in study_candidates(ledger, result.study_id[:8])}
        run = ledger.get_run(result.run_id)
    assert set(rows) == {o.name for o in result.outcomes}
    assert rows["never"].status == "skipped" and rows["never"].reason
    # skipped rows link to the study's run too, but carry no energy nor its provenance
    assert rows["never"].run_id == result.run_id
    assert rows["never"].energy_per_sample_j is None and rows["never"].provenance == ""
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


# ------------------------------------------------------------------ failures while measured


class Flaky(nn.Module):
    """Runs like `inner` until its `fail_at`-th call, then raises on every call."""

    def __init__(self, inner: nn.Module, fail_at: int) -> None:
        super().__init__()
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise RuntimeError(f"kernel crashed on call {self.calls}")
        return self.inner(x)


@dataclass(frozen=True)
class MakeFlaky:
    """Calls: 1 = the evaluation's check batch, 2 = the evaluation, 3.. = the 4 warm-up
    batches (3-6), then the rounds (7..)."""

    fail_at: int
    name: str = "flaky"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        return candidate.derive(self.name, Flaky(candidate.model_copy(), self.fail_at))


@dataclass(frozen=True)
class Noise:
    """Perturbs the weights: fidelity drops."""

    scale: float
    name: str = "noise"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        model = candidate.model_copy()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(self.scale * torch.randn_like(p))
        return candidate.derive(self.name, model)


@dataclass(frozen=True)
class NanQuality:
    name: str = "nan-quality"

    def __call__(self, candidate: Candidate, task: OptimizeTask) -> Candidate:
        model = candidate.model_copy()
        model.nan_quality = True
        return candidate.derive(self.name, model)


def _negative_task() -> OptimizeTask:
    """Quality = -1 - max abs error to the reference outputs: negative, baseline -1."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    x = torch.randn(64, 16)
    with torch.no_grad():
        reference = model(x)

    def quality(m: nn.Module) -> float:
        if getattr(m, "nan_quality", False):
            return float("nan")
        with torch.no_grad():
            return -1.0 - float((m(x) - reference).abs().max())

    return OptimizeTask(model, quality, inputs=[x[i : i + 16] for i in range(0, 64, 16)], quality_name="-1-err")


def test_a_candidate_that_raises_while_measured_fails_alone(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    task = _negative_task()
    config = load_config(ledger=tmp_path / "l.db")
    result = optimize(
        task,
        [(Threads(1), MakeFlaky(4, name="flaky-warmup")), MakeFlaky(8, name="flaky-round"), Noise(0.5), NanQuality()],
        min_quality=-1.02,
        repeats=2,
        min_repeat_s=0.05,
        config=config,
    )
    status = {o.name: (o.status, o.reason) for o in result.outcomes}
    # the flaky models passed evaluation and broke while measured (second warm-up batch;
    # first round): each is failed with the error, the others are measured
    warmup = status["threads-1+flaky-warmup"]
    assert warmup[0] == "failed" and "warm-up" in warmup[1] and "kernel crashed on call 4" in warmup[1]
    assert status["flaky-round"][0] == "failed" and "round 1" in status["flaky-round"][1]
    assert status["nan-quality"][0] == "failed" and "not a finite number" in status["nan-quality"][1]
    assert status["threads-1"][0] == status["noise"][0] == status["baseline"][0] == "measured"
    assert all(result.outcome(n).measurement is None for n in ("threads-1+flaky-warmup", "flaky-round", "nan-quality"))
    assert torch.get_num_threads() == threads  # a failure inside `threads=1` restores the setting
    # negative qualities and an absolute floor: the floor is the bound, noise falls below it
    assert result.baseline.quality == pytest.approx(-1.0)
    assert result.bound == -1.02
    assert result.outcome("noise").quality < -1.02
    assert result.recommended is not None and result.recommended.name in {"baseline", "threads-1"}
    with Ledger(result.ledger_path) as ledger:
        rows = {r.name: r for r in study_candidates(ledger, result.study_id)}
    assert rows["flaky-round"].status == "failed" and rows["flaky-round"].energy_per_sample_j is None
    assert rows["flaky-round"].provenance == "" and rows["flaky-round"].run_id == result.run_id
    assert rows["threads-1"].provenance and rows["threads-1"].energy_per_sample_j > 0


def test_the_quality_drop_is_absolute_for_negative_qualities(tmp_path: Path) -> None:
    result = optimize(_negative_task(), [Noise(0.5)], max_quality_drop=0.5, repeats=1, min_repeat_s=0.01, store=False)
    assert result.bound == pytest.approx(-1.5)  # baseline -1 minus an absolute 0.5


# ------------------------------------------------------------------ bad input, before any work


def test_bad_arguments_and_colliding_names_are_config_errors() -> None:
    task = _task()
    empty = OptimizeTask(task.model, task.evaluate, inputs=[])
    with pytest.raises(ConfigError, match="no input batches"):
        optimize(empty, [Threads(1)], store=False)
    with pytest.raises(ConfigError, match="max_quality_drop must be a finite number >= 0"):
        optimize(task, [Threads(1)], max_quality_drop=-0.1, store=False)
    with pytest.raises(ConfigError, match="min_quality must be a finite number"):
        optimize(task, [Threads(1)], min_quality=float("nan"), store=False)
    with pytest.raises(ConfigError, match="repeats"):
        optimize(task, [Threads(1)], repeats=0, store=False)
    # two different transforms named alike would share one result (the second silently reused)
    with pytest.raises(ConfigError, match="both named 'shrink'"):
        optimize(task, [Shrink(32), (Shrink(16), Threads(1))], store=False)
    for bad in ("baseline", "a+b", "a/b", ""):
        with pytest.raises(ConfigError, match="cannot name a candidate"):
            optimize(task, [Shrink(32, name=bad)], store=False)


def test_sparsity_without_a_measured_saving_is_said_plainly() -> None:
    from greenai.meters.base import Provenance
    from greenai.optimize.measure import Measurement
    from greenai.optimize.search import Outcome, Study, _recommend

    def measured(energy_j: float, spread: float = 0.05) -> Measurement:
        return Measurement(energy_j, energy_j / 10, 0.5, spread, Provenance.ESTIMATED, 100, 5)

    outcomes = [
        Outcome(
            "baseline",
            (),
            "measured",
            quality=0.99,
            measurement=measured(1.00),
            parameters=1000,
            nonzero_parameters=1000,
        ),
        Outcome(
            "masked",
            ("masked",),
            "measured",
            quality=0.99,
            measurement=measured(0.98),
            parameters=1000,
            nonzero_parameters=400,
        ),
        Outcome(
            "sparse-kernel",
            ("sparse-kernel",),
            "measured",
            quality=0.99,
            measurement=measured(0.50),
            parameters=1000,
            nonzero_parameters=400,
        ),
        Outcome(
            "smaller",
            ("smaller",),
            "measured",
            quality=0.99,
            measurement=measured(0.98),
            parameters=500,
            nonzero_parameters=500,
        ),
    ]
    study = Study("s", None, "accuracy", 0.98, outcomes)
    _recommend(study)
    notes = {o.name: " ".join(o.notes) for o in outcomes}
    assert "60% of the weights are zero" in notes["masked"] and "did not go down" in notes["masked"]
    assert notes["sparse-kernel"] == "" and notes["smaller"] == "" and notes["baseline"] == ""
    assert study.recommended.name == "sparse-kernel" and study.greener
