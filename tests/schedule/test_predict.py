"""Predictions for jobs: given, from past runs in the ledger, or from the estimator."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.helpers import greenai

from greenai.errors import GreenAIError
from greenai.ledger import Ledger
from greenai.ledger.jobs import JobRow, JobStatus, add_jobs, finish_job
from greenai.schedule.jobfile import JobFileError, load_job_file
from greenai.schedule.jobs import Job
from greenai.schedule.predict import predict_jobs

TRUE_KEY = Job("any", command=("true",)).key  # what the jobs of these tests run


def _past(
    ledger: Ledger,
    name: str,
    runs: list[tuple[float, float]],
    status: str = JobStatus.COMPLETED,
    key: str = TRUE_KEY,
    node: str = "",
) -> None:
    for i, (duration, energy) in enumerate(runs):
        add_jobs(ledger, [JobRow("old", f"{name}-{status}-{i}-{key}-{node}", name, JobStatus.PENDING, job_key=key)])
        finish_job(
            ledger,
            JobRow(
                "old",
                f"{name}-{status}-{i}-{key}-{node}",
                name,
                status,
                node=node,
                started_at=100.0 + i,
                ended_at=100.0 + i + duration,
                duration_s=duration,
                energy_j=energy,
            ),
        )


def test_history_gives_the_median_of_past_completed_runs(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        _past(ledger, "train", [(10.0, 100.0), (12.0, 140.0), (50.0, 900.0)])
        _past(ledger, "train", [(1.0, 1.0)], status=JobStatus.FAILED)  # failures do not count
        given = Job("g", name="train", command=("true",), predicted_duration_s=5.0, predicted_energy_j=7.0)
        unknown = Job("u", name="never-ran", command=("true",))
        half = Job("h", name="train", command=("true",), predicted_duration_s=3.0)
        jobs = predict_jobs([given, Job("t", name="train", command=("true",)), unknown, half], ledger)
    assert (jobs[0].predicted_duration_s, jobs[0].predicted_energy_j) == (5.0, 7.0)
    assert (jobs[1].predicted_duration_s, jobs[1].predicted_energy_j) == (12.0, 140.0)
    assert jobs[1].prediction_source == "ledger: median of 3 past run(s)"
    assert jobs[2].predicted_duration_s is None and jobs[2].prediction_source == "none"
    assert (jobs[3].predicted_duration_s, jobs[3].predicted_energy_j) == (3.0, 140.0)  # given wins


def test_the_estimator_predicts_a_job_that_never_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "est_models.py"
    module.write_text(
        textwrap.dedent("""
        import torch
        def mlp():
            return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)), torch.randn(16, 32)
        def broken():
            return torch.nn.Linear(3, 3), torch.randn(2, 5)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    job = Job("e", name="e", command=("true",), estimate_factory="est_models:mlp", estimate_steps=500)
    (predicted,) = predict_jobs([job], None)
    assert predicted.predicted_duration_s > 0 and predicted.predicted_energy_j > 0
    assert predicted.prediction_source.startswith("estimator (")
    bad = Job("b", name="b", command=("true",), estimate_factory="est_models:broken", estimate_steps=5)
    with pytest.raises(GreenAIError):
        predict_jobs([bad], None)


