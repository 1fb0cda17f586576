"""The local executor and the batch runner: every job tracked into the ledger, failures recorded
with their energy, the rest of the batch going on; `greenai schedule run`'s function."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from greenai.ledger.jobs import batch_jobs
from greenai.ledger.store import Ledger
from greenai.schedule.batch import percentile, run_batch
from greenai.schedule.executor_local import LocalExecutor
from greenai.schedule.jobs import Job

HERE = Path(__file__).parent
PROVENANCES = {"measured", "integrated", "estimated"}
BURN = "import time\nend = time.perf_counter() + 0.2\nwhile time.perf_counter() < end: pass"


@pytest.fixture(autouse=True)
def job_callables_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job subprocesses import `sched_jobs` from this directory."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


def test_command_and_callable_jobs_are_each_tracked(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.db"
    jobs = [
        Job("cmd", name="burn", command=(sys.executable, "-c", BURN)),
        Job("fn", callable_path="sched_jobs:spin", kwargs={"seconds": 0.2}, predicted_energy_j=3.0),
    ]
    with LocalExecutor(max_parallel=2) as executor:
        summary = run_batch(jobs, executor, ledger_path, batch_id="b-ok")
    assert (summary.jobs, summary.completed, summary.failed) == (2, 2, 0)
    cmd, fn = summary.outcomes
    assert fn.value > 0  # the callable's return value comes back
    assert summary.energy_j == pytest.approx(cmd.energy_j + fn.energy_j)
    assert summary.provenance in PROVENANCES
    assert summary.overhead_median_s is not None and 0 <= summary.overhead_median_s < 10
    with Ledger(ledger_path) as ledger:
        rows = {r.job_id: r for r in batch_jobs(ledger, "b-ok")}
        for outcome in summary.outcomes:
            run = ledger.get_run(outcome.run_id)
            row = rows[outcome.job_id]
            assert run.status == "completed" and run.snapshot.energy_j > 0
            assert run.snapshot.provenance.value in PROVENANCES
            assert run.start.tags["job_id"] == outcome.job_id and run.start.tags["batch_id"] == "b-ok"
            assert row.status == "completed" and row.run_id == outcome.run_id
            assert (
                row.energy_j == pytest.approx(run.snapshot.energy_j) and row.provenance == run.snapshot.provenance.value
            )
            assert row.submitted_at <= row.started_at <= row.ended_at
            assert row.scheduling_overhead_s == pytest.approx(row.started_at - row.submitted_at)
            # the job's whole life is under its tracker: the run lasts as long as the job
            assert run.snapshot.duration_s >= 0.18
        assert rows["cmd"].name == "burn" and rows["fn"].predicted_energy_j == 3.0


def test_failed_jobs_are_recorded_with_energy_and_the_batch_goes_on(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.db"
    jobs = [
        Job("raises", callable_path="sched_jobs:fail", kwargs={"seconds": 0.15, "message": "bad lr"}),
        Job("exit3", command=(sys.executable, "-c", BURN + "\nraise SystemExit(3)")),
        Job("missing", command=("no-such-program-greenai",)),
        Job("unimportable", callable_path="no_such_module_greenai:f"),
        Job("good", callable_path="sched_jobs:spin", kwargs={"seconds": 0.1}),
    ]
    with LocalExecutor(max_parallel=1) as executor:
        summary = run_batch(jobs, executor, ledger_path, batch_id="b-fail")
    assert (summary.completed, summary.failed) == (1, 4)
    by_id = {o.job_id: o for o in summary.outcomes}
    assert "RuntimeError: bad lr" in by_id["raises"].error
    assert by_id["exit3"].error == "exit code 3"
    assert by_id["missing"].error == "command not found: no-such-program-greenai"
    assert "ModuleNotFoundError" in by_id["unimportable"].error
    with Ledger(ledger_path) as ledger:
        rows = {r.job_id: r for r in batch_jobs(ledger, "b-fail")}
        for job_id in ("raises", "exit3", "unimportable"):
            row = rows[job_id]
            assert row.status == "failed" and row.energy_j > 0 and row.provenance in PROVENANCES
            assert ledger.get_run(row.run_id).status == "failed"
        assert rows["missing"].status == "failed" and rows["missing"].run_id is None
        assert rows["missing"].energy_j is None and rows["missing"].error.startswith("command not found")
        assert rows["good"].status == "completed" and rows["good"].energy_j > 0


def test_a_file_callable_imports_its_siblings_in_the_job_process_and_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`FILE.py:FUNCTION` jobs are loaded by greenai.factories' rule, in the job's subprocess
    too: the file imports a module beside it, as `python FILE.py` would."""
    from greenai.config import Config
    from greenai.schedule.executor import run_job_tracked

    project = tmp_path / "project"
    project.mkdir()
    (project / "sched_sibling_helper.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "sched_file_job.py").write_text(
        "from sched_sibling_helper import double\n"
        "class Jobs:\n    @staticmethod\n    def twice(x):\n        return double(x)\n"
    )
    spec = f"{project / 'sched_file_job.py'}:Jobs.twice"
    monkeypatch.chdir(tmp_path)  # neither the job's cwd nor PYTHONPATH holds the helper
    with LocalExecutor(max_parallel=1) as executor:
        summary = run_batch(
            [Job("file", callable_path=spec, kwargs={"x": 21}), Job("bad", callable_path=f"{tmp_path}/nope.py:f")],
            executor,
            tmp_path / "l.db",
        )
    by_id = {o.job_id: o for o in summary.outcomes}
    assert by_id["file"].ok and by_id["file"].value == 42, by_id["file"].error
    assert by_id["bad"].error.endswith(f"greenai: no such file: {tmp_path}/nope.py")
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        tracked = run_job_tracked(
            Job("here", callable_path=spec, kwargs={"x": 5}),
            Config(simulate=True),
            callable_in_process=True,
            store=False,
        )
    finally:
        for name in ("sched_file_job", "sched_sibling_helper"):
            sys.modules.pop(name, None)
    assert tracked.outcome.ok and tracked.outcome.value == 10, tracked.outcome.error


