"""`run.count` refuses amounts that are not finite numbers (issue 16, item 14: a NaN was
accepted and made every J/unit figure NaN); numpy numbers count like Python ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from greenai.config import Config
from greenai.errors import ConfigError
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.tracking.tracker import Tracker


def _config(tmp_path: Path) -> Config:
    return Config(ledger=tmp_path / "ledger.db", intensity="100", sample_hz=50.0, flush_interval_s=0.2).validate()


@pytest.mark.parametrize("amount", [math.nan, math.inf, -math.inf, True, "3", None, 10**400])
def test_an_amount_that_is_not_a_finite_number_is_refused(tmp_path: Path, amount: object) -> None:
    meter = SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)
    with Tracker("count", config=_config(tmp_path), meters=[meter]) as run:
        with pytest.raises(ConfigError, match=r"count\('c', .*\): the amount must be a finite number"):
            run.count("c", amount)  # type: ignore[arg-type]
        run.count("c", 2)
        run.count("c", np.int64(3))
        run.count("c", np.float32(0.5))
    assert run.result.snapshot.counters == {"c": 5.5}
    assert math.isfinite(run.result.energy_per("c") or math.nan)
