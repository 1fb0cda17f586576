"""A calibration profile a user names (`greenai estimate --profile FILE`) is read as a regular
file of bounded size, and JSON nested too deeply for the parser is corrupt like any other bad
JSON (issue 16, items 12 and 13)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from greenai.errors import ProfileError
from greenai.estimation.profile import MAX_PROFILE_BYTES, load_profile


def test_a_profile_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ProfileError, match="calibration profile .*dir.json is a directory, not a regular file"):
        load_profile(tmp_path / "dir.json")
    with pytest.raises(ProfileError, match="calibration profile /dev/null is a device, not a regular file"):
        load_profile("/dev/null")


def test_a_profile_on_a_named_pipe_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            load_profile(fifo)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 — handed to the test's thread
            outcome.append(e)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], ProfileError) and "named pipe (FIFO)" in str(outcome[0])


def test_a_profile_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with open(path, "wb") as f:
        f.truncate(MAX_PROFILE_BYTES + 1)
    with pytest.raises(ProfileError, match="over the maximum of 16 MiB"):
        load_profile(path)


def test_json_nested_too_deeply_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ProfileError, match=r"deep.json is corrupt \(ValueError: JSON nested too deeply\)"):
        load_profile(path)


def test_a_missing_profile_is_still_missing(tmp_path: Path) -> None:
    assert load_profile(tmp_path / "none.json", missing_ok=True) is None
    with pytest.raises(ProfileError, match="no calibration profile at .*none.json; run `greenai calibrate`"):
        load_profile(tmp_path / "none.json")
