"""A meter that returns garbage, raises, or hangs never reaches the user's code: the bad
reading is dropped with one warning, the meter is retired after repeated faults (at once if
it hangs), `stop()` returns within its bound without raising, and the run ends with all that
the healthy meters measured, in the result and in the ledger alike."""

from __future__ import annotations

import logging
import math
import time

import pytest

from greenai.errors import MeterError
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.fallback import FallbackMeter
from greenai.meters.simulated import SimulatedMeter
from greenai.testing.faults import BadValue, Blocking, BlockingStart, InfoRaising, Raising, WrongResult
from greenai.tracking.reading import MAX_CONSECUTIVE_FAULTS, METER_TIMEOUT_S
from greenai.tracking.sampler import STOP_TIMEOUT_S
from greenai.tracking.tracker import STOP_BOUND_S, Tracker


def cpu(power_w: float = 40.0) -> SimulatedMeter:
    return SimulatedMeter("cpu:0", DeviceKind.CPU, power_w)


def gpu(power_w: float = 200.0) -> SimulatedMeter:
    return SimulatedMeter("gpu:0", DeviceKind.GPU, power_w)


def greenai_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("greenai") and r.levelno >= logging.WARNING]


def assert_healthy_gpu_kept(run: Tracker, tmp_path) -> None:
    """The healthy 200 W GPU was read through the whole run, and the ledger agrees."""
    result = run.result
    assert result is not None
    assert result.status == "completed"
    assert result.device_energy_j("gpu:0") == pytest.approx(200.0 * result.duration_s, rel=0.05)
    assert math.isfinite(result.energy_j) and result.energy_j < 1e6
    assert result.stored is True
    with Ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get_run(run.run_id)
    assert record.status == "completed"
    assert record.snapshot.energy_j == pytest.approx(result.energy_j)


BAD_VALUES = [math.nan, math.inf, -math.inf, -1.0, 1e301, None, "12.5", True, [1.0]]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_one_bad_reading_is_dropped_with_one_warning(make_config, tmp_path, caplog, value):
    # one bad reading after 5 good ones, then good again: dropped, the meter stays
    bad = BadValue(cpu(40.0), value, after=5, times=1)
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("bad-value", config=make_config(), meters=[bad, gpu()]) as run:
            time.sleep(0.6)
    assert bad.faults == 1 and bad.reads > 10  # still read after the fault
    warnings = greenai_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "cpu:0" in warnings[0] and "dropped" in warnings[0]
    assert_healthy_gpu_kept(run, tmp_path)
    # the cumulative counter is not lost: the next good reading carries the dropped interval
    assert run.result.device_energy_j("cpu:0") == pytest.approx(40.0 * run.result.duration_s, rel=0.05)
    assert run.result.notes == ()


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_a_meter_that_keeps_returning_bad_values_is_retired(make_config, tmp_path, caplog, value):
    bad = BadValue(cpu(40.0), value, after=5)
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("bad-values", config=make_config(), meters=[bad, gpu()]) as run:
            time.sleep(0.6)
    assert bad.faults == MAX_CONSECUTIVE_FAULTS  # not read again once retired
    warnings = greenai_warnings(caplog)
    assert len(warnings) == 2, warnings  # the first drop, the retirement
    assert "bad reading dropped" in warnings[0] and "was dropped at" in warnings[1]
    assert_healthy_gpu_kept(run, tmp_path)
    # the retired meter's device keeps what it measured before its faults
    assert 0 < run.result.device_energy_j("cpu:0") < 40.0 * run.result.duration_s * 0.5
    assert len(run.result.notes) == 1 and "cpu:0" in run.result.notes[0]


@pytest.mark.parametrize("value", [None, 3.5, "gpu", {"cpu:0": 1.0}, [("cpu:0", 1.0)]], ids=repr)
def test_a_read_returning_the_wrong_type_is_a_fault(make_config, tmp_path, caplog, value):
    bad = WrongResult(cpu(), value, after=3)
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("wrong-type", config=make_config(), meters=[bad, gpu()]) as run:
            time.sleep(0.5)
    assert bad.faults == MAX_CONSECUTIVE_FAULTS
    assert len(greenai_warnings(caplog)) == 2
    assert_healthy_gpu_kept(run, tmp_path)


