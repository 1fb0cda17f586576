"""`greenai monitor` on a carbon trace read at exact times that ends while it serves: the
machine's figures read the tracker's intensity, held at the trace's last value past its end
(carbon/held.py), so they keep updating with one warning; they used to read the raw trace and
log a traceback every interval, the machine's figures frozen at the trace's end."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.monitor.prom import by_device, scrape, until, values

from greenai.carbon.held import HeldIntensity
from greenai.carbon.trace import TraceIntensity
from greenai.ledger.records import RunSnapshot
from greenai.meters.base import Provenance
from greenai.monitor.figures import MachineWatch

HELD = "the last intensity known"


def write_trace(path: Path, first_s: float, step_s: float, values: list[float]) -> Path:
    rows = "".join(
        f"{datetime.fromtimestamp(first_s + k * step_s, UTC):%Y-%m-%dT%H:%M:%S.%f},{v}\n" for k, v in enumerate(values)
    )
    path.write_text("Time,Carbon Intensity\n" + rows)
    return path


def test_the_machines_figures_hold_the_last_intensity_past_the_traces_end(tmp_path: Path, caplog) -> None:
    first_s = 1_700_000_000.0  # a fake clock: the snapshot's duration says where the run is
    trace = TraceIntensity(str(write_trace(tmp_path / "t.csv", first_s, 60.0, [100, 200, 300, 400])))
    started_at = first_s + 30.0
    duration_s = [30.0]
    energy_j = [1.0]

    def snapshot() -> RunSnapshot:
        return RunSnapshot(duration_s[0], energy_j[0], 0.0, Provenance.SIMULATED, energy_j[0], 0.0, 0.0, "")

    watch = MachineWatch(snapshot, [], HeldIntensity.started(trace, started_at), started_at, stale_after_s=5.0)
    figures = watch.update()
    assert figures is not None and figures.intensity_g_per_kwh == 200.0
    with caplog.at_level(logging.WARNING, logger="greenai"):
        for k, d in enumerate((200.0, 600.0, 3600.0)):  # the trace ends 240 s after its first row
            duration_s[0], energy_j[0] = d, 10.0 * (k + 2)
            figures = watch.update()
            assert figures is not None and figures.sampled_at == started_at + d
            assert figures.facility_energy_j == energy_j[0]  # the figures keep updating
            assert figures.intensity_g_per_kwh == 400.0
    assert figures is not None and "held at 400 gCO2e/kWh" in figures.intensity_source
    assert [r.getMessage().count(HELD) for r in caplog.records] == [1]  # one warning, no traceback


def test_the_exporter_reads_the_runs_held_intensity(start_exporter, make_config, tmp_path: Path, caplog) -> None:
    # the trace covers the exporter's start and ends about a second later
    trace = write_trace(tmp_path / "short.csv", time.time() - 1.0, 0.5, [100, 200, 300, 400, 500])
    with caplog.at_level(logging.WARNING, logger="greenai"):
        exporter = start_exporter(make_config(intensity=f"trace:{trace}"))

        def held_source(f: dict) -> bool:
            return any("held at 500" in dict(k)["source"] for k in values(f, "greenai_carbon_intensity_grams_per_kwh"))

        held = until(lambda: scrape(exporter.url), held_source)
        energy_j = by_device(held, "greenai_energy_joules_total")["cpu:0"]
        later = until(
            lambda: scrape(exporter.url), lambda f: by_device(f, "greenai_energy_joules_total")["cpu:0"] > energy_j
        )
    assert list(values(later, "greenai_carbon_intensity_grams_per_kwh").values()) == [500.0]
    assert [r for r in caplog.records if r.exc_info] == []  # no traceback an interval
    assert sum(r.getMessage().count(HELD) for r in caplog.records) == 1  # the run's and the figures' one warning
