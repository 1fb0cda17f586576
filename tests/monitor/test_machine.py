"""The whole machine as the estimates' scope, and the exporter on this machine's real meters."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil
from tests.monitor.prom import by_device, scrape, until, values

from greenai.config import Config
from greenai.meters.base import Provenance
from greenai.meters.cpu_model import CpuModelMeter
from greenai.monitor import Exporter
from greenai.monitor.machine import MachineScope


def test_the_machine_scope_reads_the_whole_machine(real_machine) -> None:
    # its CPU time is the co-load reader's (/proc/stat), which the other tests see quiet
    scope = MachineScope()
    assert scope.usable_cpus() == float(psutil.cpu_count(logical=True))
    before = scope.cpu_seconds()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # this process's own work is part of the machine's
        pass
    assert scope.cpu_seconds() - before >= 0.15
    assert 0 < scope.rss_bytes() <= psutil.virtual_memory().total
    read, written = scope.io_bytes()
    assert read >= 0 and written >= 0


def test_the_cpu_model_on_the_machine_charges_every_cpu(real_machine) -> None:
    meter = CpuModelMeter(MachineScope())
    meter.start()
    time.sleep(0.3)
    (reading,) = meter.read()
    (max_w, source) = meter.max_power()["cpu:0"]
    assert f"x {float(psutil.cpu_count(logical=True)):g} usable" in source  # every CPU, not a share
    assert 0 < reading.energy_j <= max_w * 0.5  # idle power at least, never beyond the maximum


def test_the_exporter_on_this_machines_meters(
    start_exporter: Callable[..., Exporter], make_config, real_machine
) -> None:
    config: Config = make_config(simulate=False)
    exporter = start_exporter(config, interval_s=0.2)
    families = until(
        lambda: scrape(exporter.url),
        lambda f: (
            "cpu:0" in by_device(f, "greenai_energy_joules_total")
            and by_device(f, "greenai_power_watts").get("cpu:0", 0) > 0
        ),
    )
    provenances = {dict(k)["provenance"] for k in values(families, "greenai_energy_joules_total")}
    assert provenances <= {p.value for p in Provenance} - {"simulated"}
    assert set(values(families, "greenai_meter_up").values()) == {1.0}
    assert {m.name for m in exporter.meters} & {"rapl", "cpu_model"}
