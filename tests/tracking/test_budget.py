"""Budgets against simulated meters (deterministic power) and a real SQLite ledger."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from greenai.config import Config
from greenai.errors import ConfigError, GreenAIError
from greenai.ledger.store import Ledger
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.budget import Budget, BudgetBreach, BudgetExceeded, BudgetMonitor
from greenai.tracking.tracker import Tracker
from greenai.units import J_PER_KWH

KWH_PER_J = 1 / J_PER_KWH


def config(tmp_path: Path) -> Config:
    return Config(ledger=tmp_path / "ledger.db", intensity="500", sample_hz=100.0, flush_interval_s=0.1).validate()


def gpu(power_w: float = 1000.0) -> SimulatedMeter:
    return SimulatedMeter("gpu:0", DeviceKind.GPU, power_w)


def ledger_record(tmp_path: Path, run_id: str):
    with Ledger(tmp_path / "ledger.db") as ledger:
        return ledger.get_run(run_id)


# -- the budget object and the monitor ------------------------------------------------------


def test_budget_validation():
    with pytest.raises(ConfigError, match="at least one"):
        Budget()
    with pytest.raises(ConfigError, match="action"):
        Budget(energy_kwh=1.0, action="explode")
    with pytest.raises(ConfigError, match="carbon_g"):
        Budget(carbon_g=-1.0)
    assert issubclass(BudgetExceeded, GreenAIError)
    b = Budget(energy_kwh=2.0, time_s=60.0, action="stop")
    assert b.limits() == [("energy_kwh", 2.0), ("time_s", 60.0)]
    with pytest.raises(ConfigError, match="Budget"):
        Tracker("x", budgets=[{"energy_kwh": 1.0}])


def test_monitor_fires_each_budget_once_on_the_first_limit_passed():
    fired: list[BudgetBreach] = []
    energy = Budget(energy_kwh=1.0)
    both = Budget(carbon_g=10.0, time_s=5.0, action="stop")
    monitor = BudgetMonitor([energy, both], fired.append)
    monitor.check(t_s=1.0, energy_j=0.5 * J_PER_KWH, carbon_g=1.0)
    assert fired == []
    monitor.check(t_s=6.0, energy_j=1.5 * J_PER_KWH, carbon_g=1.0)
    assert [(b.budget, b.quantity, b.spent, b.basis) for b in fired] == [
        (energy, "energy_kwh", 1.5, "spent"),
        (both, "time_s", 6.0, "spent"),
    ]
    monitor.check(t_s=9.0, energy_j=3 * J_PER_KWH, carbon_g=50.0)
    assert len(fired) == 2 and not monitor.active
    assert fired[1].counter == "greenai.budget.stop.time_s"
    assert "time_s limit 5 s, spent 6 s" in fired[1].message()


# -- warn -------------------------------------------------------------------------------------


def test_warn_budget_logs_once_and_is_recorded(tmp_path, caplog):
    limit_kwh = 100.0 * KWH_PER_J  # 100 J: 0.1 s at 1 kW
    with caplog.at_level(logging.WARNING, logger="greenai"):
        with Tracker(
            "warn", config=config(tmp_path), meters=[gpu(1000.0)], budgets=[Budget(energy_kwh=limit_kwh)]
        ) as run:
            for _ in range(30):
                with run.phase("step"):
                    time.sleep(0.01)
                run.count("steps")
    warnings = [r for r in caplog.records if "budget exceeded" in r.getMessage()]
    assert len(warnings) == 1
    assert "energy_kwh limit" in warnings[0].getMessage()
    r = run.result
    assert r.status == "completed" and r.stopped_by is None
    (breach,) = r.budget_breaches
    assert breach.quantity == "energy_kwh" and breach.basis == "spent"
    assert breach.spent > limit_kwh and breach.spent < 3 * limit_kwh  # caught within a few ticks
    assert r.snapshot.counters["greenai.budget.warn.energy_kwh"] == 1.0
    record = ledger_record(tmp_path, run.run_id)
    assert record.snapshot.counters["greenai.budget.warn.energy_kwh"] == 1.0
    assert record.start.environment["budgets"][0]["energy_kwh"] == limit_kwh


# -- stop -------------------------------------------------------------------------------------


def test_stop_raises_at_the_next_count_outside_phases_with_callback_first(tmp_path):
    order: list[str] = []

    def on_budget(run: Tracker, breach: BudgetBreach) -> None:
        order.append(f"callback {breach.quantity}")

    limit_kwh = 50.0 * KWH_PER_J  # 50 J: 0.05 s at 1 kW, passed inside the first step
    with pytest.raises(BudgetExceeded) as raised:
        with Tracker(
            "stop",
            config=config(tmp_path),
            meters=[gpu(1000.0)],
            budgets=[Budget(energy_kwh=limit_kwh, action="stop")],
            on_budget=on_budget,
        ) as run:
            for step in range(100):
                with run.phase("train"):
                    with run.phase("optimizer_step"):
                        time.sleep(0.15)  # the sampler sees the breach in here
                        run.count("samples", 32)  # inside a phase: not a safe point
                        run.safe_point()  # neither
                        order.append(f"optimizer_step {step} done")
                    order.append(f"train {step} done")  # the inner exit did not raise
                order.append(f"after train {step}")  # nor did the outer exit
                run.count("steps")  # the end of a step: the safe point
                order.append("not reached")
    assert order == ["optimizer_step 0 done", "train 0 done", "after train 0", "callback energy_kwh"]
    breach = raised.value.breach
    assert breach.quantity == "energy_kwh" and breach.limit == limit_kwh and breach.spent > limit_kwh
    assert "energy_kwh limit" in str(raised.value)
    r = run.result
    assert r.status == "interrupted" and r.stopped_by is breach
    assert "budget exceeded (stop)" in r.stop_reason
    record = ledger_record(tmp_path, run.run_id)
    assert record.status == "interrupted"
    assert record.snapshot.counters["greenai.budget.stop.energy_kwh"] == 1.0


def test_stop_at_count_outside_phases_and_caught_run_is_still_interrupted(tmp_path):
    steps_after = []
    with Tracker(
        "count", config=config(tmp_path), meters=[gpu(1000.0)], budgets=[Budget(time_s=0.1, action="stop")]
    ) as run:
        try:
            for step in range(100):  # no phases: count() is the safe point
                time.sleep(0.01)
                steps_after.append(step)
                run.count("steps")
        except BudgetExceeded as e:  # leave the loop cleanly, e.g. to save a checkpoint
            stopped = e.breach
    assert stopped.quantity == "time_s" and stopped.spent > 0.1
    assert 5 <= len(steps_after) < 40  # stopped soon after 0.1 s, not at once, not never
    # the step that raised was counted: count() adds, then is a safe point
    assert run.result.snapshot.counters["steps"] == len(steps_after)
    assert run.result.status == "interrupted"
    assert ledger_record(tmp_path, run.run_id).status == "interrupted"


def test_explicit_safe_point_and_other_threads_never_raise(tmp_path):
    errors: list[BaseException] = []

    def worker() -> None:  # phases and counts from another thread are never safe points
        try:
            for _ in range(20):
                with run.phase("loader"):
                    time.sleep(0.005)
                run.count("batches")
        except BaseException as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    with Tracker(
        "safe",
        config=config(tmp_path),
        meters=[gpu(1000.0)],
        budgets=[Budget(energy_kwh=20.0 * KWH_PER_J, action="stop")],
    ) as run:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert errors == []
        with pytest.raises(BudgetExceeded):
            run.safe_point()
        run.safe_point()  # delivered once
    assert run.result.status == "interrupted"


def test_callback_error_still_stops_with_the_cause_attached(tmp_path):
    def broken(run: Tracker, breach: BudgetBreach) -> None:
        raise RuntimeError("checkpoint disk full")

    with pytest.raises(BudgetExceeded) as raised:
        with Tracker(
            "cb",
            config=config(tmp_path),
            meters=[gpu(1000.0)],
            budgets=[Budget(energy_kwh=20.0 * KWH_PER_J, action="stop")],
            on_budget=broken,
        ) as run:
            time.sleep(0.1)
            run.safe_point()
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert run.result.status == "interrupted"


def test_user_exception_is_not_replaced_by_a_budget_stop(tmp_path):
    with pytest.raises(KeyError):
        with Tracker(
            "own",
            config=config(tmp_path),
            meters=[gpu(1000.0)],
            budgets=[Budget(energy_kwh=20.0 * KWH_PER_J, action="stop")],
        ) as run:
            with run.phase("step"):
                time.sleep(0.1)
                raise KeyError("user bug")
    assert run.result.status == "failed"


# -- on forecast ------------------------------------------------------------------------------


def test_on_forecast_stops_early_when_heading_over(tmp_path):
    # 200 steps of 10 ms at 1 kW: ~2000 J in all. Budget 1000 J: spent crosses it at ~50 %,
    # the forecast's lower bound at ~10 % (its first forecast).
    limit_kwh = 1000.0 * KWH_PER_J
    seen: list[BudgetBreach] = []
    with pytest.raises(BudgetExceeded):
        with Tracker(
            "fc",
            config=config(tmp_path),
            meters=[gpu(1000.0)],
            planned_steps=200,
            budgets=[Budget(energy_kwh=limit_kwh, action="stop", on_forecast=True)],
            on_budget=lambda run, b: seen.append(b),
        ) as run:
            for _ in range(200):
                with run.phase("step"):
                    time.sleep(0.01)
                run.count("steps")
    (breach,) = seen
    assert breach.basis == "forecast"
    assert breach.spent < 0.5 * limit_kwh  # well before the energy was actually spent
    assert breach.forecast_low > limit_kwh
    assert breach.progress is not None and breach.progress < 0.4
    assert run.result.snapshot.counters["steps"] < 100
    assert "heading over" in run.result.stop_reason
    # the final forecast says what the whole run would have used
    assert run.result.forecast.energy_j == pytest.approx(2000.0, rel=0.25)


def test_on_forecast_does_not_fire_when_the_run_fits(tmp_path):
    with Tracker(
        "fits",
        config=config(tmp_path),
        meters=[gpu(1000.0)],
        planned_steps=50,
        budgets=[Budget(energy_kwh=2000.0 * KWH_PER_J, action="stop", on_forecast=True)],
    ) as run:
        for _ in range(50):
            with run.phase("step"):
                time.sleep(0.01)
            run.count("steps")
    assert run.result.status == "completed" and run.result.budget_breaches == ()
    assert run.result.forecast.energy_j == pytest.approx(run.result.energy_j, rel=0.02)