def test_a_policy_holds_jobs_back_and_arrivals_wait(tmp_path: Path) -> None:
    from greenai.schedule.policies import PowerBudget

    quick = (sys.executable, "-c", "pass")
    jobs = [
        Job("a", command=quick, predicted_duration_s=1.0, predicted_energy_j=150.0),
        Job("b", command=quick, predicted_duration_s=1.0, predicted_energy_j=150.0),
        Job("late", command=quick, arrival_s=0.6, predicted_duration_s=1.0, predicted_energy_j=10.0),
    ]
    seen: list[str] = []
    b_status_when_a_ended: list[str] = []

    def on_outcome(outcome: Any) -> None:
        seen.append(outcome.job_id)
        if outcome.job_id == "a":
            with Ledger(tmp_path / "l.db") as ledger:
                b_status_when_a_ended.extend(r.status for r in batch_jobs(ledger, "b-policy") if r.job_id == "b")

    start = time.time()
    with LocalExecutor(max_parallel=3) as executor:  # room for all: only the budget holds b back
        summary = run_batch(
            jobs,
            executor,
            tmp_path / "l.db",
            batch_id="b-policy",
            policy=PowerBudget(max_power_w=200.0),
            decision_interval_s=0.05,
            on_outcome=on_outcome,
        )
    assert summary.completed == 3 and seen.index("a") < seen.index("b")
    assert b_status_when_a_ended == ["deferred"]
    with Ledger(tmp_path / "l.db") as ledger:
        rows = {r.job_id: r for r in batch_jobs(ledger, "b-policy")}
    assert rows["b"].submitted_at >= rows["a"].ended_at  # 150 W + 150 W > 200 W: one at a time
    assert rows["late"].submitted_at >= start + 0.6  # arrival_s counts from the batch's start


