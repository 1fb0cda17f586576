"""Runs, a killed run, a study and a batch in one ledger, made as users make them: the tracker
with simulated meters (deterministic power), a real process killed with SIGKILL, and the
ledger's own writers for the study's candidates and the batch's jobs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.ledger.candidates import CandidateRow, record_candidates
from greenai.ledger.jobs import JobRow, JobStatus, add_jobs, finish_job
from greenai.ledger.records import DeviceTotal, RunSnapshot, RunStart, RunStatus, SampleRow
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.meters.simulated import SimulatedMeter, Sinusoid
from greenai.tracking.budget import Budget
from greenai.tracking.tracker import Tracker
from greenai.units import J_PER_KWH

HOSTILE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class World:
    ledger: Path
    run_id: str  # a completed training run: phases, counters, plan, budget, FR intensity, PUE, heat reuse
    other_id: str  # a second run of the same code at other powers
    hostile_id: str  # a run whose name and tag are HTML
    killed_id: str  # SIGKILLed mid-run
    study_id: str
    batch_id: str


def config(ledger: Path, **kw: object) -> Config:
    base: dict[str, object] = dict(
        ledger=ledger,
        intensity="FR",
        sample_hz=50.0,
        flush_interval_s=0.2,
        pue=1.25,
        price_per_kwh=0.2,
        heat_reuse_fraction=0.3,
    )
    base.update(kw)
    return Config(**base).validate()  # type: ignore[arg-type]


def train(ledger: Path, name: str, gpu_w: float, steps: int = 30, tags: dict[str, str] | None = None) -> str:
    meters = [
        SimulatedMeter("gpu:0", DeviceKind.GPU, Sinusoid(gpu_w, 0.2 * gpu_w, 0.5)),
        SimulatedMeter("cpu:0", DeviceKind.CPU, 60.0),
        SimulatedMeter("dram:0", DeviceKind.DRAM, 6.0),
    ]
    with Tracker(
        name,
        config=config(ledger),
        meters=meters,
        tags=tags or {"model": "cnn"},
        planned_steps=steps,
        budgets=[Budget(energy_kwh=60 / J_PER_KWH, action="warn")],
    ) as run:
        for step in range(steps):
            with run.phase("train"):
                with run.phase("forward"):
                    time.sleep(0.008)
                with run.phase("backward"):
                    time.sleep(0.012)
            run.count("samples", 32)
            run.count("steps")
            if step % 10 == 9:
                with run.phase("eval"):
                    time.sleep(0.06)
    assert run.result is not None
    return run.result.run_id


KILLED = textwrap.dedent("""
    import json, sys, time
    from greenai.config import Config
    from greenai.meters.base import DeviceKind
    from greenai.meters.simulated import SimulatedMeter
    from greenai.tracking.tracker import Tracker

    cfg = Config(ledger=sys.argv[1], intensity="100", sample_hz=20.0, flush_interval_s=0.2).validate()
    with Tracker("killed", config=cfg, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)]) as run:
        print(json.dumps({"run_id": run.run_id}), flush=True)
        while True:
            with run.phase("step"):
                time.sleep(0.01)
            run.count("samples", 8)
