"""`greenai run` says what is true (issue 17 section 3): its JSON never mixes with the
program's output, the whole program is tracked and nothing runs when tracking cannot start,
the command line and exit code are stored, the run is named after the script, and an option
greenai does not know is an error."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest
from tests.helpers import as_json, assert_one_line_error, greenai, run_json

from greenai.cli.run_cmd import default_run_name

PRINTS = "import sys; print('out of the program'); print('err of the program', file=sys.stderr)"


def test_json_never_mixes_with_the_programs_stdout(tmp_path):
    ledger = tmp_path / "l.db"
    proc = greenai("run", "--simulate", "--json", "--", sys.executable, "-c", PRINTS, ledger=ledger)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "out of the program\n"  # `> out` keeps the program's output alone
    data = run_json(proc)
    assert data["status"] == "completed" and data["exit_code"] == 0
    assert proc.stderr.startswith("err of the program\n")


def test_json_out_writes_a_file_of_its_own(tmp_path):
    ledger, target = tmp_path / "l.db", tmp_path / "run.json"
    proc = greenai("run", "--simulate", "--json-out", str(target), "--", sys.executable, "-c", PRINTS, ledger=ledger)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "out of the program\n"
    data = json.loads(target.read_text())
    assert data["status"] == "completed" and data["command"][0] == sys.executable
    assert "Energy" in proc.stderr  # the summary still goes to stderr
    refused = greenai("run", "--json-out", str(tmp_path / "no" / "dir.json"), "--", "touch", str(tmp_path / "M"))
    assert_one_line_error(refused, 1, "--json-out: cannot write")
    assert not (tmp_path / "M").exists()


def test_the_whole_program_is_tracked(tmp_path):
    """The tracker started after the program: `sleep 1` read about 0.95 s. The program writes
    the time it began and ended (around its `sleep 1`): the run holds both, whatever the
    machine's load (a wall-time bound on the run, < 2 s, failed on a busy machine)."""
    times = tmp_path / "times"
    program = f"date +%s.%N > {times}; sleep 1; date +%s.%N >> {times}"
    data = run_json(greenai("run", "--simulate", "--json", "--", "sh", "-c", program, ledger=tmp_path / "l.db"))
    began, ended = (float(line) for line in times.read_text().split())
    assert data["started_at"] <= began and ended <= data["ended_at"]
    assert data["duration_s"] >= ended - began >= 1.0


def test_nothing_runs_when_tracking_cannot_start(tmp_path):
    """A ledger that cannot be written let the program start, then killed it."""
    marker = tmp_path / "ran"
    proc = greenai("run", "--", "sh", "-c", f"touch {marker}", env={"GREENAI_LEDGER": "/proc/greenai/x.db"})
    assert_one_line_error(proc, 1, "/proc/greenai/x.db")
    assert not marker.exists()
    missing = greenai("run", "--", "no-such-program-here", ledger=tmp_path / "l.db")
    assert_one_line_error(missing, 1, "command not found: no-such-program-here")
    assert not (tmp_path / "l.db").exists()  # refused before the ledger was opened


def test_command_line_and_exit_code_are_stored(tmp_path):
    ledger = tmp_path / "l.db"
    script = tmp_path / "train.py"
    script.write_text("import sys\nsys.exit(3)\n")
    proc = greenai("run", "--simulate", "-q", "--", sys.executable, str(script), "--epochs", "2", ledger=ledger)
    assert proc.returncode == 3
    [run] = as_json(greenai("runs", "list", "--json", ledger=ledger))
    assert run["name"] == "train.py"  # the script, not "python"
    shown = as_json(greenai("runs", "show", run["run_id"], "--json", ledger=ledger))
    assert shown["command"] == [sys.executable, str(script), "--epochs", "2"] and shown["exit_code"] == 3
    text = " ".join(greenai("runs", "show", run["run_id"], ledger=ledger, env={"COLUMNS": "300"}).stdout.split())
    assert f"command: {sys.executable} {script} --epochs 2 (exit code 3)" in text
    [row] = csv.DictReader(io.StringIO(greenai("runs", "export", "--format", "csv", ledger=ledger).stdout))
    assert row["command"] == f"{sys.executable} {script} --epochs 2" and row["exit_code"] == "3"


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["python", "train.py", "--epochs", "3"], "train.py"),
        (["/usr/bin/python3.11", "-u", "-X", "dev", "src/train.py"], "train.py"),
        (["python3", "-m", "torch.distributed.run", "x.py"], "torch.distributed.run"),
        (["python", "-mpkg.train"], "pkg.train"),
        (["python", "-c", "print(1)"], "python -c"),
        (["bash", "-e", "jobs/run.sh"], "run.sh"),
        (["python"], "python"),
        (["./train"], "train"),
        (["sleep", "1"], "sleep"),
    ],
)
def test_default_run_name(command, name):
    assert default_run_name(command) == name


def test_unknown_options_are_errors_and_the_programs_options_are_its_own(tmp_path):
    proc = greenai("run", "--foo", "--", "true", ledger=tmp_path / "l.db")
    assert_one_line_error(proc, 2, "No such option: --foo")
    assert not (tmp_path / "l.db").exists()
    # after the program's name every word is the program's, even one greenai also has
    echo = "import sys; print(sys.argv[1:])"
    proc = greenai(
        "run", "--simulate", "-q", "--name", "mine", sys.executable, "-c", echo, "--name", "x", "--json",
        ledger=tmp_path / "l.db",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['--name', 'x', '--json']"
    assert [r["name"] for r in as_json(greenai("runs", "list", "--json", ledger=tmp_path / "l.db"))] == ["mine"]


# greenai run with a signal sent the moment its tracker has started (Tracker.start wrapped): the
# window where greenai's handlers were not yet in place (they came after a second ledger was
# opened to record the command line, whose busy wait is 30 s)
SIGNAL_AT_START = """
import os, signal, sys
from greenai.tracking import tracker

started = tracker.Tracker.start

def start(self):
    out = started(self)
    if sys.argv[1] == "INT":
        os.killpg(0, signal.SIGINT)  # Ctrl-C: the terminal signals its whole foreground group
    else:
        os.kill(os.getpid(), signal.SIGTERM)  # kill PID: greenai alone
    return out

tracker.Tracker.start = start
from greenai.cli.main import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_right_after_the_tracker_started_ends_the_run_interrupted(tmp_path, sig):
    import os
    import signal
    import subprocess
    import time

    ledger, marker = tmp_path / "l.db", tmp_path / "ran"
    program = [sys.executable, "-c", f"import time; open({str(marker)!r}, 'w').close(); time.sleep(30)"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")} | {"GREENAI_LEDGER": str(ledger)}
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_AT_START, sig, "run", "--simulate", "--json", "--", *program],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        start_new_session=True,  # a process group of its own: the test is not in it
    )
    assert time.monotonic() - began < 25, proc.stderr  # the program did not run its 30 s
    number = signal.SIGINT if sig == "INT" else signal.SIGTERM
    # the held program got the signal (SIGTERM forwarded to it; SIGINT from the group) or was let
    # go unstarted: it never ran, and its exit is greenai's
    assert proc.returncode in (1, 128 + number), proc.stderr
    assert not marker.exists() and "Traceback" not in proc.stderr
    data = run_json(proc)
    assert data["status"] == "interrupted"
    [run] = as_json(greenai("runs", "list", "--json", ledger=ledger))
    assert run["status"] == "interrupted"
    shown = as_json(greenai("runs", "show", run["run_id"], "--json", ledger=ledger))
    assert shown["command"] == program and shown["exit_code"] == proc.returncode
