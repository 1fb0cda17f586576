"""`greenai run` and `greenai runs ...` driven as a user would, against a real ledger file."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest
from tests.helpers import as_json, greenai, run_json

BUSY = "import time\nt=time.process_time()\nwhile time.process_time()-t<{s}: pass\n"
PARENT_OF_BUSY_CHILDREN = (
    "import subprocess, sys\n"
    "code = {code!r}\n"
    "procs = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(2)]\n"
    "[p.wait() for p in procs]\n"
)


def test_run_returns_the_programs_exit_code_and_records_failure(tmp_path):
    ledger = tmp_path / "l.db"
    proc = greenai("run", "--json", "--", sys.executable, "-c", "import sys; sys.exit(3)", ledger=ledger)
    assert proc.returncode == 3
    data = run_json(proc)  # on stderr: stdout is the program's
    assert data["status"] == "failed" and data["exit_code"] == 3


def test_run_counts_cpu_time_of_child_processes(tmp_path):
    """A parent that sleeps while two children burn CPU is charged for the children."""
    ledger = tmp_path / "l.db"
    idle = run_json(
        greenai(
            "run", "--json", "--name", "idle", "--", sys.executable, "-c", "import time; time.sleep(1.5)", ledger=ledger
        )
    )
    busy = run_json(
        greenai(
            "run",
            "--json",
            "--name",
            "busy",
            "--",
            sys.executable,
            "-c",
            PARENT_OF_BUSY_CHILDREN.format(code=BUSY.format(s=0.6)),
            ledger=ledger,
        )
    )
    cpu = lambda run: next(d for d in run["devices"] if d["device"] == "cpu:0")  # noqa: E731
    assert cpu(busy)["provenance"] == "estimated"
    # 1.2 cpu-seconds of children at >= 2.76 W dynamic (the default per-vCPU model) on top of idle
    idle_w = cpu(idle)["energy_j"] / idle["duration_s"]
    assert cpu(busy)["energy_j"] > idle_w * busy["duration_s"] + 1.2 * 2.0
    assert busy["status"] == "completed"


def test_sigterm_is_forwarded_and_run_ends_interrupted(tmp_path):
    ledger = tmp_path / "l.db"
    env_cmd = [
        sys.executable,
        "-m",
        "greenai",
        "run",
        "--json",
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(30)",
    ]
    import os

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}, "GREENAI_LEDGER": str(ledger)}
    proc = subprocess.Popen(env_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert json.loads(err[err.rindex("\n{\n") + 1 :] if not err.startswith("{") else err)["status"] == "interrupted"


@pytest.fixture(scope="module")
def ledger_with_runs(tmp_path_factory):
    ledger = tmp_path_factory.mktemp("runs") / "l.db"
    ids = []
    for name, secs in (("first", 0.3), ("second", 0.6)):
        data = run_json(
            greenai(
                "run",
                "--simulate",
                "--json",
                "--name",
                name,
                "--tag",
                "team=vision",
                "--",
                sys.executable,
                "-c",
                f"import time; time.sleep({secs})",
                ledger=ledger,
            )
        )
        ids.append(data["run_id"])
    return ledger, ids


def test_runs_list_json(ledger_with_runs):
    ledger, ids = ledger_with_runs
    runs = as_json(greenai("runs", "list", "--json", ledger=ledger))
    assert [r["run_id"] for r in runs] == ids[::-1]  # newest first
    assert all(r["provenance"] == "simulated" and r["energy_j"] > 0 for r in runs)
    assert runs[0]["tags"] == {"team": "vision"}


def test_runs_list_table_and_show(ledger_with_runs):
    ledger, ids = ledger_with_runs
    table = greenai("runs", "list", ledger=ledger)
    assert table.returncode == 0 and ids[0][:8] in table.stdout and "simulated" in table.stdout
    show = greenai("runs", "show", ids[1][:6], ledger=ledger)
    assert show.returncode == 0 and "second" in show.stdout and "gpu:0" in show.stdout


def test_runs_show_json_with_samples(ledger_with_runs):
    ledger, ids = ledger_with_runs
    data = as_json(greenai("runs", "show", ids[1], "--json", "--samples", ledger=ledger))
    assert data["run_id"] == ids[1]
    gpu = [s for s in data["samples"] if s["device"] == "gpu:0"]
    assert len(gpu) >= 3
    assert gpu[-1]["energy_j"] == pytest.approx(next(d["energy_j"] for d in data["devices"] if d["device"] == "gpu:0"))


def test_runs_export_csv_and_json(ledger_with_runs, tmp_path):
    ledger, ids = ledger_with_runs
    out = greenai("runs", "export", "--format", "csv", ledger=ledger)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {r["run_id"] for r in rows} == set(ids)
    target = tmp_path / "runs.json"
    assert greenai("runs", "export", ids[0], "--format", "json", "-o", str(target), ledger=ledger).returncode == 0
    exported = json.loads(target.read_text())
    assert [r["run_id"] for r in exported] == [ids[0]]


def test_runs_compare(ledger_with_runs):
    ledger, ids = ledger_with_runs
    data = as_json(greenai("runs", "compare", ids[0], ids[1], "--json", ledger=ledger))
    base, other = data["runs"]
    assert base["ratio"]["energy_j"] == pytest.approx(1.0)
    assert other["ratio"]["energy_j"] == pytest.approx(other["energy_j"] / base["energy_j"])
    assert other["ratio"]["energy_j"] > 1.0  # the longer run of the same simulated power


def test_runs_delete_needs_confirmation_then_deletes(tmp_path):
    ledger = tmp_path / "l.db"
    run_id = run_json(greenai("run", "--simulate", "--json", "--", "true", ledger=ledger))["run_id"]
    refused = greenai("runs", "delete", run_id[:8], ledger=ledger, stdin=subprocess.DEVNULL)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    deleted = as_json(greenai("runs", "delete", run_id[:8], "--yes", "--json", ledger=ledger))
    assert deleted == {"deleted": [run_id]}
    assert as_json(greenai("runs", "list", "--json", ledger=ledger)) == []


def test_env_lists_meters_and_reasons(tmp_path):
    data = as_json(greenai("env", "--json", env={"GREENAI_RAPL_ROOT": str(tmp_path)}))
    names = {m["name"] for m in data["available"]}
    assert {"cpu_model", "dram_model", "io"} <= names
    reasons = {u["name"]: u["reason"] for u in data["unavailable"]}
    assert "rapl" in reasons and str(tmp_path) in reasons["rapl"]
    assert "nvml" in reasons


def test_run_keep_freed_memory_starts_the_program_with_glibcs_thresholds_and_tags_the_run(tmp_path):
    from greenai.tune.allocator import glibc_version

    if glibc_version() is None:
        pytest.skip("glibc's malloc only")
    ledger = tmp_path / "l.db"
    show = "import os; print(os.environ['MALLOC_TRIM_THRESHOLD_'], os.environ['MALLOC_MMAP_THRESHOLD_'])"
    proc = greenai("run", "--keep-freed-memory", "--quiet", "--", sys.executable, "-c", show, ledger=ledger)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(1 << 30), str(32 << 20)]  # trim, mmap
    [run] = as_json(greenai("runs", "list", "--json", ledger=ledger))
    assert run["tags"]["allocator"] == "keep-freed-memory"


def test_a_signal_forwarded_after_the_program_exited_does_not_lose_its_exit_status():
    """The signal handler must not reap the program (Popen.poll would), or the wait that keeps
    it readable for the last reading finds no child."""
    from greenai.cli.run_cmd import _forward_to, wait_for_exit

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(5)"])
    time.sleep(1.0)  # exited, not reaped
    _forward_to(proc, [], forward=True)(signal.SIGTERM, None)
    assert wait_for_exit(proc) == 5
    assert proc.wait() == 5


def test_wait_for_exit_reports_death_by_signal_as_popen_does():
    from greenai.cli.run_cmd import wait_for_exit

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc.send_signal(signal.SIGKILL)
    assert wait_for_exit(proc) == -signal.SIGKILL
    assert proc.wait() == -signal.SIGKILL
