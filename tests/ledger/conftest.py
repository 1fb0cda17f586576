from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.ledger.store import Ledger

# ledger_factories.py is imported by the tests, by spawned worker processes (which inherit
# sys.path) and by `python -c` children. Under --import-mode=importlib pytest does not put
# this directory on sys.path, so put it there.
_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledgers" / "ledger.db"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[Ledger]:
    with Ledger(db_path) as opened:
        yield opened