@pytest.mark.parametrize(
    "error", [MeterError("counter gone"), RuntimeError("driver"), ZeroDivisionError(), OSError(5, "EIO")], ids=repr
)
def test_a_read_that_raises_anything_is_a_fault(make_config, tmp_path, caplog, error):
    bad = Raising(cpu(), error, after=3)
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("raising", config=make_config(), meters=[bad, gpu()]) as run:
            time.sleep(0.5)
    assert bad.faults == MAX_CONSECUTIVE_FAULTS
    assert len(greenai_warnings(caplog)) == 2
    assert_healthy_gpu_kept(run, tmp_path)


def test_a_meter_whose_info_raises_is_still_read(make_config, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker("info-raises", config=make_config(), meters=[InfoRaising(cpu(40.0)), gpu()]) as run:
            time.sleep(0.4)
    assert len(greenai_warnings(caplog)) == 1  # said once, at start
    assert_healthy_gpu_kept(run, tmp_path)
    assert run.result.device_energy_j("cpu:0") == pytest.approx(40.0 * run.result.duration_s, rel=0.05)


def test_a_meter_whose_info_and_read_fail_later_does_not_break_the_ticks(make_config, tmp_path):
    # info() works at start, then raises, and reads raise too: the old sampler asked info()
    # for its warning and every later tick failed for all meters
    flaky = Raising(InfoRaising(cpu(), after=1), RuntimeError("gone"), after=3)
    with Tracker("info-later", config=make_config(), meters=[flaky, gpu()]) as run:
        time.sleep(0.5)
    assert_healthy_gpu_kept(run, tmp_path)


def test_stop_never_replaces_the_users_exception(make_config, tmp_path):
    # a NaN made the final tick raise in stop(), and __exit__ raised that instead of KeyError
    with pytest.raises(KeyError, match="users own"):
        with Tracker("user-error", config=make_config(), meters=[BadValue(cpu(), math.nan, after=2), gpu()]) as run:
            time.sleep(0.3)
            raise KeyError("users own")
    assert run.result is not None and run.result.status == "failed"
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert ledger.get_run(run.run_id).status == "failed"


def test_a_meter_that_blocks_is_given_up_and_stop_returns(make_config, tmp_path, caplog):
    """An NVML read that never returns: the sampler goes on with the other meters, the hung
    meter is retired after METER_TIMEOUT_S, and stop() returns at once, the run complete."""
    hung = Blocking(cpu(40.0), after=5)
    try:
        with caplog.at_level(logging.WARNING, logger="greenai"):
            tracker = Tracker("blocks", config=make_config(), meters=[hung, gpu()]).start()
            assert hung.blocked.wait(5)
            time.sleep(METER_TIMEOUT_S + 0.5)  # the sampler gave it up meanwhile
            t0 = time.monotonic()
            result = tracker.stop()
            took_s = time.monotonic() - t0
        # it returned while the meter is still stuck (released only below) and never called it again:
        # it did not wait for it; the wall time (with the final SQLite write) is held to the promise
        assert hung.blocked.is_set() and hung.reads == 6  # never called again after the read that hung
        assert took_s < STOP_BOUND_S
        assert any("did not answer" in w for w in greenai_warnings(caplog))
        assert_healthy_gpu_kept(tracker, tmp_path)
        assert result.duration_s > METER_TIMEOUT_S + 0.5  # the GPU was read all along
        assert 0 < result.device_energy_j("cpu:0") < 40.0 * 0.5
    finally:
        hung.release()


def test_a_meter_that_blocks_at_the_last_reading_bounds_stop(make_config, tmp_path):
    hung = Blocking(cpu(40.0), after=0)
    with Tracker("blocks-at-stop", config=make_config(sample_hz=1.0), meters=[gpu(), hung]) as run:
        time.sleep(0.5)  # one tick (at 0.2 s) has hung already; stop() must not wait for it
        t0 = time.monotonic()
    took_s = time.monotonic() - t0
    hung.release()
    assert took_s < METER_TIMEOUT_S + 1.0 < STOP_BOUND_S
    assert run.result.status == "completed"
    assert run.result.device_energy_j("gpu:0") == pytest.approx(200.0 * run.result.duration_s, rel=0.05)


def test_a_meter_whose_start_blocks_is_retired_at_start(make_config, tmp_path):
    stuck = BlockingStart(cpu())
    t0 = time.monotonic()
    with Tracker("start-blocks", config=make_config(), meters=[stuck, gpu()]) as run:
        started_s = time.monotonic() - t0
        time.sleep(0.3)
    stuck.release()
    assert started_s < METER_TIMEOUT_S + 1.0
    assert [d.device for d in run.result.snapshot.devices] == ["gpu:0"]
    assert any("start()" in note for note in run.result.notes)
    assert_healthy_gpu_kept(run, tmp_path)


@pytest.mark.parametrize(
    "make_bad",
    [lambda m: BadValue(m, math.nan, after=5), lambda m: Raising(m, OSError(2, "ENOENT"), after=5)],
    ids=["nan", "oserror"],
)
def test_a_counter_with_a_fallback_falls_back_on_garbage_too(make_config, tmp_path, make_bad):
    # a hardware counter returning NaN (or raising something else than MeterError) is replaced
    # by its estimate, as a MeterError would have it, instead of being retired
    counter = make_bad(SimulatedMeter("cpu:0", DeviceKind.CPU, 40.0))
    meter = FallbackMeter(counter, lambda: SimulatedMeter("cpu:0", DeviceKind.CPU, 10.0))
    with Tracker("fallback", config=make_config(), meters=[meter, gpu()]) as run:
        time.sleep(0.6)
    assert counter.faults == 1
    assert run.result.notes == ()
    cpu_j = run.result.device_energy_j("cpu:0")
    assert 10.0 * run.result.duration_s < cpu_j < 40.0 * run.result.duration_s
    assert_healthy_gpu_kept(run, tmp_path)


def test_a_driver_wide_hang_of_several_meters_bounds_each_tick_and_the_ledger_keeps_the_result(make_config, tmp_path):
    """One GPU is one meter: a driver-wide hang blocks them all. Each tick ends within its
    one deadline (not one per meter: four hung meters made a tick take 4 s), so stop()
    returns in time with the sampler done, and nothing written after the end changes the
    run: the ledger holds what the result says (a late flush used to overwrite the final
    totals with its own snapshot after end_run)."""
    hung = [Blocking(SimulatedMeter(f"gpu:{k}", DeviceKind.GPU, 50.0), after=3) for k in range(1, 5)]
    try:
        tracker = Tracker("driver-hang", config=make_config(), meters=[gpu(), *hung]).start()
        assert hung[0].blocked.wait(5)
        t0 = time.monotonic()
        result = tracker.stop()
        took_s = time.monotonic() - t0
        time.sleep(4.5)  # whatever the sampler thread still had to do is done by now
        with Ledger(tmp_path / "ledger.db") as ledger:
            record = ledger.get_run(tracker.run_id)
    finally:
        for meter in hung:
            meter.release()
    assert took_s < STOP_TIMEOUT_S
    assert not any("did not finish" in note for note in result.notes), result.notes
    assert result.stored is True and record.status == "completed"
    assert record.snapshot.energy_j == pytest.approx(result.energy_j)
    assert record.snapshot.duration_s == pytest.approx(result.duration_s)
    assert result.device_energy_j("gpu:0") == pytest.approx(200.0 * result.duration_s, rel=0.05)
    assert all(meter.reads == 4 for meter in hung if meter.blocked.is_set())  # never called again once hung
