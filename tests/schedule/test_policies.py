"""Forecasters and policies on constructed traces where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from greenai.carbon.grid_forecast import (
    IntensitySeries,
    OracleForecaster,
    PersistenceForecaster,
    ProviderForecaster,
    SeasonalForecaster,
    forecast_mae,
    load_intensity_series,
)
from greenai.carbon.step import step_integral
from greenai.errors import CarbonDataError, ConfigError
from greenai.schedule.jobs import Job
from greenai.schedule.policies import (
    Candidate,
    CarbonAwareTiming,
    EnergyAwarePlacement,
    Fifo,
    Node,
    PowerBudget,
    compose,
    policy_from_name,
)

STEP = 1800.0
DAY = 86_400.0


def daily_trace(days: int = 21, seed: int | None = None) -> IntensitySeries:
    """A daily cycle with its trough at 03:00 (100 g/kWh) and peak at 15:00 (300)."""
    t = np.arange(int(days * DAY / STEP)) * STEP
    hours = (t % DAY) / 3600
    v = 200 - 100 * np.cos((hours - 3) / 24 * 2 * np.pi)
    if seed is not None:
        v = v + np.random.default_rng(seed).normal(0, 10, len(v))
    return IntensitySeries(t, np.maximum(v, 0), "daily")


class _View:
    def __init__(self, nodes=None, down=()):
        self.nodes = tuple(nodes or (Node("local"),))
        self.down = frozenset(down)

    def node(self, name):
        return next((n for n in self.nodes if n.name == name), self.nodes[0])

    def energy_used_j(self, t0, t1):
        return 0.0


def cand(job_id="a", arrival=0.0, slack=12 * 3600.0, duration=3600.0, energy=3.6e6, **kw):
    job = Job(
        job_id=job_id,
        arrival_s=arrival,
        slack_s=slack,
        predicted_duration_s=duration,
        predicted_energy_j=energy,
        interruptible=kw.pop("interruptible", False),
    )
    return Candidate(job, duration, energy, kw.pop("remaining", duration), **kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: PersistenceForecaster(s, mode="last"),
        lambda s: PersistenceForecaster(s, mode="day"),
        lambda s: SeasonalForecaster(s),
        lambda s: SeasonalForecaster(s, method="profile"),
        lambda s: SeasonalForecaster(s, delay_s=STEP),
    ],
)
def test_forecasts_ignore_the_future(make):
    base = daily_trace(days=20, seed=1)
    now = 14 * DAY + 5 * 3600
    altered = base.values.copy()
    altered[base.times_s > now] *= 3.0  # rewrite everything after the decision time
    a, b = make(base), make(IntensitySeries(base.times_s, altered, "altered"))
    fa, fb = a.forecast(now, 13 * 3600), b.forecast(now, 13 * 3600)
    assert fa[0, 0] == now and fa[-1, 0] >= now + 13 * 3600 - STEP
    np.testing.assert_array_equal(fa, fb)
    # and the oracle does see it
    assert not np.array_equal(
        OracleForecaster(base).forecast(now, 3600),
        OracleForecaster(IntensitySeries(base.times_s, altered)).forecast(now, 3600),
    )


def test_delay_hides_the_current_slot():
    s = daily_trace(days=3)
    now = 2 * DAY
    assert PersistenceForecaster(s, mode="last").forecast(now, 3600)[0, 1] == pytest.approx(s.values[96])
    delayed = PersistenceForecaster(s, mode="last", delay_s=STEP).forecast(now, 3600)
    np.testing.assert_allclose(delayed[:, 1], s.values[95])


def test_seasonal_forecaster_learns_a_clean_daily_cycle():
    s = daily_trace(days=15)
    f = SeasonalForecaster(s)
    now = 12 * DAY + 7 * 3600
    rows = f.forecast(now, 12 * 3600)
    truth = OracleForecaster(s).forecast(now, 12 * 3600)
    np.testing.assert_allclose(rows[:, 1], truth[:, 1], atol=1e-6)


def test_provider_forecaster_validates_its_answers():
    good = ProviderForecaster(lambda now, h: [(now + i * STEP, 100.0 + i) for i in range(int(h / STEP) + 1)])
    assert good.forecast(0.0, 3600).shape == (3, 2)
    with pytest.raises(CarbonDataError, match="increase"):
        ProviderForecaster(lambda now, h: [(now, 1.0), (now, 2.0)]).forecast(0.0, 0.0)
    with pytest.raises(CarbonDataError, match="cover"):
        ProviderForecaster(lambda now, h: [(now + 10, 1.0), (now + 20, 2.0)]).forecast(0.0, 10.0)

    def broken(now, h):
        raise TimeoutError("api down")

    with pytest.raises(CarbonDataError, match="api down"):
        ProviderForecaster(broken, name="api").forecast(0.0, 10.0)


def test_step_integral_is_exact():
    rows = np.array([[0.0, 100.0], [1800.0, 200.0]])
    assert step_integral(rows, 900.0, 2700.0) == pytest.approx(900 * 100 + 900 * 200)
    assert step_integral(rows, 3600.0, 5400.0) == pytest.approx(1800 * 200)  # last value continues


def test_fifo_runs_everything():
    cands = [cand("a"), cand("b", arrival=100.0)]
    assert Fifo().select(100.0, _View(), cands) == cands


def test_carbon_timing_waits_for_the_trough_and_never_past_the_latest_start():
    s = daily_trace(days=5)
    policy = CarbonAwareTiming(OracleForecaster(s))
    day = 3 * DAY
    c = cand(arrival=day + 20 * 3600)  # trough at 03:00 next day is within 12 h slack
    assert policy.select(day + 20 * 3600, _View(), [c]) == []
    assert policy.select(day + DAY + 2.5 * 3600, _View(), [c]) == [c]  # 02:30-03:30 is cheapest
    late = cand(arrival=day + 5 * 3600, slack=3600.0)  # latest start 06:00: forced then
    assert policy.select(day + 6 * 3600, _View(), [late]) == [late]


def test_interruptible_job_runs_in_the_cheapest_slots():
    s = daily_trace(days=5)
    policy = CarbonAwareTiming(OracleForecaster(s))
    day = 3 * DAY
    c = cand(arrival=day, slack=10 * 3600.0, duration=2 * 3600.0, interruptible=True)
    assert policy.select(day, _View(), [c]) == []  # 00:00 is not among the 4 cheapest half-hours
    assert policy.select(day + 2 * 3600, _View(), [c]) == [c]  # 02:00-04:00 are


def test_placement_picks_the_cheapest_free_node():
    nodes = [Node("cpu", 1.0), Node("gpu", 0.4, slots=1), Node("tpu", 2.0, energy_j={"b": 1.0})]
    chosen = EnergyAwarePlacement(nodes).select(0.0, _View(nodes), [cand("a"), cand("b"), cand("c")])
    where = {c.job_id: c.node for c in chosen}
    assert where == {"a": "gpu", "b": "tpu", "c": "cpu"}  # gpu full after a; b's table entry is tiny
    # a node that vanished gets no new job
    chosen = EnergyAwarePlacement(nodes).select(0.0, _View(nodes, down={"gpu"}), [cand("a")])
    assert [c.node for c in chosen] == ["cpu"]


def test_power_budget_defers_by_deadline_and_lets_a_big_job_run_alone():
    budget = PowerBudget(max_power_w=1500.0)
    a, b = cand("a", slack=3600.0), cand("b", slack=600.0)
    assert [c.job_id for c in budget.select(0.0, _View(), [a, b])] == ["b"]  # 1 kW each: one fits
    huge = cand("h", energy=3.6e7)  # 10 kW, above the cap: runs alone rather than never
    assert budget.select(0.0, _View(), [huge]) == [huge]
    running = cand("r", running=True)
    assert [c.job_id for c in budget.select(0.0, _View(), [running, huge])] == ["r"]


def test_compose_and_names():
    s = daily_trace(days=3)
    stack = policy_from_name("carbon+budget", trace=s, max_power_w=100.0)
    assert stack.name == "carbon+budget"
    assert compose(Fifo()).name == "fifo"
    with pytest.raises(ConfigError, match="unknown policy 'greedy'; known policies: fifo, carbon"):
        policy_from_name("greedy", trace=s)
    with pytest.raises(ConfigError, match="needs a max power"):
        policy_from_name("budget")
    with pytest.raises(ConfigError, match="needs nodes"):
        policy_from_name("placement")


def test_trace_validation_reuses_the_trace_reader(tmp_path):
    unsorted = tmp_path / "u.csv"
    unsorted.write_text("Time,Carbon Intensity\n2020-01-01 01:00,10\n2020-01-01 00:30,20\n2020-01-01 02:00,5\n")
    with pytest.raises(CarbonDataError, match="times must strictly increase"):
        load_intensity_series(unsorted)
    gap = tmp_path / "g.csv"
    gap.write_text("Time,Carbon Intensity\n" + "".join(f"2020-01-01 {h:02d}:00,10\n" for h in (0, 1, 2, 7, 8)))
    with pytest.raises(CarbonDataError, match="gap of 5 h"):
        load_intensity_series(gap)
    with pytest.raises(CarbonDataError, match="neither a shipped trace"):
        load_intensity_series(tmp_path / "missing.csv")


def test_a_gapped_or_unsorted_series_built_in_code_is_refused():
    t = np.array([0.0, 1800.0, 3600.0, 36_000.0, 37_800.0])  # 9 h without data
    with pytest.raises(CarbonDataError, match="gap of 32400 s between rows 2 and 3"):
        IntensitySeries(t, np.ones(5), "gappy")
    assert IntensitySeries(t, np.ones(5), "gappy", max_gap_s=36_000.0).end_s == 39_600.0
    with pytest.raises(CarbonDataError, match="strictly increase"):
        IntensitySeries(np.array([0.0, 3600.0, 1800.0]), np.ones(3))


def ar_trace(days: int = 30, phi: float = 0.85, seed: int = 3) -> IntensitySeries:
    """The daily cycle plus a persistent AR(1) departure from it (a windy or calm spell)."""
    base = daily_trace(days)
    shocks = np.random.default_rng(seed).normal(0, 8, len(base.values))
    resid = np.zeros(len(shocks))
    for i in range(1, len(shocks)):
        resid[i] = phi * resid[i - 1] + shocks[i]
    return IntensitySeries(base.times_s, np.maximum(base.values + resid, 0), "ar")


def test_residual_autoregression_is_fitted_and_beats_the_fading_offset():
    s = ar_trace()
    ar, profile = SeasonalForecaster(s), SeasonalForecaster(s, method="profile")
    assert (ar.name, profile.name) == ("seasonal-ar", "seasonal-profile")
    origins = 20 * DAY + STEP * np.arange(0, 9 * 48, 5)
    err_ar, err_profile = forecast_mae(ar, origins, 6 * 3600), forecast_mae(profile, origins, 6 * 3600)
    assert err_ar < 0.9 * err_profile
    coef = ar._coefficients(ar._known_count(20 * DAY))
    assert coef is not None and coef.shape == (48, 4)
    assert 0.7 < coef[0].sum() < 1.0  # one step ahead the departure persists (phi = 0.85)
    assert coef[47].sum() < coef[0].sum()  # and it fades with lead


def test_residual_model_needs_a_profile_week_a_day_of_leads_and_three_days_of_training():
    s = ar_trace(days=14)
    f = SeasonalForecaster(s)
    now = 11 * DAY + 20 * 3600
    assert f._coefficients(f._known_count(now)) is None  # falls back to the fading offset
    np.testing.assert_array_equal(
        f.forecast(now, 6 * 3600), SeasonalForecaster(s, method="profile").forecast(now, 6 * 3600)
    )
    assert f._coefficients(f._known_count(12 * DAY)) is not None
    with pytest.raises(ConfigError, match="unknown seasonal method 'ridge'"):
        SeasonalForecaster(s, method="ridge")


def test_residual_forecast_does_not_depend_on_a_later_question_of_the_same_day():
    t = np.arange(int(20 * 86_400 / 3600)) * 3600.0
    v = 200 - 100 * np.cos(((t % 86_400) / 3600 - 3) / 24 * 2 * np.pi) + np.random.default_rng(1).normal(0, 20, len(t))
    s = IntensitySeries(t, np.maximum(v, 0))
    early, late = 15 * 86_400 + 2 * 3600.0, 15 * 86_400 + 20 * 3600.0
    asked_late_first = SeasonalForecaster(s)
    asked_late_first.forecast(late, 6 * 3600)  # fits on data known at 20:00
    fresh = SeasonalForecaster(s)
    np.testing.assert_array_equal(asked_late_first.forecast(early, 6 * 3600), fresh.forecast(early, 6 * 3600))


def test_the_carbon_policy_uses_the_residual_forecaster():
    s = daily_trace(days=3)
    policy = policy_from_name("carbon", trace=s, delay_s=STEP)
    assert policy.name == "carbon" and policy.forecaster.name == "seasonal-ar"
    undelayed = policy_from_name("carbon", trace=s).forecaster
    assert policy.forecaster._known_count(DAY) == undelayed._known_count(DAY) - 1 == 48
