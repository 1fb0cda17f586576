"""Grid carbon intensity forecasts built only from what is known at decision time.

A forecaster answers ``forecast(now_s, horizon_s)`` with an ``(n, 2)`` array of rows
``(t_s, g_per_kwh)``: a step function on a regular grid whose first row is the slot holding
``now_s`` and whose rows cover ``[now_s, now_s + horizon_s]``
(``greenai.carbon.step.StepFunction.from_rows`` reads them).

What "known at decision time" means here: a trace row with time ``t`` is published at
``t + delay_s`` (default 0: a row is known from its own timestamp, as the brief's "data at or
before now"; pass the trace step to model data published only once its interval is over).
The forecasters resample the trace onto a regular grid (the trace's median step); a grid slot
is known once every trace row inside it is published, so known slots always form a prefix of
the grid and nothing later than ``now_s`` can leak in (``_known_count`` is the single gate).

Methods:

- ``PersistenceForecaster``: the last known value ("last") or the value one day earlier at
  the same time of day ("day"): the usual naive baselines of load and carbon forecasting
  (Hyndman and Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., sec. 5.2).
- ``SeasonalForecaster``: a seasonal profile, the mean of the last ``days`` (7) daily
  profiles at the target's time of day (seasonal naive averaged over days, same book sec.
  5.2), plus a correction for the grid's departure from its usual day (mostly wind), which
  persists over hours. Default ``method="ar"``: the residual (value minus profile) ``h``
  slots ahead is a linear function of the last ``lags`` (4) known residuals, one model per
  lead ("direct" multi-step strategy, Taieb et al., Expert Systems with Applications 39(8),
  2012; an autoregression on the deseasonalised series, Hyndman and Athanasopoulos sec. 9.3
  and 9.9), without intercept, fitted by least squares once a day on the last
  ``train_days`` (28) days of known data. ``method="profile"``: the previous default, the
  profile anchored to the latest value by an offset fading as ``exp(-lead/24 h)``.
  On the 2020 traces the autoregression captures more of the oracle's saving (GB about the
  same, FR clearly more: see ``benchmarks/carbon_scheduling.py``).
- ``OracleForecaster``: the true future, for the oracle baseline only.
- ``ProviderForecaster``: wraps a callable (a live API client) and validates its answer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from greenai.carbon.step import StepFunction, find_gap
from greenai.carbon.trace import SHIPPED_TRACES, shipped_trace_path
from greenai.carbon.trace_csv import read_trace_file, time_zone
from greenai.errors import CarbonDataError, ConfigError
from greenai.units import S_PER_DAY

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

MIN_TRAIN_DAYS = 3  # the residual model needs a profile week plus this much training data


@dataclass(frozen=True, eq=False)
class IntensitySeries:
    """A validated carbon intensity trace as a step function (``greenai.carbon.step``): row
    ``i`` holds ``values[i]`` gCO2e/kWh over ``[times_s[i], times_s[i+1])``; the last row
    holds for one more step. Times must strictly increase, and a step longer than
    ``max_gap_s`` (default: ``greenai.carbon.step.find_gap``'s rule, as for trace files) is a
    gap in the data, refused rather than silently bridged."""

    times_s: np.ndarray
    values: np.ndarray
    label: str = "trace"
    max_gap_s: float | None = None
    _steps: StepFunction[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t, v = np.asarray(self.times_s, float), np.asarray(self.values, float)
        if t.ndim != 1 or t.shape != v.shape or len(t) < 2:
            raise CarbonDataError(f"trace {self.label}: needs at least two (time, value) rows")
        if np.any(np.diff(t) <= 0):
            i = int(np.argmax(np.diff(t) <= 0)) + 1
            raise CarbonDataError(f"trace {self.label}: times must strictly increase (row {i})")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise CarbonDataError(f"trace {self.label}: intensities must be finite and >= 0")
        gap = find_gap(t, self.max_gap_s)
        if gap is not None:
            raise CarbonDataError(
                f"trace {self.label}: gap of {gap.step_s:g} s between rows {gap.row} and {gap.row + 1} "
                f"exceeds {gap.limit_s:g} s ({gap.rule}); fill it or pass a larger max_gap_s"
            )
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "_steps", StepFunction(t, v))

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        """Exclusive end: last row plus one step."""
        return self._steps.end_s

    @property
    def step_s(self) -> float:
        """Median step between rows."""
        return float(np.median(np.diff(self.times_s)))

    def integral(self, t0: np.ndarray | float, t1: np.ndarray | float) -> np.ndarray:
        """∫ intensity dt over ``[t0, t1]`` in (gCO2e/kWh)·s, exact for the step function."""
        lo, hi = np.min(t0), np.max(t1)
        if lo < self.start_s - 1e-6 or hi > self.end_s + 1e-6:
            raise CarbonDataError(
                f"trace {self.label} covers {self.start_s:.0f}..{self.end_s:.0f} s (unix) but "
                f"the schedule needs {lo:.0f}..{hi:.0f} s: use a longer trace or fewer jobs"
            )
        return self._steps.integral(t0, t1)

    def regular(self, step_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Resample onto a regular grid: ``(slot_start_s, mean_g_per_kwh, last_row_time_s)``.

        A slot's value is the exact time-weighted mean of the rows over it; ``last_row_time_s``
        is the time of the last trace row that contributes to it (when it becomes known)."""
        step = step_s or self.step_s
        n = math.floor((self.end_s - self.start_s) / step + 1e-9)
        starts = self.start_s + step * np.arange(n)
        means = self.integral(starts, starts + step) / step
        rows = np.searchsorted(self.times_s, starts + step, side="left") - 1
        return starts, means, self.times_s[rows]


def load_intensity_series(
    spec: str | os.PathLike[str], *, timezone: str = "UTC", max_gap_s: float | None = None
) -> IntensitySeries:
    """A shipped trace name (``gb_2020``, ``fr_2020``) or a CSV path, validated by
    ``greenai.carbon.trace_csv.read_trace`` (sorted times, no gaps, numeric values)."""
    text = str(spec)
    path: Traversable | Path
    if text in SHIPPED_TRACES:
        path = shipped_trace_path(text)
    elif Path(text).is_file():
        path = Path(text)
    else:
        raise CarbonDataError(
            f"carbon trace {text!r} is neither a shipped trace ({', '.join(SHIPPED_TRACES)}) nor a readable file"
        )
    times, values = read_trace_file(path, text, time_zone(timezone), max_gap_s=max_gap_s)
    return IntensitySeries(np.array(times), np.array(values), text, max_gap_s=max_gap_s)


class IntensityForecaster(Protocol):
    """Forecast of grid intensity from information available at ``now_s`` only."""

    name: str

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        """Rows ``(t_s, g_per_kwh)`` from the slot holding ``now_s`` to ``now_s + horizon_s``."""
        ...


class GridForecaster:
    """Base of the trace-driven forecasters: a regular grid and the 'what is known' gate.

    Subclasses implement ``_predict(known, first, count)``: values of grid slots
    ``first .. first+count-1`` from ``known`` (the values of slots ``0 .. len(known)-1``)."""

    name = "grid"

    def __init__(self, series: IntensitySeries, *, step_s: float | None = None, delay_s: float = 0.0) -> None:
        if delay_s < 0:
            raise ConfigError(f"forecast delay_s must be >= 0, got {delay_s!r}")
        self.series = series
        self.times_s, self._values, last_row = series.regular(step_s)
        self.step_s = float(self.times_s[1] - self.times_s[0])
        self._known_from = last_row + delay_s
        self.per_day = max(1, round(S_PER_DAY / self.step_s))

    def _known_count(self, now_s: float) -> int:
        """Number of grid slots (a prefix) whose value is published at ``now_s``."""
        return int(np.searchsorted(self._known_from, now_s, side="right"))

    def _slot(self, now_s: float) -> int:
        return math.floor((now_s - self.times_s[0]) / self.step_s + 1e-9)

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        first = self._slot(now_s)
        last = self._slot(now_s + horizon_s)
        if first < 0 or now_s >= self.series.end_s:
            raise CarbonDataError(f"no forecast at {now_s:.0f} s: outside trace {self.series.label}")
        known = self._values[: min(self._known_count(now_s), first + 1 + (last - first))]
        count = last - first + 1
        out = np.empty((count, 2))
        out[:, 0] = self.times_s[0] + self.step_s * np.arange(first, last + 1)
        have = max(0, min(len(known) - first, count))
        out[:have, 1] = known[first : first + have]
        if have < count:
            if len(known) == 0:
                raise CarbonDataError(f"no intensity known yet at {now_s:.0f} s in trace {self.series.label}")
            out[have:, 1] = np.maximum(self._predict(known, first + have, count - have), 0.0)
        return out

    def _predict(self, known: np.ndarray, first: int, count: int) -> np.ndarray:
        raise NotImplementedError


class PersistenceForecaster(GridForecaster):
    """``mode="last"``: the last known value; ``mode="day"``: the same time one day earlier
    (falling back to the last value where that is not known yet)."""

    def __init__(self, series: IntensitySeries, *, mode: str = "day", **kw: float) -> None:
        if mode not in ("last", "day"):
            raise ConfigError(f"unknown persistence mode {mode!r}; use 'last' or 'day'")
        super().__init__(series, **kw)
        self.mode = mode
        self.name = f"persistence-{mode}"

    def _predict(self, known: np.ndarray, first: int, count: int) -> np.ndarray:
        if self.mode == "last":
            return np.full(count, known[-1])
        idx = np.arange(first, first + count)
        while np.any(idx >= len(known)):
            idx = np.where(idx >= len(known), idx - self.per_day, idx)
        return np.where(idx >= 0, known[np.maximum(idx, 0)], known[-1])


class SeasonalForecaster(GridForecaster):
    """Seasonal profile plus a correction for today's departure from it; see the module
    docstring. ``method="ar"`` (default): residual autoregression; ``"profile"``: the
    profile anchored by a decaying offset (the previous default, kept as a baseline).

    Fixed hyper-parameters (the same for every trace): ``days`` of profile (7), ``lags``
    residuals as regressors (4, i.e. two hours of half-hourly data), ``train_days`` of
    fitting window (28), leads fitted up to ``max_lead_s`` (24 h; longer leads reuse the
    24 h coefficients), ``ridge`` (1e-5 of the mean Gram diagonal, only for conditioning),
    ``tau_s`` (24 h, the profile method's fade time)."""

    def __init__(
        self,
        series: IntensitySeries,
        *,
        method: str = "ar",
        days: int = 7,
        lags: int = 4,
        train_days: int = 28,
        max_lead_s: float = S_PER_DAY,
        ridge: float = 1e-5,
        tau_s: float = S_PER_DAY,
        **kw: float,
    ) -> None:
        if method not in ("ar", "profile"):
            raise ConfigError(f"unknown seasonal method {method!r}; use 'ar' or 'profile'")
        if days < 1 or train_days < 1 or lags < 1:
            raise ConfigError("days, train_days and lags must be >= 1")
        super().__init__(series, **kw)
        self.method, self.days, self.lags, self.train_days = method, days, lags, train_days
        self.ridge, self.tau_s = ridge, tau_s
        self.max_lead = max(1, math.ceil(max_lead_s / self.step_s))
        self.name = f"seasonal-{method}"
        self._fit_day = -1
        self._coef: np.ndarray | None = None
        # profile[i] = mean of the values days 1..days before slot i: it reads only slots
        # <= i - per_day, so it is used only where those are known (see _profile); the
        # residual of slot i is read only once slot i itself is known
        lagged = [
            np.concatenate((np.full(d * self.per_day, np.nan), self._values))[: len(self._values)]
            for d in range(1, days + 1)
        ]
        self._profile_table = np.mean(lagged, axis=0)
        self._resid = self._values - self._profile_table

    def _profile(self, known: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The profile at slots ``idx`` from the ``known`` prefix only."""
        top = int(idx.max())
        if (
            top - self.per_day < len(known)
            and top < len(self._profile_table)
            and int(idx.min()) >= self.days * self.per_day
        ):
            return self._profile_table[idx]  # every slot it reads is known
        total, weight = np.zeros(len(idx)), np.zeros(len(idx))
        for d in range(1, self.days + 1):
            back = idx - d * self.per_day
            # a target beyond the known data's next day uses its latest known day instead
            back = np.where(back >= len(known), back - self.per_day * ((back - len(known)) // self.per_day + 1), back)
            ok = back >= 0
            total += np.where(ok, known[np.maximum(back, 0)], 0.0)
            weight += ok
        return np.where(weight > 0, total / np.maximum(weight, 1), known[-1])

    def _predict(self, known: np.ndarray, first: int, count: int) -> np.ndarray:
        if self.method == "ar":
            coef = self._coefficients(len(known))
            origin = len(known) - 1
            if coef is not None and origin - self.lags + 1 >= self.days * self.per_day:
                idx = np.arange(first, first + count)
                lead = np.minimum(idx - origin, self.max_lead)
                x = self._resid[origin - np.arange(self.lags)]
                return self._profile(known, idx) + coef[lead - 1] @ x
        return self._predict_profile(known, first, count)

    def _predict_profile(self, known: np.ndarray, first: int, count: int) -> np.ndarray:
        idx = np.arange(first, first + count)
        last = len(known) - 1
        offset = known[-1] - self._profile(known, np.array([last]))[0]
        decay = np.exp(-(idx - last) * self.step_s / self.tau_s)
        return self._profile(known, idx) + offset * decay

    def _coefficients(self, n_known: int) -> np.ndarray | None:
        """The model of the current day, fitted on the whole days known (so it depends on the
        day alone: an earlier question of the same day never reuses one fitted on later data)."""
        day = n_known // self.per_day
        if day != self._fit_day:
            self._coef, self._fit_day = self._fit(day * self.per_day), day
        return self._coef

    def _fit(self, n: int) -> np.ndarray | None:
        """Per lead h, least squares of the residual h slots after an origin on the origin's
        last ``lags`` residuals (no intercept), over origins in the last ``train_days`` days
        whose targets are among the first ``n`` (known) slots; None with under
        ``MIN_TRAIN_DAYS`` of data."""
        lo = max(self.days * self.per_day + self.lags - 1, n - self.train_days * self.per_day)
        if n - self.max_lead - lo < MIN_TRAIN_DAYS * self.per_day:
            return None
        back = np.arange(self.lags)
        coefs = np.empty((self.max_lead, self.lags))
        for lead in range(1, self.max_lead + 1):
            origins = np.arange(lo, n - lead)
            x = self._resid[origins[:, None] - back]
            gram = x.T @ x
            penalty = self.ridge * max(float(np.trace(gram)) / self.lags, 1e-12)
            coefs[lead - 1] = np.linalg.solve(gram + penalty * np.eye(self.lags), x.T @ self._resid[origins + lead])
        return coefs


class OracleForecaster(GridForecaster):
    """The true future of the trace: perfect knowledge, for the oracle baseline only."""

    name = "oracle"

    def _known_count(self, now_s: float) -> int:
        return len(self._values)

    def _predict(self, known: np.ndarray, first: int, count: int) -> np.ndarray:
        raise CarbonDataError(
            f"the oracle needs the future beyond the end of trace {self.series.label}: use a longer trace or fewer jobs"
        )


class ProviderForecaster:
    """Forecasts from a live source: ``provider(now_s, horizon_s)`` returns ``(t_s, g/kWh)``
    pairs (e.g. a carbon intensity API client). Its answer is validated: sorted times, finite
    values >= 0, a slot holding ``now_s``. A source that publishes less than ``horizon_s``
    ahead is taken as is: its last value holds beyond (as for a forecast file)."""

    def __init__(
        self, provider: Callable[[float, float], Iterable[tuple[float, float]]], name: str = "provider"
    ) -> None:
        self.provider = provider
        self.name = name

    def forecast(self, now_s: float, horizon_s: float) -> np.ndarray:
        try:
            rows = np.array([(float(t), float(g)) for t, g in self.provider(now_s, horizon_s)])
        except (TypeError, ValueError) as e:
            raise CarbonDataError(f"forecast provider {self.name}: bad answer ({e})") from e
        except Exception as e:  # a live API failing: translated once, here
            raise CarbonDataError(f"forecast provider {self.name} failed: {type(e).__name__}: {e}") from e
        if rows.ndim != 2 or len(rows) == 0:
            raise CarbonDataError(f"forecast provider {self.name}: returned no rows")
        if np.any(np.diff(rows[:, 0]) <= 0) or not np.all(np.isfinite(rows)) or np.any(rows[:, 1] < 0):
            raise CarbonDataError(f"forecast provider {self.name}: times must increase and values be finite and >= 0")
        if not StepFunction.from_rows(rows).covers(now_s):
            raise CarbonDataError(
                f"forecast provider {self.name}: rows cover {rows[0, 0]:.0f}..{rows[-1, 0]:.0f} s, "
                f"which does not hold now ({now_s:.0f} s)"
            )
        return rows  # a shorter horizon than asked is what the source publishes: its last value holds


def forecast_mae(forecaster: GridForecaster, origins_s: Iterable[float], horizon_s: float) -> float:
    """Mean absolute error (gCO2e/kWh) of the forecast slots that were not yet known, over
    the given forecast origins, against the forecaster's own regular grid."""
    errors: list[np.ndarray] = []
    truth = dict(zip(forecaster.times_s.tolist(), forecaster._values.tolist(), strict=True))
    for now in origins_s:
        rows = forecaster.forecast(now, horizon_s)
        known = forecaster._known_count(now)
        first = forecaster._slot(now)
        pred = rows[max(0, known - first) :]
        if len(pred):
            errors.append(np.abs(pred[:, 1] - np.array([truth[t] for t in pred[:, 0]])))
    return float(np.concatenate(errors).mean()) if errors else float("nan")
