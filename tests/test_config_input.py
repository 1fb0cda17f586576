"""Settings of the wrong type or out of range are refused with a one-line ConfigError naming
the file and the setting (issue 16, items 13 and 14), never read as something else; a config
file is a regular file of bounded size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from greenai.config import MAX_CONFIG_BYTES, Config, load_config
from greenai.errors import ConfigError


def _refused(tmp_path: Path, *needles: str, **overrides: object) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path, environ={}, **overrides)
    message = str(e.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("pue = true\n", ("greenai.toml: pue", "True", "true and false are not numbers")),
        ("sample_hz = true\n", ("sample_hz", "True")),
        ("flush_interval_s = false\n", ("flush_interval_s", "False")),
        ("price_per_kwh = true\n", ("price_per_kwh", "True")),
        ("meters = [1, 2]\n", ("meters", "[1, 2]", "list of meter names")),
        ("meters = 5\n", ("meters", "5")),
        ("ledger = {a = 1}\n", ("ledger", "{'a': 1}", "a path")),
        ("ledger = 7\n", ("ledger", "7")),
        ("ledger = ''\n", ("ledger",)),
        ("rapl_root = [1]\n", ("rapl_root",)),
        ("currency = ['EUR']\n", ("currency", "a string")),
        ("intensity = true\n", ("intensity",)),
        ("intensity = '  '\n", ("intensity is empty", "world average")),
        ("pue = 1e400\n", ("pue", "inf")),
        ("pue = 11\n", ("pue", "10 is the most")),
        ("price_per_kwh = 1e300\n", ("price_per_kwh", "<= 1e+06")),
        ("a = " + "[" * 200 + "]" * 200 + "\n", ("TOML nested more than 100 levels deep",)),
        ("a = " + "[" * 20_000 + "]" * 20_000 + "\n", ("nested",)),
    ],
)
def test_a_setting_of_the_wrong_type_or_out_of_range_is_refused(
    tmp_path: Path, text: str, needles: tuple[str, ...]
) -> None:
    (tmp_path / "greenai.toml").write_text(text)
    _refused(tmp_path, *needles)


def test_a_numeric_intensity_in_a_file_is_read_as_its_text(tmp_path: Path) -> None:
    (tmp_path / "greenai.toml").write_text("intensity = 230\npue = 1\nsample_hz = 5\n")
    config = load_config(tmp_path, environ={})
    assert (config.intensity, config.pue, config.sample_hz) == ("230", 1.0, 5.0)


@pytest.mark.parametrize(
    ("text", "table"),
    [("[tool]\ngreenai = 5\n", "[tool.greenai]"), ("tool = 3\n", "[tool]"), ("tool = [1]\n", "[tool]")],
)
def test_pyproject_tables_that_are_not_tables_are_refused(tmp_path: Path, text: str, table: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    _refused(tmp_path, "pyproject.toml", f"{table} must be a table of settings")


def test_pyproject_without_greenai_settings_is_fine(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 120\n")
    assert load_config(tmp_path, environ={}) == Config()


def test_an_empty_intensity_argument_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "argument: intensity is empty", intensity="")
    with pytest.raises(ConfigError, match="environment: intensity is empty"):
        load_config(tmp_path, environ={"GREENAI_INTENSITY": " "})


def test_bools_are_not_numbers_in_a_config_built_in_code() -> None:
    for field in ("pue", "sample_hz", "flush_interval_s", "price_per_kwh", "cpu_max_w", "heat_reuse_fraction"):
        with pytest.raises(ConfigError, match=field):
            Config(**{field: True}).validate()
    with pytest.raises(ConfigError, match="meters must be names of meters"):
        Config(meters=(1, 2)).validate()  # type: ignore[arg-type]


def test_a_config_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "greenai.toml").mkdir()
    _refused(tmp_path, "greenai.toml is a directory, not a regular file")
    os.rmdir(tmp_path / "greenai.toml")
    os.mkfifo(tmp_path / "greenai.toml")  # would block a plain read for ever
    _refused(tmp_path, "greenai.toml is a named pipe (FIFO), not a regular file")


def test_a_config_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "pyproject.toml", "wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)
    _refused(tmp_path, "pyproject.toml is 4,194,305 bytes, over the maximum of 4 MiB")
