"""greenai.distributed's parts on their own: adding up, what a rank reads, the wire format, the
ledger's tables, the communication phase, detection; and a whole job of two ranks in threads
over an in-process store (no torch)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import greenai
from greenai.config import Config
from greenai.distributed import Join, aggregate, node_totals
from greenai.distributed.aggregate import Writer
from greenai.distributed.channel import MemoryKV, decode_report, encode_report
from greenai.distributed.devices import DeviceFilter, select
from greenai.distributed.launcher import RankWatcher, launcher_of, rank_of
from greenai.ledger import distributed as rows
from greenai.ledger.distributed import NODE, PROCESS, CommTotals, DeviceRead, RankReport
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind, Provenance
from greenai.meters.cpu_model import CpuModelMeter
from greenai.meters.fallback import FallbackMeter
from greenai.meters.io import IoMeter
from greenai.meters.rapl import RaplMeter
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.fake_powercap import FakePowercap
from greenai.tracking.joining import launched_as_rank
from greenai.units import format_energy

WRITER = Writer("host-a", 4242, 1000.0)


def device(name: str, physical: str, scope: str, energy_j: float, rel: float = 0.1) -> DeviceRead:
    kind = DeviceKind.CPU if name.startswith("cpu") else DeviceKind.NETWORK
    return DeviceRead(name, kind, physical, scope, energy_j, Provenance.ESTIMATED, rel)


def report(rank: int, devices: tuple[DeviceRead, ...], *, final: bool = True, status: str = "completed", node="n1"):
    energy = sum(d.energy_j for d in devices)
    return RankReport(
        job_id="job",
        rank=rank,
        local_rank=rank,
        node=node,
        host=f"host-{node}",
        pid=100 + rank,
        run_id=f"run{rank}",
        status=status,
        final=final,
        started_at=1000.0 + rank,
        updated_at=1010.0,
        duration_s=9.0,
        energy_j=energy,
        rel_uncertainty=0.1,
        provenance=Provenance.ESTIMATED,
        carbon_g=energy / 10,
        devices=devices,
        comm=CommTotals(bytes=1e6, calls=3, seconds=0.5 + rank, energy_j=1.0),
    )


def test_a_node_device_two_ranks_report_is_counted_once_and_said() -> None:
    r0 = report(0, (device("cpu:0", "n1/rapl/cpu:0", NODE, 100.0), device("disk", "n1/pid 100/disk", PROCESS, 1.0)))
    r1 = report(1, (device("cpu:0", "n1/rapl/cpu:0", NODE, 101.0), device("disk", "n1/pid 101/disk", PROCESS, 2.0)))
    job = aggregate("job", "j", 2, [r1, r0], WRITER, now=2000.0, ended=True)
    assert job.energy_j == pytest.approx(103.0)  # 100 + 1 + 2: rank 1's copy of the package left out
    assert job.carbon_g == pytest.approx((r0.carbon_g + r1.carbon_g) * 103.0 / 204.0)
    assert job.status == "completed" and [r.rank for r in job.ranks] == [0, 1]
    assert any("read by rank 0 and rank 1: counted once" in n for n in job.notes)
    assert job.comm == CommTotals(bytes=2e6, calls=6, seconds=1.5, energy_j=2.0)
    assert job.duration_s == pytest.approx(10.0)  # from rank 0's start to rank 1's end
    (node,) = node_totals(job)
    assert node.energy_j == pytest.approx(103.0) and node.ranks == [0, 1]


def test_the_job_table_says_energy_as_everything_else_does_and_escapes_names() -> None:
    r0 = report(0, (device("cpu:0", "n1/rapl/cpu:0", NODE, 100.0), device("disk", "n1/pid 100/disk", PROCESS, 3.0)))
    job = aggregate("job", "a\x1b[2Jb", 1, [r0], WRITER, now=2000.0, ended=True)
    table = greenai.distributed.format_job(job)
    assert "'a\\x1b[2Jb'" in table and "\x1b" not in table  # one rule for printing names: greenai.text
    assert f"energy {format_energy(103.0)} ±" in table  # units.format_energy: "103.0 J"
    big = greenai.distributed.format_job(replace(job, energy_j=2e7))
    assert f"energy {format_energy(2e7)} ±" in big and "kWh" in big


def test_a_job_is_incomplete_when_a_rank_did_not_report_its_end_or_never_reported() -> None:
    r0 = report(0, (device("cpu:0", "n1/pid 100/cpu:0", PROCESS, 5.0),))
    r1 = report(1, (device("cpu:0", "n1/pid 101/cpu:0", PROCESS, 3.0),), final=False, status="running")
    job = aggregate("job", "j", 3, [r0, r1], WRITER, now=2000.0, ended=True)
    assert job.status == "incomplete" and job.missing_ranks == (1, 2)
    assert job.energy_j == pytest.approx(8.0)  # what rank 1 had published
    assert any("rank 2 never reported" in n for n in job.notes)
    running = aggregate("job", "j", 3, [r0, r1], WRITER, now=2000.0, ended=False)
    assert running.status == "running" and running.ended_at is None
    failed = aggregate("job", "j", 1, [replace(r0, status="failed")], WRITER, now=2000.0, ended=True)
    assert failed.status == "failed"


def test_a_report_goes_over_the_wire_and_back_unchanged() -> None:
    r = report(1, (device("cpu:0", "n1/rapl/cpu:0", NODE, 1.5), device("network", "n1/network", NODE, 0.25)))
    assert decode_report(encode_report(r)) == r


def test_the_ledger_keeps_a_ranks_newest_report_and_judges_a_job_whose_writer_is_gone(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    r0 = report(0, (device("cpu:0", "n1/rapl/cpu:0", NODE, 10.0),))
    import socket

    writer = Writer(socket.gethostname(), dead.pid, time.time() - 5)
    job = aggregate("job", "j", 2, [r0], writer, now=time.time(), ended=False)
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.write(lambda c: rows.write_job(c, job), timeout_s=5)
        older = replace(r0, updated_at=r0.updated_at - 5, energy_j=1.0, final=False)
        assert ledger.write(lambda c: rows.write_rank(c, older), timeout_s=5) is False
        read = ledger.transaction(lambda c: rows.read_job(c, "jo"), write=False)  # a prefix
        assert ledger.transaction(lambda c: rows.job_of_run(c, "run0"), write=False) == ("job", 0)
        assert ledger.transaction(lambda c: rows.counted_twice(c, "job"), write=False) == []
    assert read.status == "incomplete"  # running, and its writer's process is gone
    assert read.ranks[0].energy_j == 10.0 and read.ranks[0].devices == r0.devices


def test_a_rank_that_does_not_own_the_node_reads_only_its_own_process_tree(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path / "powercap")
    fake.add_package(0, subzones=("dram",))

    class Scope:
        def cpu_seconds(self) -> float:
            return 0.0

        def usable_cpus(self) -> float:
            return 2.0

        def io_bytes(self) -> tuple[int, int]:
            return (0, 0)

    scope = Scope()
    config = Config()

    def meters() -> list:
        return [
            FallbackMeter(RaplMeter(fake.root), lambda: CpuModelMeter(scope)),
            CpuModelMeter(scope),
            IoMeter(scope, net_bytes=lambda: 0),
        ]

    leader = select(meters(), {"n/rapl/cpu:0", "n/rapl/dram:0", "n/network", "n/cpu idle"}, "n", 1, scope, config)
    assert len(leader.meters) == 3 and leader.dropped == []
    assert {d: p.scope for d, p in leader.reads.items()} == {
        "cpu:0": PROCESS,  # the CPU model's (its placement is its process's; its idle power is owned)
        "dram:0": NODE,
        "disk": PROCESS,
        "network": NODE,
    }
    other = select(meters(), set(), "n", 2, scope, config)
    assert other.dropped == ["n/cpu idle", "n/network", "n/rapl/cpu:0", "n/rapl/dram:0"]
    cpu, io = other.meters
    assert isinstance(cpu, CpuModelMeter) and "idle power charged x0" in cpu.info().detail
    assert isinstance(io, DeviceFilter) and io.info().devices == ("disk",)
    io.start()
    assert [r.device for r in io.read()] == ["disk"]


def test_a_collective_in_flight_is_the_communication_phase_whoever_ends_it(tmp_path: Path) -> None:
    from greenai.distributed import communication

    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0)
    with greenai.track("lane", meters=[meter], store=False, distributed=False, sample_hz=50) as run:
        with communication(run, nbytes=1000):
            time.sleep(0.3)
        lane = run.lane("other")
        lane.begin()
        t = threading.Thread(target=lambda: (time.sleep(0.2), lane.end()))
        t.start()
        t.join()
        time.sleep(0.1)
    result = run.result
    assert result is not None
    assert result.snapshot.counters["comm.bytes"] == 1000 and result.snapshot.counters["comm.calls"] == 1
    assert result.phase_duration_s("communication") == pytest.approx(0.3, abs=0.08)
    assert result.phase_energy_j("communication") == pytest.approx(3.0, rel=0.3)
    assert result.phase_duration_s("other") == pytest.approx(0.2, abs=0.08)


def test_a_rank_of_a_launch_is_detected_and_the_switch_turns_it_off() -> None:
    assert launched_as_rank({"RANK": "1", "WORLD_SIZE": "2"})
    assert launched_as_rank({"LOCAL_RANK": "0", "WORLD_SIZE": "4"})
    assert not launched_as_rank({"RANK": "0", "WORLD_SIZE": "1"})
    assert not launched_as_rank({})
    assert not launched_as_rank({"RANK": "1", "WORLD_SIZE": "2", "GREENAI_DISTRIBUTED": "0"})
    assert launched_as_rank({"RANK": "1", "WORLD_SIZE": "2", "GREENAI_DISTRIBUTED": ""})
    assert rank_of({"RANK": "3", "WORLD_SIZE": "4", "TORCHELASTIC_RUN_ID": "abc"}) == ("abc", 3, 4)
    assert rank_of({"PATH": "/bin"}) is None


def test_two_ranks_in_threads_make_one_job_with_a_shared_device_once(tmp_path: Path) -> None:
    """Two trackers of one process stand for two ranks of one node: both are given the same
    simulated 50 W node device; rank 1 leaves it to rank 0, and rank 0 writes the job."""
    kv = MemoryKV()
    ledger = tmp_path / "ledger.db"
    results: dict[int, object] = {}

    def rank(k: int, seconds: float) -> None:
        join = Join(job_id="threads", rank=k, world_size=2, local_rank=k, store=kv, publish_interval_s=0.1)
        meter = SimulatedMeter("cpu:0", DeviceKind.CPU, 50.0)
        with greenai.track(f"rank{k}", meters=[meter], ledger=ledger, distributed=join, sample_hz=50) as run:
            time.sleep(seconds)
        results[k] = run.result

    threads = [threading.Thread(target=rank, args=(k, 0.6 + 0.2 * k)) for k in (1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    r0, r1 = results[0], results[1]
    assert r1.job is None and r1.energy_j == 0.0  # type: ignore[attr-defined]
    job = r0.job  # type: ignore[attr-defined]
    assert job is not None and job.status == "completed" and job.job_id == "threads"
    assert job.energy_j == pytest.approx(r0.energy_j) and job.energy_j == pytest.approx(50 * 0.6, rel=0.3)  # type: ignore[attr-defined]
    stored = greenai.distributed.read_job("threads", ledger)
    assert stored.status == "completed" and len(stored.ranks) == 2
    assert {d.physical for r in stored.ranks for d in r.devices} == {f"{job.ranks[0].node}/simulated/cpu:0"}


def test_a_store_that_fails_is_not_waited_on_at_every_publish(tmp_path: Path) -> None:
    """A store gone with the process that held it would stall the sampler thread for its
    timeout at every publish: after a failure, only the final totals are tried again."""

    class GoneKV(MemoryKV):
        def __init__(self) -> None:
            super().__init__()
            self.sets = 0

        def set(self, key: str, value: str) -> None:
            if "/report/" in key:
                self.sets += 1
                raise TimeoutError("store gone")
            super().set(key, value)

    kv = GoneKV()
    join = Join(job_id="gone", rank=1, world_size=2, local_rank=0, store=kv, publish_interval_s=0.05)
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)
    with greenai.track("gone", meters=[meter], ledger=tmp_path / "l.db", distributed=join, sample_hz=50) as run:
        time.sleep(0.5)
    assert run.result is not None and run.result.status == "completed" and run.result.energy_j > 0
    assert kv.sets == 2  # the first publish (at start), then the final one


@pytest.mark.parametrize(
    ("argv", "launcher"),
    [
        (["python", "train_accelerated.py"], None),
        (["python", "my_torchrun_notes.py", "--launcher", "torchrun"], None),
        (["/usr/bin/python3.11", "-u", "train.py", "deepspeed"], None),
        (["/opt/venv/bin/torchrun", "--nproc-per-node", "2", "train.py"], "torchrun"),
        (["python3", "-m", "torch.distributed.run", "train.py"], "torch.distributed.run"),
        (["python", "-mtorch.distributed.launch", "train.py"], "torch.distributed.launch"),
        (["python3", "-X", "dev", "/opt/venv/bin/torchrun", "train.py"], "torchrun"),
        (["python", "-c", "import torchrun"], None),
        (["accelerate", "launch", "train.py"], "accelerate"),
        (["mpirun", "-n", "2", "python", "train.py"], "mpirun"),
        ([], None),
    ],
)
def test_a_launcher_is_told_by_whole_names_not_by_substrings(argv: list[str], launcher: str | None) -> None:
    assert launcher_of(argv) == launcher


def test_the_watcher_names_the_launcher_a_process_tree_runs_not_a_script_that_contains_its_name(
    tmp_path: Path,
) -> None:
    """Real processes: a rank started as `python train_accelerated.py` is a rank without a
    launcher (it used to be reported as 'accelerate'); one started by a script named
    `torchrun` is torchrun's."""
    body = "import time; time.sleep(20)\n"
    for name in ("train_accelerated.py", "torchrun"):
        (tmp_path / name).write_text(body)
    env = {"PATH": "/usr/bin:/bin", "RANK": "0", "WORLD_SIZE": "1", "TORCHELASTIC_RUN_ID": "x"}
    seen = {}
    for name in ("train_accelerated.py", "torchrun"):
        proc = subprocess.Popen([sys.executable, str(tmp_path / name)], env=env)
        try:
            deadline = time.monotonic() + 10
            watcher = RankWatcher(proc.pid, interval_s=0.05)
            while time.monotonic() < deadline:  # the process has exec'd Python with its argv
                watcher = RankWatcher(proc.pid, interval_s=0.05)
                watcher.look()
                if watcher.seen.count:
                    break
                time.sleep(0.05)
            seen[name] = watcher.seen
        finally:
            proc.kill()
            proc.wait()
    assert seen["train_accelerated.py"].count == 1 and seen["train_accelerated.py"].launcher is None
    assert seen["torchrun"].count == 1 and seen["torchrun"].launcher == "torchrun"


