"""benchmarks/_harness.py: statistics on known data, interleaving, load arithmetic, docs sections
and worker processes."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

import _harness as h
from _harness import CpuSample


def test_median_ci_is_the_narrowest_order_statistic_interval_reaching_the_confidence() -> None:
    # n = 10: [X_(2), X_(9)] covers the median with 1 - 2 (1 + 10) / 1024 = 97.85 %; the next
    # narrower one, [X_(3), X_(8)], only with 1 - 2 (1 + 10 + 45) / 1024 = 89.06 %
    low, high, confidence = h.median_ci([7.0, 1.0, 10.0, 3.0, 5.0, 2.0, 9.0, 4.0, 8.0, 6.0])
    assert (low, high) == (2.0, 9.0)
    assert confidence == pytest.approx(1 - 22 / 1024)
    low, high, confidence = h.median_ci(list(range(1, 11)), confidence=0.85)
    assert (low, high, confidence) == (3, 8, pytest.approx(1 - 112 / 1024))


def test_median_ci_of_too_few_values_is_their_range_with_its_lower_confidence() -> None:
    low, high, confidence = h.median_ci([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (low, high) == (1.0, 5.0)
    assert confidence == pytest.approx(1 - 2 / 32)  # < 95 %: five values cannot reach it


def test_spreads_ratios_quantiles_and_mape() -> None:
    assert h.spread([2.0, 3.0, 4.0]) == 2.0
    assert h.spread(iter([1.5, 1.5])) == 1.0
    # a round's own ratios, not the ratio of the medians (4/2, 2/1, 9/3 -> 2, 2, 3)
    assert h.median_ratio([4.0, 2.0, 9.0], [2.0, 1.0, 3.0]) == 2.0
    with pytest.raises(ValueError):
        h.median_ratio([1.0, 2.0], [1.0])
    values = [float(v) for v in range(1, 11)]
    assert h.quantile(values, 0.9) == 9.0  # rank round(0.9 x 9) = 8
    assert h.quantile(values, 0.5) == 6.0  # rank round(4.5) = 5 (half up)
    assert h.quantile(values, 1.0) == 10.0
    assert h.quantile([3.0], 0.9) == 3.0
    assert h.mape([0.1, -0.2, 0.3]) == pytest.approx(0.2)
    assert math.isnan(h.mape([]))


def test_median_call_s_leaves_out_the_warm_up_and_runs_before_untimed() -> None:
    calls: list[str] = []
    t = h.median_call_s(lambda: calls.append("call"), 10, before=lambda: calls.append("before"), warmup=0.2)
    assert calls == ["before", "call"] * 10
    assert 0 <= t < 0.01


def test_rotations_put_every_alternative_in_every_position() -> None:
    assert h.rotated("ABC", 0) == ["A", "B", "C"]
    assert h.rotated("ABC", 4) == ["B", "C", "A"]
    assert h.rotated([], 3) == []
    assert [order for _, order in h.rotations("ABC", 4)] == [list("ABC"), list("BCA"), list("CAB"), list("ABC")]
    assert ["".join(order) for _, order in h.rotations("AB", 4)] == ["AB", "BA", "AB", "BA"]  # ABBA
    assert [order[0] for _, order in h.rotations(list(range(8)), 3, stride=3)] == [0, 3, 6]
    assert [r for r, _ in h.rotations("AB", 3)] == [0, 1, 2]


def test_for_seconds_takes_at_least_and_at_most() -> None:
    assert len(list(h.for_seconds(0.0, at_least=3))) == 3
    assert len(list(h.for_seconds(10.0, at_least=3, at_most=7))) == 7
    start = time.perf_counter()
    n = len(list(h.for_seconds(0.02, at_least=1)))
    assert n >= 1 and time.perf_counter() - start >= 0.02


def test_other_processes_cores_are_the_machines_busy_time_minus_ours_plus_steal() -> None:
    before = CpuSample(wall_s=10.0, busy_s=100.0, steal_s=5.0, own_s=20.0)
    after = CpuSample(wall_s=12.0, busy_s=103.0, steal_s=5.5, own_s=21.0)
    assert after.others_cores(before) == pytest.approx((3.0 - 1.0 + 0.5) / 2)
    assert after.others_cores(before, steal=False) == pytest.approx(1.0)
    assert after.steal_cores(before) == pytest.approx(0.25)
    assert after.own_cores(before) == pytest.approx(0.5)
    # the counters tick in 1/CLK_TCK s: ours can read ahead of the machine's, never below zero
    ahead = CpuSample(wall_s=12.0, busy_s=100.5, steal_s=5.0, own_s=21.0)
    assert ahead.others_cores(before) == 0.0
    assert before.others_cores(before) == 0.0  # no time passed


def test_cpu_sample_and_wait_for_quiet_on_this_machine() -> None:
    a = h.cpu_sample()
    sum(range(200_000))
    b = h.cpu_sample()
    assert b.wall_s > a.wall_s and b.own_s >= a.own_s and b.busy_s >= a.busy_s
    assert b.others_cores(a) >= 0.0
    start = time.perf_counter()
    waited = h.wait_for_quiet(0.0, window_s=0.01)  # no time to wait: one window, then give up
    assert 0.01 <= waited <= time.perf_counter() - start


SECTION = "## Figures\n\nnew figures\n"


def test_write_section_replaces_between_the_markers_and_keeps_the_rest(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\nintro\n\n<!-- demo:start -->\nold figures\n<!-- demo:end -->\nprose after\n\n"
        "<!-- other:start -->\nother\n<!-- other:end -->\n"
    )
    h.write_section(doc, "demo", SECTION)
    assert doc.read_text() == (
        "# Benchmarks\n\nintro\n\n<!-- demo:start -->\n## Figures\n\nnew figures\n<!-- demo:end -->\nprose after\n\n"
        "<!-- other:start -->\nother\n<!-- other:end -->\n"
    )
    once = doc.read_text()
    h.write_section(doc, "demo", SECTION.rstrip("\n"))  # a section without its last newline: the same
    assert doc.read_text() == once


def test_write_section_appends_a_section_the_file_does_not_have(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n\n\n")
    h.write_section(doc, "demo", SECTION)
    assert (
        doc.read_text()
        == "# Benchmarks\n\nintro\n\n<!-- demo:start -->\n## Figures\n\nnew figures\n<!-- demo:end -->\n"
    )
    h.write_section(doc, "demo", "## Figures\n\nnewer\n")  # now it has it: replaced, not appended again
    assert doc.read_text().count("<!-- demo:start -->") == 1
    assert doc.read_text().endswith("## Figures\n\nnewer\n<!-- demo:end -->\n")


def test_write_section_creates_a_missing_file_and_refuses_half_a_pair_of_markers(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "benchmarks.md"
    h.write_section(doc, "demo", SECTION)
    assert doc.read_text() == h.INTRO + "<!-- demo:start -->\n" + SECTION + "<!-- demo:end -->\n"
    broken = tmp_path / "broken.md"
    broken.write_text("<!-- demo:end -->\n<!-- demo:start -->\n")
    with pytest.raises(ValueError, match="demo:start"):
        h.write_section(broken, "demo", SECTION)
    broken.write_text("<!-- demo:start -->\nno end\n")
    with pytest.raises(ValueError):
        h.write_section(broken, "demo", SECTION)


def test_run_worker_returns_the_last_json_line_or_raises_with_stderr(tmp_path: Path) -> None:
    ok = tmp_path / "ok.py"
    ok.write_text("import json, sys\nprint('progress')\nprint(json.dumps({'args': sys.argv[1:]}))\n")
    assert h.run_worker(ok, ["--x", "1"]) == {"args": ["--x", "1"]}
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nsys.stderr.write('it broke')\nsys.exit(3)\n")
    with pytest.raises(RuntimeError, match=r"bad.py --y failed \(exit 3\):\nit broke"):
        h.run_worker(bad, ["--y"])


def test_command_quotes_the_arguments() -> None:
    assert h.command("/x/benchmarks/overhead.py", ["--write", "a b.md"]) == (
        "python benchmarks/overhead.py --write 'a b.md'"
    )
    assert h.command("overhead.py", []) == "python benchmarks/overhead.py"


def test_argument_helpers() -> None:
    assert h.ints("4,32,") == [4, 32]
    assert h.names("mlp,gru") == ["mlp", "gru"]
    assert h.names("") == []
    ap = h.parser("First line.\n\nMore.")
    h.add_write(ap, "demo")
    assert ap.description == "First line."
    assert ap.parse_args([]).write is None
    assert ap.parse_args(["--write"]).write == h.DOCS
    assert ap.parse_args(["--write", "x.md"]).write == Path("x.md")
    assert h.parser("First\nparagraph.\n\nMore.", paragraph=True).description == "First\nparagraph."
    assert h.package_version("pytest") is not None
    assert h.package_version("surely-not-an-installed-distribution") is None
