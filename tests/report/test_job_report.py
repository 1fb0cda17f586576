"""`greenai report --job JOB` and `greenai.report(job=...)`: a distributed job's total, per node,
per rank and per device (which rank read each), its communication, then its ranks' runs that
the ledger holds; on jobs built as ranks write them (tests/distributed/job_world.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.distributed.job_world import EVIL_ID, SCRIPT, TRAIN, JobWorld, build
from tests.helpers import assert_one_line_error, greenai

from greenai.errors import GreenAIError, RunNotFoundError
from greenai.reports import render_report


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> JobWorld:
    return build(tmp_path_factory.mktemp("job-report") / "ledger.db")


def cells(html: str, row_needle: str) -> list[str]:
    """The text of each cell of the first table row holding `row_needle`."""
    row = next(r for r in re.findall(r"<tr>.*?</tr>", html, flags=re.S) if row_needle in r)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)]


def test_a_job_report_shows_its_total_nodes_ranks_devices_and_communication(jobs: JobWorld) -> None:
    html = render_report(job="train-1f", ledger=jobs.ledger)  # a prefix
    assert "greenai distributed job: train" in html and "Distributed job train" in html
    assert 'class="status completed"' in html and "id from TORCHELASTIC_RUN_ID" in html
    assert "1,668.0 J" in html and "± 4 %" in html and '<span class="prov estimated">estimated</span>' in html
    assert cells(html, "host-b</td>")[:4] == ["boot:bbbbbbbb", "host-b", "2", "1,200.0 J"]
    rank0 = cells(html, jobs.run_ids[0][:8])
    assert rank0[:7] == ["0", "boot:aaaaaaaa", "host-a", "100", jobs.run_ids[0][:8], "completed", "466.0 J"]
    assert "(in its host's ledger)" in " ".join(cells(html, '<td class="n">2</td><td class="mono">boot:bbbbbbbb'))
    assert cells(html, "boot:aaaaaaaa/rapl/cpu:0")[:5] == [
        "boot:aaaaaaaa/rapl/cpu:0",
        "node",
        "cpu",
        "rank 0 (cpu:0)",
        "400.0 J",
    ]
    assert cells(html, "GPU-0c1d2e3f")[3] == "rank 2 (gpu:0)"
    assert "Nothing counted twice: 5 node device(s), 2 per-process share(s)" in html
    assert "3000 collectives moved 2.16 GB" in html and "10.8 J of network energy" in html
    assert 'id="chart-job-ranks"' in html
    # the ranks' runs in this ledger follow, linked from the rank table; rank 2's is elsewhere
    assert html.count('<section class="run"') == 2
    assert f'<a href="#run1">{jobs.run_ids[0][:8]}</a>' in html and f'<a href="#run2">{jobs.run_ids[1][:8]}</a>' in html


def test_an_incomplete_job_with_hostile_names_is_escaped_and_says_what_is_missing(jobs: JobWorld) -> None:
    html = render_report(job="evil", ledger=jobs.ledger)
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "This job is <b>incomplete</b>: rank(s) 1 did not report the end of their run" in html
    assert "running, no end reported" in html
    assert "rank 1 (left out)" in html
    assert "1 of 1 node device(s) reported by more than one rank: each counted once" in html
    assert '<section class="run"' not in html  # neither rank's run is in this ledger
    tags = re.findall(r"<script[^>]*>", html, flags=re.IGNORECASE)
    assert len(tags) == 1 + html.count("Plotly.newPlot")  # plotly.js, then one per chart: no other


def test_report_job_from_the_command_line(jobs: JobWorld, tmp_path: Path) -> None:
    out = tmp_path / "job.html"
    proc = greenai("report", "--job", TRAIN, "-o", str(out), ledger=jobs.ledger)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "Devices and the rank that read each" in out.read_text()
    assert_one_line_error(greenai("report", "--job", "nope", ledger=jobs.ledger), 1, "no distributed job matches")
    with pytest.raises(RunNotFoundError):
        render_report(job="nope", ledger=jobs.ledger)
    with pytest.raises(GreenAIError, match="exactly one"):
        render_report(jobs.run_ids[0], job=EVIL_ID, ledger=jobs.ledger)
