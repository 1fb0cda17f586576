"""Scraping an exporter as Prometheus does: GET /metrics, parsed by prometheus_client's own
parser of the text format."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

Families = dict[str, Metric]  # by the family's name (a counter's without _total)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def scrape(url: str) -> Families:
    return {family.name: family for family in text_string_to_metric_families(fetch(url))}


def values(families: Families, sample: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each series of the sample name `sample` (a counter's with _total): labels -> value."""
    family = families.get(sample.removesuffix("_total"))
    if family is None:
        return {}
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == sample}


def by_device(families: Families, sample: str) -> dict[str, float]:
    return {dict(labels)["device"]: value for labels, value in values(families, sample).items()}


def value(families: Families, sample: str) -> float:
    (only,) = values(families, sample).values()
    return only


def until(read: Callable[[], T], ok: Callable[[T], bool], timeout_s: float = 15.0, every_s: float = 0.05) -> T:
    """Read until `ok(result)` (or fail after `timeout_s` with the last result)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = read()
        if ok(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s:g} s; last: {result!r}")
        time.sleep(every_s)
