"""Names, tags, notes, errors and ledger paths are printed as text (issue 16, item 3).

What a user or a ledger supplies is never read as Rich markup (`[/oops]` used to fail every
command that printed it, `[link=...]` made a clickable link), never reaches the terminal as a
control sequence (ESC is shown as the four characters \\x1b), and never runs as a spreadsheet
formula in a CSV export. Each command is driven as a user would, as a separate process."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from tests.helpers import greenai, run_json

from greenai.ledger.candidates import CandidateRow, record_candidates
from greenai.ledger.store import Ledger

BAD_CLOSE = "[/oops]"
LINK = "[link=http://evil.example]click[/link]"
# OSC 0 sets the window title, CSI 2J clears the screen
TITLE = "\x1b]0;pwned\x07\x1b[2Jt"
TITLE_SHOWN = r"\x1b]0;pwned\x07\x1b[2Jt"
FORMULA = '=HYPERLINK("http://evil.example","x")'
EMOJI = ":smile: [bold]b"


def plain(proc) -> str:
    """stdout and stderr of a command that must have succeeded and sent no ESC byte."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    out = proc.stdout + proc.stderr
    assert "\x1b" not in out and "\x07" not in out, out
    assert "internal error" not in out, out
    return out


def columns(out: str) -> list[str]:
    """The text of each column of the table in `out`, its lines joined and whitespace dropped
    (Rich folds a long cell over several lines)."""
    rows = [line.split("│")[1:-1] for line in out.splitlines() if line.startswith("│")]
    return ["".join("".join(row[i].split()) for row in rows) for i in range(len(rows[0]))]


def squashed(text: str) -> str:
    return "".join(text.split())


def track(ledger: Path, name: str, *tags: str) -> dict:
    args = [a for t in tags for a in ("--tag", t)]
    proc = greenai(
        "run", "--simulate", "--name", name, *args, "--json", "--", sys.executable, "-c", "pass", ledger=ledger
    )
    assert proc.returncode == 0, proc.stderr
    return run_json(proc)  # greenai run's JSON is on stderr: stdout is the program's


def test_hostile_names_print_as_text_in_run_and_every_runs_command(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    # the summary of `greenai run` itself: exit 0 (the program's), the name as written
    out = plain(greenai("run", "--simulate", "--name", BAD_CLOSE, "--tag", "k=[/v]", "--", "true", ledger=ledger))
    assert f"Run {BAD_CLOSE} (" in out
    out = plain(greenai("run", "--simulate", "--name", TITLE, "--", "true", ledger=ledger))
    assert f"Run {TITLE_SHOWN} (" in out
    ids = {
        name: track(ledger, name, f"tag=[/t]{TITLE}", "[red]key=v")["run_id"]
        for name in (LINK, FORMULA, EMOJI, "line\nbreak")
    }

    listed = plain(greenai("runs", "list", ledger=ledger))  # the whole ledger stays readable
    names = columns(listed)[1]  # a narrow terminal folds long names over several lines
    for shown in (BAD_CLOSE, TITLE_SHOWN, LINK, FORMULA, EMOJI, r"line\nbreak"):
        assert "".join(shown.split()) in names
    assert "😄" not in listed  # emoji codes are not replaced either

    shown = plain(greenai("runs", "show", ids[LINK], ledger=ledger))
    assert f"Run {LINK} (" in shown
    assert f"tag=[/t]{TITLE_SHOWN}" in shown and "[red]key=v" in shown
    assert f"Run {EMOJI} (" in plain(greenai("runs", "show", ids[EMOJI], ledger=ledger))

    compared = plain(greenai("runs", "compare", ids[LINK], ids[FORMULA], ids[EMOJI], ledger=ledger))
    # the table's width depends on its words (a run measured on a busy machine gets longer ones):
    # a name may be folded over several lines
    compared_names = columns(compared)[1]
    assert f"Compared with {LINK}" in compared
    assert "".join(FORMULA.split()) in compared_names and "".join(EMOJI.split()) in compared_names

    # CSV: the formula is text to a spreadsheet, the other names are kept as they are
    exported = greenai("runs", "export", "--format", "csv", ledger=ledger)
    assert exported.returncode == 0, exported.stderr
    names = [row["name"] for row in csv.DictReader(io.StringIO(exported.stdout))]
    assert "'" + FORMULA in names and FORMULA not in names
    assert {BAD_CLOSE, TITLE, LINK, EMOJI, "line\nbreak"} <= set(names)
    # JSON keeps every name exactly, with control characters escaped by JSON itself
    exported = greenai("runs", "export", "--format", "json", ledger=ledger)
    assert "\x1b" not in exported.stdout
    assert {r["name"] for r in json.loads(exported.stdout)} == {BAD_CLOSE, TITLE, LINK, FORMULA, EMOJI, "line\nbreak"}


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    starts = ("=", "+", "-", "@", "\t", "\r")
    for start in starts:
        track(ledger, f"{start}cmd|' /C calc'!A0")
    out = tmp_path / "runs.csv"
    proc = greenai("runs", "export", "--format", "csv", "-o", str(out), ledger=ledger)
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["name"] for row in rows) == sorted(f"'{start}cmd|' /C calc'!A0" for start in starts)
    assert all(float(row["energy_j"]) > 0 for row in rows)  # numbers stay numbers


