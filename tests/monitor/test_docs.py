"""docs/monitor.md documents every metric the exporter serves, with its type and labels, and
its sample scrape is one the exporter could have served."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from greenai.monitor.collector import METRICS

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitor.md"


def _table_rows() -> dict[str, tuple[str, set[str]]]:
    """metric -> (type, labels) from the doc's metrics table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        found = re.match(r"\| `(greenai_\w+)` \| (\w+) \|([^|]*)\|", line)
        if found:
            labels = {x.strip() for x in found.group(3).split(",") if x.strip()}
            rows[found.group(1)] = (found.group(2), labels)
    return rows


def test_every_metric_is_in_the_table_with_its_type_and_labels() -> None:
    rows = _table_rows()
    assert set(rows) == {spec.name for spec in METRICS}
    for spec in METRICS:
        assert rows[spec.name] == (spec.kind, set(spec.labels)), spec.name


def test_every_label_is_explained() -> None:
    text = DOC.read_text()
    labels = {label for spec in METRICS for label in spec.labels}
    explained = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", text, flags=re.M))
    names = {name for pair in explained for name in pair if name}
    assert labels <= names, labels - names


def test_the_sample_scrape_parses_and_has_every_metric() -> None:
    block = DOC.read_text().split("```text\n", 1)[1].split("```", 1)[0]
    families = {f.name: f for f in text_string_to_metric_families(block)}
    for spec in METRICS:
        family = families[spec.name.removesuffix("_total")]
        assert family.type == spec.kind and family.documentation == spec.help
        assert family.samples, spec.name
        assert all(set(s.labels) == set(spec.labels) for s in family.samples)