def test_schedule_run_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from greenai.cli.schedule_run import run_jobs

    job_file = tmp_path / "jobs.toml"
    job_file.write_text(
        '[[job]]\nid = "ok"\ncallable = "sched_jobs:spin"\nkwargs = { seconds = 0.1 }\n'
        f'[[job]]\nid = "bad"\ncommand = [{json.dumps(sys.executable)}, "-c", "raise SystemExit(2)"]\n'
    )
    ledger_path = tmp_path / "cli.db"
    code = run_jobs(job_file, ledger=ledger_path, parallel=2, json_out=True, batch_id="cli")
    assert code == 1  # one job failed
    data = json.loads(capsys.readouterr().out)
    assert (data["jobs"], data["completed"], data["failed"], data["batch_id"]) == (2, 1, 1, "cli")
    assert {o["job_id"]: o["status"] for o in data["outcomes"]} == {"ok": "completed", "bad": "failed"}
    assert all(o["energy_j"] > 0 for o in data["outcomes"])
    assert run_jobs(job_file, ledger=ledger_path, parallel=1, batch_id="cli-2") == 1
    out = capsys.readouterr().out
    assert "Batch cli-2 (local)" in out and "exit code 2" in out and "1/2 completed" in out


def test_percentile_matches_numpy_linear() -> None:
    values = [0.1, 0.2, 0.4, 0.8, 1.6]
    assert percentile(values, 50) == 0.4
    assert percentile(values, 95) == pytest.approx(0.8 + 0.8 * 0.8)
    assert percentile([], 50) is None


def test_schedule_run_bad_input(tmp_path: Path) -> None:
    from greenai.cli.schedule_run import run_jobs
    from greenai.errors import ConfigError
    from greenai.schedule.jobfile import JobFileError

    job_file = tmp_path / "jobs.toml"
    job_file.write_text('[[job]]\nid = "x"\n')
    with pytest.raises(JobFileError, match=r"job #1 \('x'\): give exactly one of 'command' or 'callable'"):
        run_jobs(job_file, ledger=tmp_path / "l.db")
    with pytest.raises(ConfigError, match="unknown executor 'slurm'"):
        run_jobs(job_file, executor="slurm")
    with pytest.raises(ConfigError, match="--ray-address and --ray-cpus need --executor ray"):
        run_jobs(job_file, ray_address="auto")
    with pytest.raises(ConfigError, match="--log-dir needs --executor local"):
        run_jobs(job_file, executor="ray", log_dir=tmp_path / "logs")


class _NoGpuExecutor:
    """A user-written executor (the `Executor` protocol) that cannot take GPU jobs: its
    `submit` raises a plain ValueError, as Ray's does for options it rejects. Other jobs
    run on a real LocalExecutor."""

    name = "no-gpu"

    def __init__(self) -> None:
        self.inner = LocalExecutor(max_parallel=1)

    def capacity(self) -> int:
        return self.inner.capacity()

    def submit(self, job: Job, *, ledger_path: Path, tags: Mapping[str, str] = {}) -> Any:
        if job.gpus:
            raise ValueError("this executor has no GPUs")
        return self.inner.submit(job, ledger_path=ledger_path, tags=tags)

    def wait(self, handles: Any, timeout_s: float | None = None) -> Any:
        return self.inner.wait(handles, timeout_s)

    def shutdown(self) -> None:
        self.inner.shutdown()