def test_the_watcher_names_a_launcher_that_a_held_bootstrap_execs_under_the_same_pid(tmp_path: Path) -> None:
    """`greenai run` holds the program in a `python -c` bootstrap that execs it (same pid, same
    start time): a first look at the bootstrap must not hide the launcher it becomes."""
    (tmp_path / "torchrun").write_text("import time; time.sleep(20)\n")
    gate = tmp_path / "gate"
    hold = (
        "import os, sys, time\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
        "os.execv(sys.executable, [sys.executable, sys.argv[1]])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "torchrun")])
    try:
        watcher = RankWatcher(proc.pid, interval_s=0.05)
        watcher.look()  # the bootstrap: no launcher yet
        assert watcher.seen.launcher is None
        gate.touch()
        deadline = time.monotonic() + 10
        while watcher.seen.launcher is None and time.monotonic() < deadline:
            time.sleep(0.05)
            watcher.look()
        assert watcher.seen.launcher == "torchrun"
    finally:
        proc.kill()
        proc.wait()


def test_counting_a_collective_never_takes_a_stop_budget_away_from_the_program(tmp_path: Path) -> None:
    """A collective's count is not a budget safe point: a `stop` budget that fired is left to
    the program's own next safe point, where BudgetExceeded reaches it (the communication
    phase's count used to take it there and swallow it, and the run still ended
    `interrupted`)."""
    from greenai.distributed.comm import BYTES_COUNTER, CALLS_COUNTER, communication
    from greenai.tracking.budget import Budget, BudgetExceeded

    breaches = []
    budget = Budget(time_s=0.2, action="stop")
    run = greenai.Tracker(
        "budget",
        meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)],
        ledger=tmp_path / "l.db",
        sample_hz=50,
        budgets=[budget],
        on_budget=lambda r, b: breaches.append(b),
        distributed=False,
    ).start()
    deadline = time.monotonic() + 10
    while run._gate.pending is None and time.monotonic() < deadline:  # the sampler saw the breach
        time.sleep(0.02)
    assert run._gate.pending
    with communication(run, 1024.0):  # on the program's thread, outside any phase
        pass
    assert breaches == [] and run._gate.stopped_by is None
    with pytest.raises(BudgetExceeded):
        run.safe_point()
    result = run.stop()
    assert len(breaches) == 1 and result.status == "interrupted"
    assert result.snapshot.counters[CALLS_COUNTER] == 1 and result.snapshot.counters[BYTES_COUNTER] == 1024.0


