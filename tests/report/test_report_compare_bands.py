"""The HTML comparison gives each ratio to run 1 its ~95 % band and its verdict in words, the
same as `greenai runs compare` (one computation: ledger/compare.py): within or beyond the noise
of the meters and of the repeats, or not comparable because a run was measured on a busy machine,
whose row is marked."""

from __future__ import annotations

import dataclasses
import html as html_lib
import re
import time
from pathlib import Path

import pytest
from markupsafe import escape
from tests.helpers import greenai
from tests.ledger.ledger_factories import make_snapshot, make_start

from greenai.hardware.coload import CoLoadSummary
from greenai.ledger import compare_runs
from greenai.ledger.compare import band_legend, repeat_groups, verdict
from greenai.ledger.records import RunStatus
from greenai.ledger.store import Ledger
from greenai.reports import render_report

BUSY = CoLoadSummary(1.9, 2.0, 0.0, 0.0, busy_share=0.85, threshold_cores=0.3, seconds=20.0)
QUIET = CoLoadSummary(0.05, 0.2, 0.0, 0.0, busy_share=0.0, threshold_cores=0.3, seconds=20.0)


def store(ledger: Ledger, energy_j: float, name: str, coload: CoLoadSummary | None = QUIET) -> str:
    start = dataclasses.replace(make_start(name=name), started_at=time.time())
    ledger.begin_run(start)
    snapshot = make_snapshot(energy_j, rel_uncertainty=0.1, coload=coload)
    ledger.end_run(start.run_id, RunStatus.COMPLETED, start.started_at + 20, snapshot)
    return start.run_id


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A baseline repeated three times (100, 110, 90 J: ±10 % spread), a run 5 % cheaper, one
    half the energy, and one measured on a busy machine; every meter band ±10 %."""
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        ids = {
            "base": store(ledger, 100.0, "fp32"),
            "near": store(ledger, 95.0, "near"),
            "far": store(ledger, 50.0, "far"),
            "busy": store(ledger, 60.0, "busy", coload=BUSY),
        }
        store(ledger, 110.0, "fp32")
        store(ledger, 90.0, "fp32")
    return path, ids


def comparison_table(page: str) -> str:
    found = re.search(r'<section id="comparison">(.*?)<h3>Energy by device</h3>', page, re.S)
    assert found, "no comparison section"
    return found.group(1)


def rows(table: str) -> list[str]:
    """The comparison table's rows as text, one string each (tags stripped, entities decoded)."""
    first = table.split("</table>")[0]
    return [" ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in first.split("<tr")[2:]]


def cli_cells(table: str, run_id: str) -> list[str]:
    """A run's cells in a Rich table, each cell's lines (Rich wraps long cells) joined."""
    lines = table.splitlines()
    first = next(i for i, x in enumerate(lines) if x.startswith(f"│ {run_id} "))
    block = [lines[first]]
    for x in lines[first + 1 :]:
        if not x.startswith("│          │"):  # a row's wrapped lines have no id
            break
        block.append(x)
    columns = zip(*(x.strip("│").split("│") for x in block), strict=True)
    return [" ".join(" ".join(parts).split()) for parts in columns]


def test_each_ratio_has_its_band_and_the_same_verdict_as_runs_compare(runs) -> None:
    path, ids = runs
    order = [ids[k] for k in ("base", "near", "far", "busy")]
    page = render_report(*order, ledger=path)
    table = comparison_table(page)
    base, near, far, busy = rows(table)
    # the meters' ±10 % of each run in quadrature (14 %) with the baseline's repeats' spread (10 %)
    assert "0.95× ±17% within the noise (meters and repeats)" in near
    assert "0.5× ±17% beyond the noise (meters and repeats)" in far
    assert "0.6× ±17% busy machine (this run disturbed): not comparable" in busy
    assert "1× baseline" in base and "±" not in base  # the baseline's own ratios have no band
    assert "one of 3 repeats" in base
    assert busy.endswith("disturbed 1.90") and near.endswith("0.05")
    assert re.search(r'<tr class="disturbed"><td>4</td>', table) and table.count('<tr class="disturbed">') == 2
    assert str(escape(band_legend())) in page
    # the band's parts on hover, in the words of `runs compare --json`
    assert 'title="±17% (meters ±14%; repeats ±10%, 1 and 3 runs): within the noise"' in html_lib.unescape(table)
    # repeats whose spread is 0 (the same duration) are named as what the band rests on
    assert "1× ±0% within the noise (repeats)" in near

    # `runs compare` says the same next to the same ratios (one computation, ledger/compare.py)
    with Ledger(path) as ledger:
        records = [ledger.get_run(r) for r in order]
        comparison = compare_runs(records, repeat_groups(ledger, records))
    cli = greenai("runs", "compare", *order, ledger=path, env={"COLUMNS": "300"})
    assert cli.returncode == 0, cli.stderr
    for run in comparison.runs[1:]:
        words = verdict(run, comparison.baseline, "energy_j").words
        cells = cli_cells(cli.stdout, run.run_id[:8])
        assert f"{run.ratio['energy_j']:.3g}x {run.band_text('energy_j')}" in cells and words in cells
        assert words in html_lib.unescape(table)


def test_a_disturbed_baseline_makes_every_ratio_not_comparable(runs) -> None:
    path, ids = runs
    table = comparison_table(render_report(ids["busy"], ids["near"], ledger=path))
    assert "busy machine (the baseline disturbed): not comparable" in rows(table)[1]