def test_an_executor_refusing_one_job_does_not_stop_the_batch(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.db"
    jobs = [
        Job("gpu", command=(sys.executable, "-c", "pass"), gpus=1.0),
        Job("cpu", command=(sys.executable, "-c", "pass")),
    ]
    executor = _NoGpuExecutor()
    try:
        summary = run_batch(jobs, executor, ledger_path, batch_id="b-refused")
    finally:
        executor.shutdown()
    gpu, cpu = summary.outcomes
    assert (summary.completed, summary.failed) == (1, 1) and cpu.ok
    assert gpu.error == "could not submit: ValueError: this executor has no GPUs"
    with Ledger(ledger_path) as ledger:
        rows = {r.job_id: r.status for r in batch_jobs(ledger, "b-refused")}
    assert rows == {"gpu": "failed", "cpu": "completed"}


def test_placement_on_the_local_executor_means_this_machine(tmp_path: Path) -> None:
    from greenai.errors import ConfigError
    from greenai.schedule.policies import EnergyAwarePlacement, Node

    quick = (sys.executable, "-c", "pass")
    with LocalExecutor(max_parallel=2) as executor:
        assert executor.node_id("local") == executor.node_id(executor._host)
        assert executor.node_slots("local") == 2
        with pytest.raises(ConfigError, match="runs jobs on this machine only"):
            executor.node_id("gpu-box")
        # a policy that places a job elsewhere: that node is taken as gone, the job runs here
        policy = EnergyAwarePlacement([Node("gpu-box", 0.5, slots=1), Node("local", 1.0)])
        events: list[str] = []
        summary = run_batch(
            [Job("a", command=quick), Job("b", command=quick)],
            executor,
            tmp_path / "l.db",
            policy=policy,
            decision_interval_s=0.05,
            on_event=events.append,
        )
    assert summary.completed == 2 and {o.node for o in summary.outcomes} == {executor._host}
    assert events == [
        f"node 'gpu-box' is gone (node 'gpu-box': the local executor runs jobs on this "
        f"machine only ('local' or {executor._host!r}); use --executor ray for several "
        "nodes); no more jobs go there"
    ]


def test_schedule_run_placement_options(tmp_path: Path) -> None:
    from greenai.cli.schedule_run import run_jobs
    from greenai.errors import ConfigError

    job_file = tmp_path / "jobs.toml"
    job_file.write_text('[[job]]\nid = "x"\ncallable = "sched_jobs:spin"\nkwargs = { seconds = 0.05 }\n')
    with pytest.raises(ConfigError, match="--policy placement needs --node"):
        run_jobs(job_file, ledger=tmp_path / "l.db", policy="placement")
    with pytest.raises(ConfigError, match="--node is used only by --policy placement"):
        run_jobs(job_file, ledger=tmp_path / "l.db", node=["local"])
    with pytest.raises(ConfigError, match="node 'elsewhere': the local executor runs jobs on this machine"):
        run_jobs(job_file, ledger=tmp_path / "l.db", policy="placement", node=["elsewhere:0.5"])
    assert run_jobs(job_file, ledger=tmp_path / "l.db", policy="placement", node=["local:1:1"]) == 0
    assert run_jobs(job_file, ledger=tmp_path / "l.db", policy="placement", node=["local"]) == 0


def test_running_jobs_are_offered_as_pinned_and_held_jobs_start_at_their_latest_start(tmp_path: Path) -> None:
    from greenai.carbon.grid_forecast import ProviderForecaster
    from greenai.schedule.policies import CarbonAwareTiming

    seen: list[tuple[str, bool, bool]] = []

    class Recorder:
        """Keeps every job; notes how running ones are offered."""

        name = "recorder"

        def select(self, now_s: float, cluster: Any, candidates: list[Any]) -> list[Any]:
            seen.extend((c.job_id, c.running, c.pinned) for c in candidates)
            return candidates

    slow = (sys.executable, "-c", BURN)
    jobs = [
        Job("long", command=slow, interruptible=True, slack_s=60.0, predicted_duration_s=0.2),
        Job("late", command=slow, arrival_s=0.1),
    ]
    executor = _NoGpuExecutor()  # an executor that cannot pause (like Ray's)
    try:
        run_batch(jobs, executor, tmp_path / "l.db", policy=Recorder(), decision_interval_s=0.05)
    finally:
        executor.shutdown()
    # an executor that cannot pause: once running, an interruptible job must go on
    assert ("long", True, True) in seen and ("long", True, False) not in seen
    seen.clear()
    with LocalExecutor(max_parallel=2) as local:  # the local executor can pause it
        run_batch(jobs, local, tmp_path / "l.db", policy=Recorder(), decision_interval_s=0.05)
    assert ("long", True, False) in seen and ("late", True, True) in seen

    # a forecast that only gets cleaner: waiting always looks better, so the job waits until
    # its latest start, and starts then rather than at the next (30 s) decision
    cleaner = ProviderForecaster(
        lambda now, h: [(now + 0.25 * i, 500.0 - 10 * i) for i in range(int(h / 0.25) + 2)], name="cleaner"
    )
    started = time.time()
    with LocalExecutor(max_parallel=1) as executor:
        summary = run_batch(
            [Job("wait", command=(sys.executable, "-c", "pass"), slack_s=1.0, predicted_duration_s=0.5)],
            executor,
            tmp_path / "l.db",
            policy=CarbonAwareTiming(cleaner),
            decision_interval_s=30.0,
        )
    with Ledger(tmp_path / "l.db") as ledger:
        (row,) = batch_jobs(ledger, summary.batch_id)
    assert summary.completed == 1 and started + 0.9 <= row.submitted_at < started + 10.0


def test_an_interruptible_job_is_paused_and_resumed_for_real(tmp_path: Path) -> None:
    """A policy that drops a running interruptible job pauses its process (SIGSTOP to its
    group: no beats while paused), offers it again with its remaining time, and resumes it;
    the ledger says it was paused once and its run has a `paused` phase of that length."""
    beats = tmp_path / "beats.txt"
    offered_remaining: list[float] = []

    class PauseAWhile:
        """Runs the job, holds it back between 0.4 s and 1.2 s after the batch starts."""

        name = "pause-a-while"

        def __init__(self) -> None:
            self.t0 = time.time()

        def select(self, now_s: float, cluster: Any, candidates: list[Any]) -> list[Any]:
            if 0.4 <= now_s - self.t0 < 1.2:
                offered_remaining.extend(c.remaining_s for c in candidates if not c.running)
                return []
            return candidates

    job = Job(
        "beat",
        callable_path="sched_jobs:heartbeat",
        kwargs={"path": str(beats), "beats": 150},
        interruptible=True,
        slack_s=60.0,
        predicted_duration_s=10.0,
    )
    with LocalExecutor(max_parallel=1) as executor:
        summary = run_batch([job], executor, tmp_path / "l.db", policy=PauseAWhile(), decision_interval_s=0.05)
    (outcome,) = summary.outcomes
    assert outcome.ok, outcome.error
    times = [float(line) for line in beats.read_text().split()]
    assert len(times) == 150
    gap = max(b - a for a, b in zip(times, times[1:]))
    assert gap >= 0.5  # stopped for ~0.8 s; every beat is ~10 ms of work otherwise
    # offered again as paused, with the prediction minus the time it had run
    assert offered_remaining and all(6.0 < r < 9.9 for r in offered_remaining)
    with Ledger(tmp_path / "l.db") as ledger:
        (row,) = batch_jobs(ledger, summary.batch_id)
        assert (row.status, row.pauses) == ("completed", 1)
        run = ledger.get_run(row.run_id)
    paused = [p for p in run.snapshot.phases if p.phase == "paused"]
    assert paused and 0.5 <= paused[0].duration_s <= 3.0 and paused[0].calls == 1


def test_an_interrupted_batch_ends_its_paused_and_running_jobs(tmp_path: Path) -> None:
    """Shutting the local executor down (what an interrupted batch does on its way out) sends
    SIGTERM to each job's whole process group, paused ones included, then SIGKILL to those
    still there after the grace period; every run is recorded."""
    from greenai.schedule.executor import JobHandle

    sleep = "import time; time.sleep(60)"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    executor = LocalExecutor(max_parallel=3)
    handles: list[JobHandle] = [
        executor.submit(Job(name, command=(sys.executable, "-c", code)), ledger_path=tmp_path / "l.db")
        for name, code in (("paused", sleep), ("running", sleep), ("stubborn", stubborn))
    ]
    time.sleep(1.0)
    executor.pause(handles[0])
    started = time.time()
    executor.shutdown(grace_s=1.0)
    assert time.time() - started < 10.0  # not the jobs' 60 s
    outcomes = {h.job.job_id: o for h, o in executor.wait(handles, 5.0)}
    assert all(o.energy_j is not None for o in outcomes.values())
    assert "killed by signal 15" in outcomes["paused"].error
    assert "killed by signal 15" in outcomes["running"].error
    assert "killed by signal 9" in outcomes["stubborn"].error


class _TwoNodeExecutor:
    """Two named nodes backed by this machine; node "a" dies after its first job (the
    boundary a vanished Ray node shows: `node_id` and `submit` refuse it)."""

    name = "two-nodes"

    def __init__(self) -> None:
        self.inner = LocalExecutor(max_parallel=1)
        self.alive = {"a", "b"}
        self.ran_on: list[str] = []

    def capacity(self) -> int:
        return 1

    def node_id(self, name: str) -> str:
        from greenai.errors import GreenAIError

        if name not in self.alive:
            raise GreenAIError(f"node {name!r} is not an alive node")
        return name

    def submit(self, job: Job, *, ledger_path: Path, tags: Mapping[str, str] = {}, node: str | None = None) -> Any:
        self.node_id(node or "a")
        self.ran_on.append(node or "a")
        if node == "a":
            self.alive.discard("a")
        return self.inner.submit(job, ledger_path=ledger_path, tags=tags)

    def wait(self, handles: Any, timeout_s: float | None = None) -> Any:
        return self.inner.wait(handles, timeout_s)

    def shutdown(self) -> None:
        self.inner.shutdown()


def test_jobs_placed_on_a_node_that_vanished_go_to_the_others(tmp_path: Path) -> None:
    from greenai.schedule.policies import EnergyAwarePlacement, Node

    quick = (sys.executable, "-c", "pass")
    jobs = [Job(f"j{i}", command=quick, predicted_energy_j=1.0, predicted_duration_s=0.1) for i in range(3)]
    events: list[str] = []
    executor = _TwoNodeExecutor()
    try:  # "a" is predicted cheaper: it gets j0, then dies; j1 and j2 go to "b", none fails
        summary = run_batch(
            jobs,
            executor,
            tmp_path / "l.db",
            on_event=events.append,
            policy=EnergyAwarePlacement([Node("a", 0.5, slots=1), Node("b", 1.0, slots=1)]),
            decision_interval_s=0.05,
        )
    finally:
        executor.shutdown()
    assert summary.completed == 3 and executor.ran_on == ["a", "b", "b"]
    assert len(events) == 1 and "node 'a' is gone" in events[0]

    executor = _TwoNodeExecutor()
    executor.alive = {"a"}  # with every placement node gone, the waiting jobs fail, clearly
    try:
        summary = run_batch(
            jobs,
            executor,
            tmp_path / "l.db",
            decision_interval_s=0.05,
            policy=EnergyAwarePlacement([Node("a", 0.5, slots=1), Node("b", 1.0, slots=1)]),
        )
    finally:
        executor.shutdown()
    assert summary.completed == 1 and summary.failed == 2
    assert all("every node of the placement policy is gone (a, b)" in o.error for o in summary.outcomes[1:])


def _burn(job_id: str, seconds: float, slack_s: float = 60.0, arrival_s: float = 0.0) -> Job:
    return Job(
        job_id,
        callable_path="sched_jobs:burn_cpu",
        kwargs={"seconds": seconds},
        interruptible=True,
        slack_s=slack_s,
        arrival_s=arrival_s,
        predicted_duration_s=seconds,
    )


def test_paused_jobs_resume_before_new_ones_start_and_stay_bounded(tmp_path: Path) -> None:
    """A policy that runs everything in one window and nothing in the next: paused jobs get
    the slots back first, and at most two jobs per slot are resident (running or paused)."""
    resident: list[int] = []

    class Toggle:
        name = "toggle"

        def __init__(self) -> None:
            self.t0 = time.time()

        def select(self, now_s: float, cluster: Any, candidates: list[Any]) -> list[Any]:
            resident.append(sum(c.running or c.remaining_s < c.duration_s - 1e-3 for c in candidates))
            return candidates if int((now_s - self.t0) / 0.4) % 2 == 0 else []

    with LocalExecutor(max_parallel=1) as executor:
        summary = run_batch(
            [_burn(f"j{i}", 0.5) for i in range(4)],
            executor,
            tmp_path / "l.db",
            policy=Toggle(),
            decision_interval_s=0.05,
        )
    assert summary.completed == 4 and max(resident) <= 2
    ends = [o.ended_at for o in summary.outcomes]
    assert ends == sorted(ends)  # j0 resumed and finished before j1 took the slot, and so on
    assert summary.pauses[0] >= 1


def test_a_job_at_its_latest_start_pauses_a_running_interruptible_one(tmp_path: Path) -> None:
    """All slots busy with an interruptible job that has time to spare: a job reaching its
    latest start pauses it rather than miss its deadline; the paused one resumes after."""

    class Everything:
        name = "everything"

        def select(self, now_s: float, cluster: Any, candidates: list[Any]) -> list[Any]:
            return candidates

    long, urgent = _burn("long", 1.5), _burn("urgent", 0.2, slack_s=0.3)
    with LocalExecutor(max_parallel=1) as executor:
        summary = run_batch([long, urgent], executor, tmp_path / "l.db", policy=Everything(), decision_interval_s=0.05)
    outcomes = {o.job_id: o for o in summary.outcomes}
    assert summary.completed == 2 and summary.pauses == (1, 0)
    assert outcomes["urgent"].ended_at < outcomes["long"].ended_at  # it did not wait for "long"


def test_schedule_run_ends_its_jobs_when_it_gets_sigterm(tmp_path: Path) -> None:
    """Jobs run in sessions of their own, so a killed `greenai schedule run` must end them
    itself: SIGTERM ends the batch like Ctrl-C, the job is ended and recorded as failed."""
    import signal
    import subprocess

    pid_file = tmp_path / "job.pid"
    job_file = tmp_path / "jobs.toml"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    job_file.write_text(
        f'[[job]]\nid = "sleeper"\ncommand = [{json.dumps(sys.executable)}, "-c", {json.dumps(code)}]\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenai",
            "schedule",
            "run",
            str(job_file),
            "--ledger",
            str(tmp_path / "l.db"),
            "--batch-id",
            "b-term",
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    job_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid, 0)  # the job is gone, not left running on its own
    with Ledger(tmp_path / "l.db") as ledger:
        (row,) = batch_jobs(ledger, "b-term")
    assert row.status == "failed" and "interrupted" in row.error


def test_schedule_batches_and_show_read_the_ledger_back(tmp_path: Path) -> None:
    from tests.helpers import as_json, assert_one_line_error, greenai

    ledger_path = tmp_path / "l.db"
    with LocalExecutor(max_parallel=2) as executor:
        run_batch(
            [
                Job("ok", command=(sys.executable, "-c", "pass")),
                Job("bad", command=(sys.executable, "-c", "raise SystemExit(3)")),
            ],
            executor,
            ledger_path,
            batch_id="b-show-1",
        )
    (listed,) = as_json(greenai("schedule", "batches", "--json", ledger=ledger_path))
    assert (listed["batch_id"], listed["jobs"], listed["completed"], listed["failed"]) == ("b-show-1", 2, 1, 1)
    jobs = as_json(greenai("schedule", "show", "b-show", "--json", ledger=ledger_path))
    assert [(j["job_id"], j["status"], j["pauses"]) for j in jobs] == [("ok", "completed", 0), ("bad", "failed", 0)]
    assert jobs[0]["energy_j"] > 0 and jobs[0]["run_id"] and "exit code 3" in jobs[1]["error"]
    table = greenai("schedule", "show", "b-show-1", ledger=ledger_path)
    assert table.returncode == 0 and "1/2 completed, 1 failed" in table.stdout
    assert_one_line_error(
        greenai("schedule", "show", "nope", ledger=ledger_path), 1, "no batch 'nope'", "greenai schedule batches"
    )
