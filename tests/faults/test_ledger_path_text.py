"""The tracker's warnings name the ledger's path as text (issue 16 item 3's rule, greenai/text.py):
a path holding ESC or a Rich tag reaches the terminal, through the logging handler, as its
escapes; the run's notes keep the path as it is."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from greenai.errors import LedgerError
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.tracker import Tracker

# a directory whose name would retitle the window and clear the screen, and close a Rich tag
HOSTILE_DIR = "ledgers\x1b]0;pwned\x07\x1b[2Jt[/x]"
SHOWN = r"ledgers\x1b]0;pwned\x07\x1b[2Jt[/x]"


def test_the_trackers_warnings_carry_the_ledgers_path_as_text(tmp_path: Path, caplog, make_config) -> None:
    folder = tmp_path / HOSTILE_DIR
    folder.mkdir(parents=True)  # "[/x]" holds a separator: two directories
    path = folder / "l.db"
    tracker = Tracker("t", config=make_config(ledger=path), meters=[SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0)])
    tracker.start()
    assert tracker._ledger is not None

    def refuse(*args: object, **kwargs: object) -> None:
        raise LedgerError(f"ledger {path}: disk I/O error (gave up after 1 s)")

    # the ledger refuses every write from here on (a periodic flush, then the final write)
    tracker._ledger.flush = refuse  # type: ignore[method-assign]
    tracker._ledger.end_run = refuse  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="greenai"):
        time.sleep(0.6)  # flushes every 0.2 s
        result = tracker.stop()
    assert result.stored is False and any(str(path) in note for note in result.notes)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("greenai")]
    written = [m for m in messages if "disk I/O error" in m]
    assert any("could not write to the ledger" in m for m in written), messages
    assert any("could not be written to the ledger" in m for m in written), messages
    for m in written:
        assert "\x1b" not in m and "\x07" not in m and SHOWN in m, m
