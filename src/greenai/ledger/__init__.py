"""The run ledger: an SQLite file written as runs go, plus export and comparison."""

from __future__ import annotations

from greenai.ledger.compare import Comparison, RunComparison, compare_runs
from greenai.ledger.export import export_runs, record_to_dict
from greenai.ledger.store import Ledger, default_ledger_path

__all__ = [
    "Comparison",
    "Ledger",
    "RunComparison",
    "compare_runs",
    "default_ledger_path",
    "export_runs",
    "record_to_dict",
]
