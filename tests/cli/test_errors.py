"""Bad input gets one clear line on stderr, a non-zero exit, no traceback, and loses nothing."""

from __future__ import annotations

from tests.helpers import assert_one_line_error, greenai


def test_unknown_command(tmp_path):
    assert_one_line_error(greenai("frobnicate", ledger=tmp_path / "l.db"), 2, "frobnicate")


def test_unknown_option(tmp_path):
    assert_one_line_error(greenai("runs", "list", "--colour", ledger=tmp_path / "l.db"), 2, "--colour")


def test_bad_config_value_from_environment(tmp_path):
    proc = greenai("env", env={"GREENAI_PUE": "abc"})
    assert_one_line_error(proc, 1, "pue", "abc")


def test_pue_below_one_is_refused(tmp_path):
    proc = greenai("run", "--pue", "0.8", "--", "true", ledger=tmp_path / "l.db")
    assert_one_line_error(proc, 1, "pue")


def test_bad_config_file(tmp_path):
    (tmp_path / "greenai.toml").write_text("sample_hz = 'fast'\n")
    proc = greenai("env", cwd=tmp_path)
    assert_one_line_error(proc, 1, "sample_hz", "fast")


def test_unknown_setting_in_config_file(tmp_path):
    (tmp_path / "greenai.toml").write_text("sampel_hz = 5\n")
    assert_one_line_error(greenai("env", cwd=tmp_path), 1, "sampel_hz")


def test_unknown_country_code(tmp_path):
    proc = greenai("run", "--intensity", "XYZ", "--", "true", ledger=tmp_path / "l.db")
    assert_one_line_error(proc, 1, "XYZ")


def test_unknown_cloud_region(tmp_path):
    proc = greenai("run", "--intensity", "gcp:mars-north1", "--", "true", ledger=tmp_path / "l.db")
    assert_one_line_error(proc, 1, "mars-north1")


def test_corrupt_ledger_is_reported_and_left_untouched(tmp_path):
    ledger = tmp_path / "ledger.db"
    garbage = b"this is not an sqlite database" * 100
    ledger.write_bytes(garbage)
    proc = greenai("runs", "list", ledger=ledger)
    assert_one_line_error(proc, 1, str(ledger))
    proc = greenai("run", "--", "true", ledger=ledger)
    assert_one_line_error(proc, 1, str(ledger))
    assert ledger.read_bytes() == garbage


def test_foreign_sqlite_file_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
        conn.execute("INSERT INTO customers VALUES (1)")
    proc = greenai("runs", "list", ledger=path)
    assert_one_line_error(proc, 1, "not a greenai ledger")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (1,)


def test_missing_ledger_says_how_to_make_one(tmp_path):
    assert_one_line_error(greenai("runs", "list", ledger=tmp_path / "none.db"), 1, "track a run first")


def test_unknown_run_id(tmp_path):
    ledger = tmp_path / "l.db"
    assert greenai("run", "--simulate", "-q", "--", "true", ledger=ledger).returncode == 0
    assert_one_line_error(greenai("runs", "show", "ffffffff", ledger=ledger), 1, "ffffffff")


def test_command_not_found(tmp_path):
    proc = greenai("run", "--", "no-such-program-xyz", ledger=tmp_path / "l.db")
    assert_one_line_error(proc, 1, "no-such-program-xyz")


def test_required_meter_missing_fails_at_start(tmp_path):
    proc = greenai(
        "run",
        "--",
        "true",
        ledger=tmp_path / "l.db",
        env={"GREENAI_METERS": "nvml", "GREENAI_RAPL_ROOT": str(tmp_path)},
    )
    assert_one_line_error(proc, 1, "nvml", "not available")
