"""Real torch.distributed: 2 ranks with gloo on this machine, launched by torchrun, each
tracking itself with greenai.track; the job they make in the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")
pytest.importorskip("sklearn")

from greenai.distributed import read_job
from greenai.ledger import distributed as rows
from greenai.ledger.store import Ledger
from greenai.testing.fake_powercap import FakePowercap

HERE = Path(__file__).parent
WORKER = HERE / "ddp_worker.py"


def torchrun(mode: str, workdir: Path, *extra: str, env: dict[str, str], wrap: list[str] | None = None, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(WORKER), mode, str(workdir)]
    return subprocess.Popen(
        [*(wrap or []), *cmd, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def base_env(tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(GREENAI_LEDGER=str(tmp_path / "ledger.db"), GREENAI_INTENSITY="100", OMP_NUM_THREADS="1")
    env.update(more)
    return env


def results(workdir: Path) -> list[dict]:
    return [json.loads((workdir / f"result-{r}.json").read_text()) for r in (0, 1)]


def test_a_node_meter_both_ranks_see_is_counted_once(tmp_path: Path) -> None:
    """The fake powercap tree stands for this node's RAPL: both ranks could read it; the job
    holds its energy once (not twice), read by rank 0, and says which rank read what."""
    fake = FakePowercap(tmp_path / "powercap")
    package = fake.add_package(0, subzones=("core", "dram"))
    dram = fake.subzone(package, "dram")
    workdir = tmp_path / "work"
    workdir.mkdir()
    proc = torchrun("node", workdir, "--steps", "10", env=base_env(tmp_path, GREENAI_RAPL_ROOT=str(fake.root)))
    deadline = time.monotonic() + 120
    while not all((workdir / f"ready-{r}").exists() for r in (0, 1)):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    package_j, dram_j = 0.0, 0.0
    for _ in range(20):  # 400 J of package and 60 J of DRAM over ~1 s, while both ranks track
        fake.add_energy(package, 20.0)
        fake.add_energy(dram, 3.0)
        package_j, dram_j = package_j + 20.0, dram_j + 3.0
        time.sleep(0.05)
    time.sleep(0.5)  # a sampler tick past the last step
    (workdir / "stop").write_text("")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    r0, r1 = results(workdir)
    assert r0["job_id"] == r1["job_id"] and r0["job_status"] == "completed"
    job = read_job(r0["job_id"], tmp_path / "ledger.db")
    assert job.status == "completed" and job.world_size == 2 and len(job.ranks) == 2
    node = {(r.rank, d.device): d for r in job.ranks for d in r.devices if d.scope == "node"}
    assert set(node) >= {(0, "cpu:0"), (0, "dram:0")}
    assert not any(rank == 1 and dev in ("cpu:0", "dram:0") for rank, dev in node)
    assert node[(0, "cpu:0")].energy_j == pytest.approx(package_j, abs=1e-6)
    assert node[(0, "dram:0")].energy_j == pytest.approx(dram_j, abs=1e-6)
    rapl_j = sum(d.energy_j for r in job.ranks for d in r.devices if "/rapl/" in d.physical)
    assert rapl_j == pytest.approx(package_j + dram_j, abs=1e-6)  # the node's energy, not 2x
    assert "cpu:0" not in r1["devices"] and r0["devices"]["cpu:0"] == pytest.approx(package_j, abs=1e-6)
    assert job.energy_j == pytest.approx(sum(d.energy_j for r in job.ranks for d in r.devices))
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert ledger.transaction(lambda c: rows.counted_twice(c, job.job_id), write=False) == []
        assert ledger.transaction(lambda c: rows.job_of_run(c, r1["run_id"]), write=False) == (job.job_id, 1)
        run1 = ledger.get_run(r1["run_id"])
    assert run1.start.environment["distributed"]["rank"] == 1
    assert any("/rapl/" in p for p in run1.start.environment["distributed"]["left_to_other_ranks"])
    # the all-reduce, timed and counted on both ranks
    assert job.comm.calls >= 2 * 10 and job.comm.bytes > 0 and job.comm.seconds > 0
    assert all(r.comm.calls >= 10 for r in job.ranks)


def test_per_process_estimates_add_up_and_match_greenai_run_around_torchrun(tmp_path: Path) -> None:
    """No RAPL: each rank's CPU and DRAM models estimate its own process tree; the job is their
    sum, the node's idle CPU power once. `greenai run` around the whole torchrun (one run for
    the tree, the same launch) agrees within the estimates' band and says it saw 2 ranks."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = base_env(tmp_path, GREENAI_RAPL_ROOT=str(tmp_path / "no-powercap"))
    greenai = [sys.executable, "-m", "greenai", "run", "--json", "--name", "wrapper", "--"]
    proc = torchrun("train", workdir, "--steps", "1000", env=env, wrap=greenai)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    wrapper = json.loads(out[out.index("{") : out.rindex("}") + 1])
    r0, r1 = results(workdir)
    job = read_job(r0["job_id"], tmp_path / "ledger.db")
    assert job.status == "completed"
    assert job.energy_j == pytest.approx(r0["energy_j"] + r1["energy_j"], rel=1e-9)
    assert job.energy_j == pytest.approx(sum(r.energy_j for r in job.ranks), rel=1e-9)
    # every device of a rank is its own process tree's, but the CPU's idle power, rank 0's alone
    for report in job.ranks:
        scopes = {d.device: d.scope for d in report.devices}
        assert scopes["cpu:0"] == "process" and scopes["dram:0"] == "process"
    with Ledger(tmp_path / "ledger.db") as ledger:
        run1 = ledger.get_run(r1["run_id"])
    assert f"{job.ranks[0].node}/cpu idle" in run1.start.environment["distributed"]["left_to_other_ranks"]
    assert wrapper["ranks"] == 2
    band_j = max(job.energy_j * job.rel_uncertainty, wrapper["energy_j"] * wrapper["rel_uncertainty"])
    assert abs(wrapper["energy_j"] - job.energy_j) <= band_j, (wrapper["energy_j"], job.energy_j, band_j)