def test_a_ledger_path_with_markup_and_escapes(tmp_path: Path) -> None:
    folder = tmp_path / "a[" / "x]" / "\x1b[2J"
    folder.mkdir(parents=True)
    ledger = folder / "l.db"
    out = plain(greenai("run", "--simulate", "--name", "p", "--", "true", ledger=ledger))
    assert f"Stored in {tmp_path}/a[/x]/\\x1b[2J/l.db as run" in " ".join(out.split())
    assert "completed" in plain(greenai("runs", "list", ledger=ledger))  # the run, read back
    # an error that names the path shows it as text too
    missing = tmp_path / "[/y]" / "\x1b]0;t\x07.db"
    proc = greenai("runs", "list", "--ledger", str(missing))
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and r"[/y]/\x1b]0;t\x07.db" in proc.stderr


def test_studies_show_hostile_candidates_as_text(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    track(ledger, "seed")  # creates the ledger
    study = "[/s]\x1b[2J-study"
    with Ledger(ledger) as store:
        record_candidates(
            store,
            [
                CandidateRow(study, "baseline", "measured", energy_per_sample_j=2e-3, quality=0.9, quality_name=LINK),
                CandidateRow(
                    study,
                    BAD_CLOSE,
                    "failed",
                    reason=f"{TITLE} [bold]boom",
                    notes=(EMOJI,),
                    quality_name=LINK,
                ),
            ],
        )
    listed = plain(greenai("studies", ledger=ledger))
    assert r"[/s]\x1b[2J-s" in listed
    shown = plain(greenai("studies", "[/s]", ledger=ledger))
    assert BAD_CLOSE in shown and TITLE_SHOWN in shown and "[bold]boom" in shown and LINK in shown


def test_schedule_run_and_show_print_job_ids_errors_and_batch_ids_as_text(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    jobs = tmp_path / "jobs.json"
    fail = "import sys; sys.stderr.write('\\x1b]0;owned\\x07 [/e] [link=http://evil.example]x[/link]'); sys.exit(2)"
    jobs.write_text(
        json.dumps(
            {
                "job": [
                    {"id": BAD_CLOSE, "name": LINK, "command": [sys.executable, "-c", "pass"]},
                    {"id": TITLE, "command": [sys.executable, "-c", fail]},
                ]
            }
        )
    )
    batch = "[/b]\x1b[2J"
    ran = greenai("schedule", "run", str(jobs), "--simulate", "--batch-id", batch, ledger=ledger)
    assert ran.returncode == 1, ran.stderr  # one job failed: the batch's exit code, not an internal error
    out = ran.stdout + ran.stderr
    assert "\x1b" not in ran.stdout and "internal error" not in out
    assert "Batch " + r"[/b]\x1b[2J" in ran.stdout and r"as batch [/b]\x1b[2J" in ran.stdout
    job_ids, error = columns(ran.stdout)[0], columns(ran.stdout)[-1]
    assert job_ids == squashed(BAD_CLOSE + TITLE_SHOWN)
    # the failed job's error is its stderr's tail, shown as text
    assert squashed(r"exit code 2: \x1b]0;owned\x07 [/e] [link=http://evil.example]x[/link]") == error
    # the job's own stderr is passed through as the job wrote it (the job's output, as with
    # `greenai run`); greenai's progress lines name the jobs as text
    assert f"{TITLE_SHOWN}: failed" in ran.stderr

    shown = plain(greenai("schedule", "show", "[/b]", ledger=ledger))
    assert "Batch " + r"[/b]\x1b[2J" in shown
    assert columns(shown)[0] == job_ids and columns(shown)[-1] == error
    assert r"[/b]\x1b[2J" in plain(greenai("schedule", "batches", ledger=ledger))


# a directory whose name would retitle the window and clear the screen, and close a Rich tag
HOSTILE_DIR = "ledgers" + TITLE + "[/x]"


def hostile_ledger(tmp_path: Path, foreign: bool = False) -> Path:
    """A ledger path inside HOSTILE_DIR; `foreign`: an SQLite file that is not a greenai ledger
    there (every open of it is a LedgerError naming its path)."""
    import sqlite3

    folder = tmp_path / HOSTILE_DIR
    folder.mkdir(parents=True)  # "[/x]" holds a separator: two directories
    path = folder / "l.db"
    if foreign:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE other (x)")
        conn.close()
    return path


def assert_visible_path(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out, out
    assert TITLE_SHOWN + "[/x]" in out, out


def test_greenai_runs_warning_with_the_ledgers_path_prints_it_as_text(tmp_path: Path, capsys) -> None:
    from greenai.cli.run_cmd import _record_exit_code
    from greenai.config import Config

    path = hostile_ledger(tmp_path, foreign=True)
    _record_exit_code(Config(ledger=path), "0" * 32, 0)
    err = capsys.readouterr().err
    assert err.startswith("greenai: warning: could not record the exit code:") and "not a greenai ledger" in err
    assert_visible_path(err)


def test_the_dashboards_start_lines_print_the_ledgers_path_as_text(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import time
    import urllib.error
    import urllib.request

    path = hostile_ledger(tmp_path)  # not there yet: the dashboard says so and serves
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenai", "dashboard", "--ledger", str(path), "--port", "0", "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = lines[0].split()[2]
        for _ in range(100):  # serving (its signal handlers in place) before it is stopped
            try:
                urllib.request.urlopen(url, timeout=5).close()
                break
            except urllib.error.HTTPError:  # the page that says the ledger is not there: served
                break
            except OSError:
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert lines[0].startswith("greenai dashboard: http://127.0.0.1:"), (lines, err)
    assert lines[1].startswith("  ledger ") and "not there yet" in lines[1]
    assert_visible_path(lines[1] + out + err)
