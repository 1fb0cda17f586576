"""docs/benchmarks.md's "Integrations: throughput cost" section is what
benchmarks/integrations_overhead.py renders from its saved run (benchmarks/results/), never
edited by hand; the verdict follows the target."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as a script run from benchmarks/ sees _harness
    spec = importlib.util.spec_from_file_location(
        "integrations_overhead", ROOT / "benchmarks" / "integrations_overhead.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_published_section_renders_from_the_saved_run(bench) -> None:
    from _harness import DOCS, markers

    saved = json.loads((ROOT / "benchmarks" / "results" / "integrations_overhead.json").read_text())
    info, command, date = saved.pop("machine"), saved.pop("command"), saved.pop("date")
    start, end = markers(bench.KEY)
    published = DOCS.read_text().split(start + "\n", 1)[1].split(end, 1)[0]
    assert bench.render(saved, command, date, info) == published


def test_the_verdict_follows_the_interval(bench) -> None:
    def cost(median: float, low: float, high: float) -> dict[str, float]:
        return {"cost": median, "cost_low": low, "cost_high": high}

    assert bench.verdict(cost(0.001, -0.002, 0.004)).startswith("met (")
    assert bench.verdict(cost(0.02, 0.006, 0.03)).startswith("not met (")
    assert bench.verdict(cost(0.003, -0.01, 0.02)).startswith("met at the median, not resolved")
    assert bench.verdict(cost(0.02, -0.01, 0.05)).startswith("not met at the median, not resolved")
