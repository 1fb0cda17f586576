"""The package's ledger (runs, a killed run, a study, a batch) is built once: see world.py."""

from __future__ import annotations

from tests.report.world import world  # noqa: F401  (the fixture)
