"""Budgets: warn or stop a run when its energy, carbon or time passes a limit (or is heading over).

    Tracker(..., budgets=[Budget(energy_kwh=2.0, action="stop")], on_budget=save_checkpoint)

Checks run in the sampler thread after each tick (a few comparisons; with `on_forecast=True`
a forecast every 10th tick, about once a second at the default 10 Hz). A budget fires at most once:
- `warn`: a warning is logged when it fires, and the run's counter
  `greenai.budget.warn.<quantity>` is set to 1 (counters are written to the ledger at every
  flush, so the breach is recorded even if the process dies later).
- `stop`: the sampler only sets a flag. The run stops at the next *safe point* in the user's
  thread, where `on_budget(run, breach)` is called (e.g. to save a checkpoint) and then
  `BudgetExceeded` is raised. Safe points are `run.count(...)` called outside any phase
  (count your steps after the optimizer step) and `run.safe_point()`; `run.tally(...)`
  counts without being one (library code counting in callbacks: greenai.distributed's
  collectives). Never inside a phase
  (e.g. "optimizer_step"), never at a phase exit (with flat phases that would fall between a
  backward and its optimizer step), never in another thread, and never over an exception
  already propagating. The run ends with status "interrupted" and the counter
  `greenai.budget.stop.<quantity>` = 1 (even if the user catches the exception to leave the
  loop cleanly).
`on_budget` is called for warn breaches too, at the next safe point (in the user's thread,
not the sampler's). Energy budgets compare with the run's IT energy (`energy_j`, before
PUE); carbon with its carbon (after PUE); time with its wall-clock duration. With
`on_forecast=True` a budget also fires when the forecast's *lower* bound (both bands) is
over the limit: the run is heading over even on the most favourable reading.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from greenai.errors import BudgetExceeded as BudgetExceeded  # defined in errors; importable from here too
from greenai.errors import ConfigError
from greenai.tracking.forecast import Forecast
from greenai.units import J_PER_KWH

log = logging.getLogger("greenai.tracking")

ACTIONS = ("warn", "stop")
QUANTITIES = ("energy_kwh", "carbon_g", "time_s")
COUNTER_PREFIX = "greenai.budget"
FORECAST_EVERY_TICKS = 10  # about once a second at the default 10 Hz


@dataclass(frozen=True)
class Budget:
    """Limits for one run; any that is set can fire. `action` is "warn" or "stop"."""

    energy_kwh: float | None = None
    carbon_g: float | None = None
    time_s: float | None = None
    action: str = "warn"
    on_forecast: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"budget action must be one of {', '.join(ACTIONS)} (got {self.action!r})")
        limits = self.limits()
        if not limits:
            raise ConfigError("a budget needs at least one of energy_kwh, carbon_g, time_s")
        for quantity, value in limits:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"budget {quantity} must be a number > 0 (got {value!r})")

    def limits(self) -> list[tuple[str, float]]:
        return [(q, v) for q in QUANTITIES if (v := getattr(self, q)) is not None]

    def describe(self) -> str:
        limits = ", ".join(f"{q}={v:g}" for q, v in self.limits())
        return f"{self.action} at {limits}" + (" (or on forecast)" if self.on_forecast else "")


@dataclass(frozen=True)
class BudgetBreach:
    """A budget that fired: which limit, the figures (in the budget's units), and why."""

    budget: Budget
    quantity: str  # "energy_kwh" | "carbon_g" | "time_s"
    limit: float
    spent: float  # so far, when it fired
    basis: str  # "spent" (over the limit) or "forecast" (lower bound of the forecast over it)
    forecast_low: float | None  # the forecast's lower bound, if basis == "forecast"
    at_s: float  # run time when it fired
    progress: float | None = None  # forecast progress, if a forecast was available

    @property
    def action(self) -> str:
        return self.budget.action

    @property
    def counter(self) -> str:
        return f"{COUNTER_PREFIX}.{self.action}.{self.quantity}"

    def message(self) -> str:
        unit = {"energy_kwh": "kWh", "carbon_g": "gCO2e", "time_s": "s"}[self.quantity]
        if self.basis == "forecast":
            what = (
                f"heading over: forecast at least {self.forecast_low:.4g} {unit} "
                f"(spent {self.spent:.4g} {unit}"
                + (f" at {self.progress:.0%} progress" if self.progress is not None else "")
                + ")"
            )
        else:
            what = f"spent {self.spent:.4g} {unit}"
        return (
            f"budget exceeded ({self.action}): {self.quantity} limit {self.limit:g} {unit}, "
            f"{what}, after {self.at_s:.1f} s"
        )


class BudgetMonitor:
    """Sampler-thread side: checks the budgets after each tick and reports each breach once."""

    def __init__(
        self,
        budgets: Sequence[Budget],
        notify: Callable[[BudgetBreach], None],
        forecast: Callable[[], Forecast | None] | None = None,
        forecast_every_ticks: int = FORECAST_EVERY_TICKS,
    ) -> None:
        self._budgets = list(budgets)
        self._pending = list(range(len(self._budgets)))  # indices of budgets not fired yet
        self._notify = notify
        self._forecast = forecast
        self._every = max(int(forecast_every_ticks), 1)
        self._ticks = 0

    @property
    def active(self) -> bool:
        return bool(self._pending)

    def check(self, t_s: float, energy_j: float, carbon_g: float) -> None:
        """Compare the run's figures so far (and, if due, its forecast) with the budgets."""
        if not self._pending:
            return
        self._ticks += 1
        spent = {"energy_kwh": energy_j / J_PER_KWH, "carbon_g": carbon_g, "time_s": t_s}
        fired: dict[int, BudgetBreach] = {}
        for i in self._pending:
            budget = self._budgets[i]
            for quantity, limit in budget.limits():
                if spent[quantity] > limit:
                    fired[i] = BudgetBreach(budget, quantity, limit, spent[quantity], "spent", None, t_s)
                    break
        watching = [i for i in self._pending if self._budgets[i].on_forecast and i not in fired]
        if watching and self._forecast is not None and self._ticks % self._every == 0:
            fc = self._forecast()
            if fc is not None:
                low = {
                    "energy_kwh": fc.energy_low_j / J_PER_KWH,
                    "carbon_g": fc.carbon_low_g,
                    "time_s": fc.duration_low_s,
                }
                for i in watching:
                    budget = self._budgets[i]
                    for quantity, limit in budget.limits():
                        if low[quantity] > limit:
                            fired[i] = BudgetBreach(
                                budget, quantity, limit, spent[quantity], "forecast", low[quantity], t_s, fc.progress
                            )
                            break
        for i, breach in sorted(fired.items()):
            self._pending.remove(i)
            self._notify(breach)
