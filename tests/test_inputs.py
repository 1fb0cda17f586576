"""greenai.inputs: the one reader of files a user names, and the number check."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from greenai.errors import CarbonDataError, GreenAIError
from greenai.inputs import MAX_NESTING, load_json, load_toml, nesting, read_user_bytes, read_user_file, real_number


def test_a_regular_file_is_read_whole_and_a_bom_dropped(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\r\n")
    assert read_user_file(path, "file", 100) == "hello\r\n"
    assert read_user_bytes(path, "file", 10) == b"\xef\xbb\xbfhello\r\n"
    with pytest.raises(GreenAIError, match="file .*a.txt is 10 bytes, over the maximum of 9 bytes"):
        read_user_bytes(path, "file", 9)


def test_errors_are_the_callers_class_and_say_what_the_file_is(tmp_path: Path) -> None:
    with pytest.raises(CarbonDataError, match="cannot read trace .*none.csv: No such file or directory"):
        read_user_file(tmp_path / "none.csv", "trace", 100, CarbonDataError)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CarbonDataError, match="is a named pipe \\(FIFO\\), not a regular file"):
        read_user_file(tmp_path / "fifo", "trace", 100, CarbonDataError)
    with pytest.raises(GreenAIError, match="/dev/null is a device"):
        read_user_file("/dev/null", "file", 100)
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(GreenAIError, match="is not UTF-8 text"):
        read_user_file(tmp_path / "latin1.txt", "file", 100)


def test_nesting_is_counted_without_recursion() -> None:
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    assert nesting(deep) == 100_000
    assert nesting({"a": [1, {"b": []}]}) == 4 and nesting(5) == 0


def test_json_and_toml_deeper_than_the_bound_are_refused() -> None:
    ok = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert nesting(load_json(ok, "x")) == MAX_NESTING
    with pytest.raises(GreenAIError, match="x: JSON nested more than 100 levels deep"):
        load_json("[" + ok + "]", "x")
    with pytest.raises(GreenAIError, match="x: JSON nested more than 100 levels deep"):
        load_json("[" * 100_000 + "]" * 100_000, "x")  # the parser itself gives up
    with pytest.raises(GreenAIError, match="x: not valid JSON"):
        load_json("{", "x")
    with pytest.raises(GreenAIError, match="x: TOML nested more than 100 levels deep"):
        load_toml("a = " + "[" * 100 + "]" * 100, "x")  # 101 levels with the root table
    with pytest.raises(GreenAIError, match="x: not valid TOML"):
        load_toml("a =", "x")


@pytest.mark.parametrize("value", [True, "1", None, math.nan, math.inf, 10**400, -1, 11])
def test_real_number_refuses_what_is_not_a_finite_number_in_range(value: object) -> None:
    with pytest.raises(GreenAIError, match="price must be a"):
        real_number(value, "price", low=0, high=10)


def test_real_number_accepts_ints_and_floats_in_range() -> None:
    assert real_number(3, "x", low=0, high=10) == 3.0
    assert real_number(0.0, "x", low=0) == 0.0
    with pytest.raises(GreenAIError, match="x must be a finite number > 0"):
        real_number(0.0, "x", low=0, low_open=True)