""")


def killed_run(ledger: Path) -> str:
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(ledger)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = json.loads(proc.stdout.readline())["run_id"]
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return str(run_id)


def study(ledger: Path, run_id: str) -> str:
    rows = [
        CandidateRow(
            "study-1", "baseline", "measured", (), "", run_id, 2.0e-3, 0.05, "simulated", 1e-4, 0.950, "accuracy"
        ),
        CandidateRow(
            "study-1",
            "int8-dynamic",
            "measured",
            ("int8-dynamic",),
            "",
            run_id,
            1.0e-3,
            0.05,
            "simulated",
            5e-5,
            0.945,
            "accuracy",
        ),
        CandidateRow(
            "study-1",
            "prune=0.9",
            "measured",
            ("prune=0.9",),
            "",
            run_id,
            0.5e-3,
            0.05,
            "simulated",
            3e-5,
            0.80,
            "accuracy",
        ),
        CandidateRow(
            "study-1", "bf16", "measured", ("bf16",), "", run_id, 2.5e-3, 0.05, "simulated", 1.2e-4, 0.949, "accuracy"
        ),
        CandidateRow("study-1", "qat", "skipped", ("qat",), "no QAT engine", run_id, quality_name="accuracy"),
    ]
    with Ledger(ledger) as store:
        record_candidates(store, rows)
    return "study-1"


# A batch two hours long, its jobs charged against the shipped GB 2020 trace (replayed by time
# of year): job a waited two hours after arriving, job b ran at once.
BATCH_T0 = 1_700_000_000.0  # 2023-11-14 22:13 UTC


def batch(ledger: Path) -> str:
    return add_batch(
        ledger,
        "batch-1",
        [
            BatchJob("a", "job <a>", BATCH_T0, BATCH_T0 + 7200, 30.0),
            BatchJob("b", "job b", BATCH_T0 + 600, BATCH_T0 + 600, 20.0),
        ],
    )


@dataclass(frozen=True)
class BatchJob:
    job_id: str
    name: str
    arrived_at: float
    started_at: float
    minutes: float
    intensity: str = "trace:gb_2020"


def add_batch(ledger: Path, batch_id: str, jobs: list[BatchJob]) -> str:
    """A finished batch of `jobs`, each a synthetic run (see `synthetic_run`) at its times."""
    with Ledger(ledger) as store:
        add_jobs(store, [JobRow(batch_id, j.job_id, j.name, JobStatus.PENDING, arrived_at=j.arrived_at) for j in jobs])
        for j in jobs:
            start, seconds = j.started_at, j.minutes * 60.0
            run_id = synthetic_run(store, f"batch job {j.job_id}", start, seconds, power_w=200.0, intensity=j.intensity)
            end = start + seconds
            record = store.get_run(run_id)
            finish_job(
                store,
                JobRow(
                    batch_id,
                    j.job_id,
                    "",
                    JobStatus.COMPLETED,
                    run_id=run_id,
                    submitted_at=start - 0.1,
                    started_at=start,
                    ended_at=end,
                    duration_s=end - start,
                    energy_j=record.snapshot.energy_j,
                    rel_uncertainty=0.0,
                    provenance="simulated",
                    carbon_g=record.snapshot.carbon_g,
                ),
            )
    return batch_id


def synthetic_run(
    store: Ledger, name: str, start: float, seconds: float, power_w: float, intensity: str = "trace:gb_2020"
) -> str:
    """A finished run written as the tracker writes one, at chosen (past) times, sampled each
    minute, charged as the tracker charges (a trace that ends during it held at its last value)."""
    import uuid

    from greenai.carbon import configured_intensity
    from greenai.carbon.held import HeldIntensity

    run_id = uuid.uuid4().hex
    trace = HeldIntensity.started(configured_intensity(intensity), start, warn=False)
    environment = {"config": {"intensity": intensity, "pue": "1.0"}, "meters": []}
    store.begin_run(RunStart(run_id, name, start, "elsewhere", 1, {}, environment))
    samples, carbon, energy, t = [], 0.0, 0.0, start
    while t < start + seconds - 1e-6:
        t1 = min(t + 60.0, start + seconds)
        delta = power_w * (t1 - t)
        energy += delta
        carbon += delta / J_PER_KWH * trace.intensity_at((t + t1) / 2)
        samples.append(SampleRow(t1, "gpu:0", DeviceKind.GPU, power_w, energy, Provenance.SIMULATED, "work"))
        t = t1
    snapshot = RunSnapshot(
        duration_s=seconds,
        energy_j=energy,
        rel_uncertainty=0.0,
        provenance=Provenance.SIMULATED,
        facility_energy_j=energy,
        carbon_g=carbon,
        cost=0.0,
        currency="EUR",
        devices=(DeviceTotal("gpu:0", DeviceKind.GPU, energy, Provenance.SIMULATED, 0.0),),
        carbon_source=trace.describe(),
    )
    store.flush(run_id, snapshot, samples)
    store.end_run(run_id, RunStatus.COMPLETED, start + seconds, snapshot)
    return run_id


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    ledger = tmp_path_factory.mktemp("report") / "ledger.db"
    run_id = train(ledger, "train-cnn", gpu_w=250.0)
    other_id = train(ledger, "train-cnn-small", gpu_w=120.0)
    hostile_id = train(ledger, HOSTILE, gpu_w=100.0, steps=10, tags={"note": HOSTILE, "model": "<b>x</b>"})
    return World(
        ledger=ledger,
        run_id=run_id,
        other_id=other_id,
        hostile_id=hostile_id,
        killed_id=killed_run(ledger),
        study_id=study(ledger, run_id),
        batch_id=batch(ledger),
    )