def test_a_rank_killed_mid_run_leaves_an_incomplete_job_within_the_timeout(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = base_env(tmp_path, GREENAI_RAPL_ROOT=str(tmp_path / "no-powercap"))
    timeout_s = 3.0
    proc = torchrun("kill", workdir, "--steps", "60", "--timeout", str(timeout_s), env=env)
    killed_at: list[float] = []

    def watch() -> None:  # when rank 1's process is gone
        while not (workdir / "ready-1").exists() and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is None:
            pid = int((workdir / "ready-1").read_text())
            while proc.poll() is None:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    killed_at.append(time.monotonic())
                    return
                time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = proc.communicate(timeout=240)
    ended_at = time.monotonic()
    watcher.join(5)
    assert proc.returncode != 0
    assert killed_at, out
    assert ended_at - killed_at[0] < timeout_s + 15.0, out  # the launcher ends within the timeout (and its grace)
    with Ledger(tmp_path / "ledger.db") as ledger:
        jobs = ledger.transaction(lambda c: rows.list_jobs(c), write=False)
    assert len(jobs) == 1, out
    job = jobs[0]
    assert job.status == "incomplete", (job, out)
    assert job.missing_ranks == (1,)
    assert job.ended_at is not None  # written by rank 0 at its end, not only judged incomplete
    rank0 = next(r for r in job.ranks if r.rank == 0)
    assert rank0.final and rank0.status in ("failed", "interrupted")
    assert any("rank 1 did not report the end of its run" in n for n in job.notes)
    rank1 = next(r for r in job.ranks if r.rank == 1)
    assert not rank1.final and rank1.energy_j > 0 and rank1.duration_s > 0  # what it had published
    assert job.energy_j >= rank1.energy_j