def test_job_files_take_estimates_and_check_them(tmp_path: Path) -> None:
    good = tmp_path / "jobs.toml"
    good.write_text('[[job]]\nid = "a"\ncommand = ["true"]\nestimate = "pkg.mod:build"\nestimate_steps = 100\n')
    (job,) = load_job_file(good)
    assert (job.estimate_factory, job.estimate_steps) == ("pkg.mod:build", 100)
    for body, message in (
        ('estimate = "pkg.mod:build"\n', "needs 'estimate_steps'"),
        ('estimate = "not a factory"\nestimate_steps = 3\n', "must look like 'module:factory'"),
        ('estimate = "pkg.mod:build"\nestimate_steps = 0\n', "whole number >= 1"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text('[[job]]\nid = "a"\ncommand = ["true"]\n' + body)
        with pytest.raises(JobFileError, match=message):
            load_job_file(bad)


def test_schedule_run_uses_history_and_a_power_budget(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[job]]\nid = "a"\nname = "quick"\ncommand = ["python", "-c", "pass"]\n')
    ledger = tmp_path / "l.db"
    first = greenai("schedule", "run", str(jobs), ledger=ledger)
    assert first.returncode == 0, first.stderr
    second = greenai("schedule", "run", str(jobs), "--policy", "budget", "--max-power-w", "500", ledger=ledger)
    assert second.returncode == 0, second.stderr
    assert "a: predicted" in second.stderr and "ledger: median of 1 past run(s)" in second.stderr
    refused = greenai("schedule", "run", str(jobs), "--policy", "oracle", ledger=ledger)
    assert refused.returncode == 1 and "schedule simulate" in refused.stderr


def test_placement_nodes_learn_each_jobs_measured_energy_per_node(tmp_path: Path) -> None:
    """A node where a job measured less energy before gets that figure, and placement then
    prefers it over a node the user's factor favours."""
    from greenai.schedule.policies import Candidate, EnergyAwarePlacement, Node
    from greenai.schedule.predict import with_node_history

    with Ledger(tmp_path / "l.db") as ledger:
        for i, (node, energy) in enumerate([("n-a", 90.0), ("n-a", 110.0), ("n-b", 40.0), ("n-b", 5.0)]):
            status = JobStatus.FAILED if energy == 5.0 else JobStatus.COMPLETED  # failures do not count
            add_jobs(ledger, [JobRow("old", f"j{i}", "train", JobStatus.PENDING, job_key=TRUE_KEY)])
            finish_job(ledger, JobRow("old", f"j{i}", "train", status, node=node, ended_at=100.0 + i, energy_j=energy))
        nodes = [Node("a", energy_factor=0.5, slots=1), Node("b", energy_factor=1.0, slots=1, energy_j={"given": 1.0})]
        jobs = [
            Job("t", name="train", command=("true",)),
            Job("given", name="train", command=("true",)),
            Job("new", name="never-ran", command=("true",)),
        ]
        a, b = with_node_history(nodes, ["n-a", "n-b"], jobs, ledger)
    assert a.energy_j == {"t": 100.0, "given": 100.0}
    assert b.energy_j == {"t": 40.0, "given": 1.0}  # a figure the node already has wins
    job = Job("t", name="train", command=("true",), predicted_energy_j=200.0)
    cluster = type(
        "View",
        (),
        {
            "nodes": (a, b),
            "down": frozenset(),
            "node": lambda self, n: {"a": a, "b": b}[n],
            "energy_used_j": lambda self, t0, t1: 0.0,
        },
    )()
    (placed,) = EnergyAwarePlacement([a, b]).select(0.0, cluster, [Candidate(job, 10.0, 200.0, 10.0)])
    assert placed.node == "b"  # 40 J measured there against 100 J on "a"; by its factor, 200 J


def test_two_jobs_that_share_a_name_do_not_share_a_prediction(tmp_path: Path) -> None:
    """Predictions were keyed on the job's name alone: any job called "a" got the history of
    every other job called "a". They are keyed on what it runs, and on where when known."""
    short = Job("a", command=("sleep", "1"))
    long = Job("a", command=("sleep", "600"))
    cb = Job("a", callable_path="m:f", kwargs={"n": 1})
    assert len({short.key, long.key, cb.key, Job("a", callable_path="m:f", kwargs={"n": 2}).key}) == 4
    assert short.key == Job("other-id", name="x", command=("sleep", "1")).key  # not the id nor the name
    with Ledger(tmp_path / "l.db") as ledger:
        _past(ledger, "a", [(1.0, 10.0)], key=short.key, node="here")
        _past(ledger, "a", [(600.0, 6000.0)], key=long.key, node="elsewhere")
        p_short, p_long, p_cb = predict_jobs([short, long, cb], ledger)
        assert (p_short.predicted_duration_s, p_short.predicted_energy_j) == (1.0, 10.0)
        assert (p_long.predicted_duration_s, p_long.predicted_energy_j) == (600.0, 6000.0)
        assert p_cb.predicted_duration_s is None and p_cb.prediction_source == "none"
        here_short, here_long = predict_jobs([short, long], ledger, node="here")
        assert here_short.predicted_duration_s == 1.0
        assert here_long.predicted_duration_s is None  # it ran on another machine only
