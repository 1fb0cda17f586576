"""Carbon-aware timing on the real 2020 British and French grid traces.

    python benchmarks/carbon_scheduling.py            # whole year, both regions (~1 min)
    python benchmarks/carbon_scheduling.py --days 30  # quicker

Scenario (the target of issue 5): one-hour jobs arriving every hour of 2020 (UTC), each with
12 hours of slack, 1 kW each (the power cancels out of the ratios). Policies: FIFO (run at
arrival), carbon-aware timing with the seasonal forecaster and its residual autoregression
(``carbon``, the default policy; forecasts built only from trace rows published by decision
time, the model refitted daily on the last 28 days of them), the same with the previous
forecaster (``carbon-profile``: the profile with a fading offset) and with day-ahead
persistence, and the oracle (the same policy with the true future). Target: ``carbon``
captures >= 75 % of the oracle's saving over FIFO with no deadline missed, per region.
The forecaster's few fixed hyper-parameters (7 profile days, 4 lags, 28 training days) are
the same for both regions; nothing is fitted on results.

Also reported: the same policy when a trace row is published only once its interval is over
(``delay_s`` = one step: no use of the current half-hour's value), and the forecasters' mean
absolute error over 13-hour horizons on slots not yet known. Carbon traces: ENTSO-E data as
published with "Let's Wait Awhile" (Wiesner et al., Middleware 2021). Note the French trace is
hourly data linearly interpolated to 30 min by its authors, so a half-hour row already carries
half of the next hour's value: the delayed variant is the conservative figure there.
Deterministic: a simulation, no randomness.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from _harness import RESULTS_DIR, parser
from greenai.carbon.grid_forecast import (
    PersistenceForecaster,
    SeasonalForecaster,
    forecast_mae,
    load_intensity_series,
)
from greenai.schedule.policies import CarbonAwareTiming, Fifo, Oracle
from greenai.schedule.simulate import compare, simulate
from greenai.schedule.trace_jobs import hourly_jobs
from greenai.units import joules_to_kwh

TARGET = 0.75
REGIONS = ("gb_2020", "fr_2020")
START = datetime(2020, 1, 1, tzinfo=UTC).timestamp()


def run_region(name: str, days: float) -> dict:
    trace = load_intensity_series(name)
    jobs = hourly_jobs(START, days, duration_s=3600, slack_s=12 * 3600)
    step = trace.step_s
    policies = [
        Fifo(),
        CarbonAwareTiming(SeasonalForecaster(trace), name="carbon"),
        CarbonAwareTiming(SeasonalForecaster(trace, method="profile"), name="carbon-profile"),
        CarbonAwareTiming(PersistenceForecaster(trace, mode="day"), name="carbon-persistence"),
        CarbonAwareTiming(SeasonalForecaster(trace, delay_s=step), name="carbon-delayed"),
        Oracle(trace),
    ]
    results = []
    for p in policies:
        t0 = time.perf_counter()
        results.append(simulate(jobs, trace, p, power_w=1000.0))
        print(f"  {name} {p.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = {
        c.summary.policy: {
            "carbon_kg": c.summary.carbon_g / 1000,
            "energy_kwh": joules_to_kwh(c.summary.energy_j),
            "mean_wait_h": c.summary.mean_wait_s / 3600,
            "deadline_misses": c.summary.deadline_misses,
            "saving_vs_fifo_kg": c.saving_vs_fifo_g / 1000,
            "saving_vs_fifo_pct": c.saving_vs_fifo_pct,
            "share_of_oracle_saving": c.share_of_oracle_saving,
            "gap_to_oracle_kg": (c.summary.carbon_g - results[-1].summary.carbon_g) / 1000,
        }
        for c in compare(results)
    }
    origins = START + step * np.arange(0, int(days * 86_400 / step), 11)
    mae = {}
    for label, f in (
        ("persistence-last", PersistenceForecaster(trace, mode="last")),
        ("persistence-day", PersistenceForecaster(trace, mode="day")),
        ("seasonal-profile", SeasonalForecaster(trace, method="profile")),
        ("seasonal-ar", SeasonalForecaster(trace)),
    ):
        mae[label] = forecast_mae(f, origins, 13 * 3600)
    carbon = rows["carbon"]
    return {
        "trace": name,
        "jobs": len(jobs),
        "policies": rows,
        "forecast_mae_g_per_kwh_13h": mae,
        "target_met": bool(carbon["share_of_oracle_saving"] >= TARGET and carbon["deadline_misses"] == 0),
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--days", type=float, default=366.0)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "carbon_scheduling.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    regions = [run_region(name, args.days) for name in REGIONS]
    report = {
        "scenario": {
            "jobs": "1 h every hour from 2020-01-01 UTC",
            "slack_h": 12,
            "days": args.days,
            "power_w": 1000.0,
            "target_share_of_oracle_saving": TARGET,
        },
        "carbon_forecaster": {
            "method": "seasonal profile + per-lead residual autoregression",
            "profile_days": 7,
            "lags": 4,
            "train_days": 28,
            "refit": "daily",
            "max_lead_h": 24,
            "same_for_all_regions": True,
        },
        "regions": regions,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for r in regions:
        print(f"{r['trace']}: {r['jobs']} jobs")
        for name, p in r["policies"].items():
            share = p["share_of_oracle_saving"]
            print(
                f"  {name:20s} {p['carbon_kg']:10.1f} kg  saved vs FIFO {p['saving_vs_fifo_kg']:8.1f} kg "
                f"({p['saving_vs_fifo_pct']:5.2f}%)  of oracle saving {share * 100:5.1f}%  "
                f"gap to oracle {p['gap_to_oracle_kg']:7.1f} kg  misses {p['deadline_misses']}"
            )
        print(
            "  forecast MAE over 13 h (g/kWh): "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["forecast_mae_g_per_kwh_13h"].items())
        )
        print(f"  target (>= {TARGET:.0%} of oracle saving, no miss): {'met' if r['target_met'] else 'NOT met'}")
    print(f"wrote {args.out} in {report['seconds']} s")


if __name__ == "__main__":
    main()