def test_a_distributed_stop_on_a_locked_ledger_returns_within_its_stated_bound(tmp_path: Path) -> None:
    """The writer's end has one deadline (membership.END_TIMEOUT_S past the aggregation
    timeout) and uses the tracker's own connection: with the ledger locked by another
    connection for the whole end and a rank that never reports, stop() returns within
    STOP_BOUND_S + END_TIMEOUT_S + aggregation_timeout_s, here within the tracker's 5 s final
    write and the end's own deadline. It used to open a ledger of its own and give the rank's
    row and the job 5 s each besides (16.4 s)."""
    import sqlite3

    from greenai.distributed.membership import END_TIMEOUT_S
    from greenai.tracking.tracker import CLOSE_TIMEOUT_S, FINAL_WRITE_TIMEOUT_S, STOP_BOUND_S

    ledger = tmp_path / "l.db"
    join = Join(job_id="locked", rank=0, world_size=2, local_rank=0, store=MemoryKV(), aggregation_timeout_s=1.0)
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)
    run = greenai.Tracker("locked", meters=[meter], ledger=ledger, distributed=join, sample_hz=50).start()
    assert run.membership is not None and run.membership.end_bound_s() == END_TIMEOUT_S + 1.0  # type: ignore[attr-defined]
    time.sleep(0.3)
    other = sqlite3.connect(ledger, isolation_level=None, timeout=0.1, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        result = run.stop()
        took_s = time.monotonic() - t0
    finally:
        other.rollback()
        other.close()
    assert took_s < STOP_BOUND_S + END_TIMEOUT_S + 1.0  # the stated bound
    assert took_s < FINAL_WRITE_TIMEOUT_S + CLOSE_TIMEOUT_S + END_TIMEOUT_S + 1.0 + 0.5
    assert result.status == "completed" and result.stored is False
    assert result.job is not None and result.job.status == "incomplete"  # rank 1 never reported
    assert any("run could not be written" in note for note in result.notes)
    assert any("job locked could not be written" in note for note in result.notes)


FROZEN_STORE = """
import datetime, json, os, signal, subprocess, sys, time
import greenai
from greenai.distributed import Join
from greenai.distributed.channel import TorchStoreKV
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter

server = subprocess.Popen(
    [sys.executable, "-c", "import datetime, time, torch.distributed as d; "
     "s = d.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False, timeout=datetime.timedelta(seconds=60)); "
     "print(s.port, flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True,
)
try:
    store = TorchStoreKV("127.0.0.1", int(server.stdout.readline()), timeout_s=2.0)
    join = Join(job_id="frozen", rank=0, world_size=2, local_rank=0, store=store,
                aggregation_timeout_s=0.5, publish_interval_s=0.1)
    run = greenai.Tracker("frozen", meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)],
                          ledger=sys.argv[1], distributed=join, sample_hz=50).start()
    time.sleep(0.5)
    os.kill(server.pid, signal.SIGSTOP)  # the store's host hangs: a read waits for ever
    time.sleep(0.5)  # the sampler thread's next publication is stuck in it, holding the job's lock
    t0 = time.monotonic()
    result = run.stop()
    took_s = time.monotonic() - t0
finally:
    server.kill()
print(json.dumps({"took_s": took_s, "status": result.status, "stored": result.stored, "notes": list(result.notes),
                  "bound_s": run.membership.end_bound_s()}))
os._exit(0)  # threads stuck in the frozen store's calls are left behind
"""


def test_a_store_that_hangs_cannot_stretch_the_end_past_its_deadline(tmp_path: Path) -> None:
    """A real TCP store whose process is frozen (SIGSTOP): a read from it waits for ever,
    whatever the client's timeout, and the sampler thread is stuck in one while it holds the
    job's lock. stop() still returns within its stated bound, the end saying it did not
    finish (it used to wait for that lock for ever)."""
    pytest.importorskip("torch.distributed")
    from greenai.distributed.membership import END_TIMEOUT_S
    from greenai.tracking.tracker import STOP_BOUND_S

    proc = subprocess.run(
        [sys.executable, "-c", FROZEN_STORE, str(tmp_path / "l.db")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["bound_s"] == END_TIMEOUT_S + 0.5
    assert out["took_s"] < STOP_BOUND_S + out["bound_s"]
    assert out["status"] == "completed" and out["stored"] is True
    assert any("did not finish" in note for note in out["notes"]), out["notes"]


HELD_SIGTERM = """
import os, signal, sys, time
import greenai
from greenai.distributed import Join
from greenai.distributed.channel import MemoryKV
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.faults import Blocking

hung = Blocking(SimulatedMeter("gpu:1", DeviceKind.GPU, 50.0), after=3)
join = Join(job_id="held", rank=0, world_size=1, local_rank=0, store=MemoryKV())
run = greenai.Tracker("held", meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0), hung],
                      ledger=sys.argv[1], distributed=join, sample_hz=50).start()
assert hung.blocked.wait(10)  # the sampler thread is in a tick that takes ~1 s more


def interrupt(signum, frame):
    # while stop() waits for the sampler: a SIGTERM arrives (the launcher's), and the program's
    # own alarm handler raises out of the tracker's end before the job's end was reached
    os.kill(os.getpid(), signal.SIGTERM)
    raise TimeoutError("the program's own alarm")


signal.signal(signal.SIGALRM, interrupt)
signal.setitimer(signal.ITIMER_REAL, 0.2)
result = run.stop()
print("stopped:", result.status, result.notes, flush=True)
time.sleep(3)
print("survived", flush=True)
"""


def test_a_sigterm_held_at_the_end_is_delivered_even_when_the_end_fails(tmp_path: Path) -> None:
    """SIGTERM is held back while a rank ends; if the end raises before the job's part of it
    (here the program's own signal handler raises while stop() waits for the sampler), a
    SIGTERM that arrived meanwhile is still delivered when stop() returns. It used to be
    recorded and never delivered: the rank lived on."""
    proc = subprocess.run(
        [sys.executable, "-c", HELD_SIGTERM, str(tmp_path / "l.db")], capture_output=True, text=True, timeout=60
    )
    assert "TimeoutError: the program's own alarm" in proc.stderr  # the end raised, and was logged
    assert "survived" not in proc.stdout, proc.stdout  # delivered when stop() was over: default action
    assert proc.returncode == -signal.SIGTERM, proc.stderr[-2000:]


STORE_SERVER = (
    "import datetime, time, torch.distributed as d; "
    "s = d.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False, timeout=datetime.timedelta(seconds=60)); "
    "print(s.port, flush=True); time.sleep(600)"
)

FROZEN_AT_START = """
import json, logging, os, signal, subprocess, sys, time
import greenai
from greenai.distributed import Join
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
server = subprocess.Popen([sys.executable, "-c", sys.argv[2]], stdout=subprocess.PIPE, text=True)
try:
    port = int(server.stdout.readline())
    os.kill(server.pid, signal.SIGSTOP)  # the launcher's store hangs before this rank starts
    # rank 1 of 2, the first of its node, as torchrun starts it without a run id: the job id
    # is agreed in the store
    os.environ.update(RANK="1", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.pop("TORCHELASTIC_RUN_ID", None)
    join = Join(join_timeout_s=1.0, publish_interval_s=0.1)
    run = greenai.Tracker("frozen-start", meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)],
                          ledger=sys.argv[1], distributed=join, sample_hz=50)
    t0 = time.monotonic()
    run.start()
    took_s = time.monotonic() - t0
    print("started", flush=True)
    time.sleep(0.5)
    result = run.stop()
finally:
    server.kill()
print(json.dumps({"took_s": took_s, "status": result.status, "stored": result.stored, "notes": list(result.notes),
                  "energy_j": result.energy_j, "job": result.job is not None, "run_id": result.run_id,
                  "bound_s": run.membership.join_bound_s()}))
os._exit(0)  # threads stuck in the frozen store's calls are left behind
"""


def test_a_store_that_hangs_at_start_holds_the_start_no_longer_than_its_deadline(tmp_path: Path) -> None:
    """The launcher's real TCP store frozen (SIGSTOP) before a rank starts: joining (connect,
    agree on the job id, publish and wait for devices) runs in a thread the rank waits for
    no longer than its deadline, then the rank goes on as a run of its own, not joined, with
    one warning and a note in its result and its ledger record. start() used to wait for
    ever."""
    pytest.importorskip("torch.distributed")
    from greenai.distributed.membership import START_TIMEOUT_S

    ledger = tmp_path / "l.db"
    proc = subprocess.run(
        [sys.executable, "-c", FROZEN_AT_START, str(ledger), STORE_SERVER],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["bound_s"] == START_TIMEOUT_S  # local rank 0 waits for no other rank
    assert out["took_s"] < out["bound_s"] + 1.0
    assert out["status"] == "completed" and out["stored"] is True and out["energy_j"] > 0 and not out["job"]
    assert any("not joined" in note for note in out["notes"]), out["notes"]
    assert proc.stderr.count("not joined") == 1, proc.stderr[-3000:]  # one warning
    with Ledger(ledger) as store:
        environment = store.get_run(out["run_id"]).start.environment
    assert environment["distributed"]["joined"] is False and environment["distributed"]["job_id"] is None
    assert environment["distributed"]["reads"]["cpu:0"]["scope"] == "node"  # local rank 0 reads the node
    assert any("not joined" in note for note in environment["distributed"]["notes"])


FROZEN_MID_RUN = """
import json, os, signal, subprocess, sys, time
import greenai
from greenai.distributed import Join
from greenai.distributed.channel import TorchStoreKV
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter

server = subprocess.Popen([sys.executable, "-c", sys.argv[2]], stdout=subprocess.PIPE, text=True)
try:
    store = TorchStoreKV("127.0.0.1", int(server.stdout.readline()), timeout_s=2.0)
    join = Join(job_id="frozen-mid", rank=0, world_size=2, local_rank=0, store=store, publish_interval_s=0.1,
                aggregation_timeout_s=0.5)
    run = greenai.Tracker("frozen-mid", meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)],
                          ledger=sys.argv[1], distributed=join, sample_hz=50).start()
    time.sleep(0.5)
    os.kill(server.pid, signal.SIGSTOP)  # the store hangs mid-run: the writer's next read of the others waits for ever
    frozen_at = run.snapshot().duration_s
    deadline = time.monotonic() + 60
    # the sampler goes on reading: a second and a half of run more than at the freeze
    while run.snapshot().duration_s < frozen_at + 1.5 and time.monotonic() < deadline:
        time.sleep(0.05)
    sampled_s = run.snapshot().duration_s - frozen_at
    result = run.stop()
finally:
    server.kill()
print(json.dumps({"sampled_after_freeze_s": sampled_s, "status": result.status, "stored": result.stored,
                  "notes": list(result.notes), "energy_j": result.energy_j, "duration_s": result.duration_s}))
os._exit(0)
"""


def test_a_store_that_hangs_mid_run_never_holds_the_sampler(tmp_path: Path) -> None:
    """The periodic publication of a rank's totals goes through a thread of its own: a store
    frozen mid-run leaves that thread stuck, not the sampler, which goes on reading until
    stop() (it used to be stuck in the publication: nothing measured after the freeze, and
    stop() gave up waiting for it)."""
    pytest.importorskip("torch.distributed")
    proc = subprocess.run(
        [sys.executable, "-c", FROZEN_MID_RUN, str(tmp_path / "l.db"), STORE_SERVER],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sampled_after_freeze_s"] >= 1.5, out
    assert out["status"] == "completed" and out["stored"] is True
    assert out["energy_j"] == pytest.approx(5.0 * out["duration_s"], rel=0.1)  # the whole run was read
    assert not any("sampler" in note for note in out["notes"]), out["notes"]


def test_a_device_exchange_past_the_start_deadline_leaves_the_rank_joined_reading_what_it_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that hangs once the job id is agreed, while the ranks say which devices they
    see: the rank's start waits for the exchange until its deadline (here 0.5 s + the 0.5 s
    wait for lower ranks), then the rank is joined and reads the node devices it sees (the
    job counts each once), with a note."""
    from greenai.distributed import membership

    monkeypatch.setattr(membership, "START_TIMEOUT_S", 0.5)
    release = threading.Event()

    class HangingKV(MemoryKV):
        def set(self, key: str, value: str) -> None:
            if "/inventory/" in key:
                release.wait()  # a store that never answers
            super().set(key, value)

    kv = HangingKV()
    join = Join(job_id="late", rank=1, world_size=2, local_rank=1, store=kv, join_timeout_s=0.5)
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)
    try:
        run = greenai.Tracker("late", meters=[meter], ledger=tmp_path / "l.db", distributed=join, sample_hz=50)
        run.start()
        assert run.membership is not None and run.membership.join_bound_s() == 1.0  # type: ignore[attr-defined]
        described = run.membership.describe()
        deadline = time.monotonic() + 30
        while kv.get("greenai/late/report/1") is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the publisher's thread publishes, the store answering again for reports
        result = run.stop()
    finally:
        release.set()
    assert described["joined"] is True and described["reads"]["cpu:0"]["scope"] == "node"
    assert any("did not answer within the start's deadline" in n for n in described["notes"])
    assert result.status == "completed" and result.energy_j > 0
    assert json.loads(kv.get("greenai/late/report/1") or "{}")["final"] is True


def test_a_store_address_where_nothing_listens_leaves_the_job_to_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listening at MASTER_ADDR:MASTER_PORT (refused) is told within the connection
    timeout, before the start's deadline: the rank joins through the ledger, as before, and is
    not mistaken for a rank whose store hangs."""
    import socket

    from greenai.distributed.channel import LedgerChannel

    closed = socket.socket()  # bound, never listening: connections are refused
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    for key, value in dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    meter = SimulatedMeter("cpu:0", DeviceKind.CPU, 5.0)
    try:
        run = greenai.Tracker("refused", meters=[meter], ledger=tmp_path / "l.db", distributed=True, sample_hz=50)
        run.start()
        result = run.stop()
    finally:
        closed.close()
    membership = run.membership
    assert membership is not None and isinstance(membership.channel, LedgerChannel)  # type: ignore[attr-defined]
    assert any("could not be reached" in note for note in membership.describe()["notes"])
    assert result.status == "completed" and result.energy_j > 0
