"""The exporter in this process: its HTTP server on a free loopback port, scraped over HTTP
and parsed with prometheus_client's parser; simulated meters (and faulty ones from
greenai.testing.faults); the runs in progress of a real ledger."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.monitor.prom import Families, by_device, fetch, scrape, until, value, values

from greenai.config import Config
from greenai.errors import ConfigError, GreenAIError
from greenai.meters.base import DeviceKind
from greenai.meters.simulated import SimulatedMeter
from greenai.monitor import Exporter
from greenai.monitor.collector import METRICS
from greenai.monitor.figures import MAX_NAME_CHARS
from greenai.testing.faults import BadValue, FailingAfter
from greenai.tracking.tracker import Tracker
from greenai.units import J_PER_KWH

StartExporter = Callable[..., Exporter]
DEVICE_LABELS = {"device", "kind", "provenance"}


def ready(url: str) -> Families:
    """The first scrape that has device figures (the tracker's first reading is at 0.1 s)."""
    return until(lambda: scrape(url), lambda f: bool(by_device(f, "greenai_energy_joules_total")))


def test_every_metric_is_served_with_its_type_and_labels(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    families = ready(exporter.url)
    for spec in METRICS:
        family = families[spec.name.removesuffix("_total")]
        assert family.type == spec.kind, spec.name
        assert family.documentation == spec.help
        for sample in family.samples:
            assert sample.name == spec.name
            assert set(sample.labels) == set(spec.labels), (spec.name, sample.labels)
    energy = values(families, "greenai_energy_joules_total")
    assert {tuple(sorted(dict(k).items())) for k in energy} == {
        (("device", "cpu:0"), ("kind", "cpu"), ("provenance", "simulated")),
        (("device", "gpu:0"), ("kind", "gpu"), ("provenance", "simulated")),
    }
    assert set(values(families, "greenai_power_watts")) == set(energy)
    assert set(values(families, "greenai_meter_uncertainty_ratio")) == set(energy)
    assert value(families, "greenai_ledger_up") == 0.0  # nothing has created the ledger yet
    assert value(families, "greenai_runs_in_progress") == 0.0
    (info,) = values(families, "greenai_monitor_info")
    assert dict(info)["run_id"] == "" and dict(info)["host"] == socket.gethostname()
    assert "process_cpu_seconds_total" in fetch(exporter.url)  # the exporter's own CPU, for its operators


def test_counters_only_grow_and_power_is_the_meters(start_exporter: StartExporter, make_config) -> None:
    exporter = start_exporter(make_config(intensity="100", pue=1.5))
    first = ready(exporter.url)
    scrapes = [first]
    for _ in range(4):
        time.sleep(0.25)
        scrapes.append(scrape(exporter.url))
    for sample in ("greenai_energy_joules_total", "greenai_facility_energy_joules_total", "greenai_carbon_grams_total"):
        series = [values(f, sample) for f in scrapes]
        for before, after in zip(series, series[1:]):
            assert set(before) == set(after)
            assert all(after[k] >= before[k] for k in before), sample
        assert all(series[-1][k] > series[0][k] for k in series[0]), f"{sample} did not grow"
    last = scrapes[-1]
    power = by_device(last, "greenai_power_watts")
    # the simulated CPU's constant 65 W (the meter's clock and the tick's differ by microseconds)
    assert power["cpu:0"] == pytest.approx(65.0, rel=0.01)
    assert 200.0 <= power["gpu:0"] <= 300.0  # 250 W +/- 50 W
    it_j = sum(by_device(last, "greenai_energy_joules_total").values())
    facility_j = value(last, "greenai_facility_energy_joules_total")
    assert facility_j == pytest.approx(1.5 * it_j, rel=1e-9)
    assert value(last, "greenai_carbon_grams_total") == pytest.approx(facility_j / J_PER_KWH * 100.0, rel=1e-9)
    ((labels, intensity),) = values(last, "greenai_carbon_intensity_grams_per_kwh").items()
    assert intensity == 100.0 and "100" in dict(labels)["source"]
    assert set(by_device(last, "greenai_meter_uncertainty_ratio").values()) == {0.0}  # simulated: exact
    stamp = value(last, "greenai_sample_timestamp_seconds")
    assert time.time() - 1.0 < stamp <= time.time()
    up = values(last, "greenai_meter_up")
    assert {dict(k)["meter"] for k in up} == {"simulated"} and set(up.values()) == {1.0}
    assert set(values(last, "greenai_meter_errors_total").values()) == {0.0}


def test_a_scrape_reads_no_meter(start_exporter: StartExporter, make_config) -> None:
    """The meters are read by the sampling thread at the interval, never by a scrape: with a
    30 s interval, forty scrapes leave the read count where the first reading put it."""

    class Counting(SimulatedMeter):
        reads = 0

        def read(self):  # type: ignore[no-untyped-def]
            Counting.reads += 1
            return super().read()

    meter = Counting("cpu:0", DeviceKind.CPU, 10.0)
    exporter = start_exporter(meters=[meter], interval_s=30.0)
    ready(exporter.url)  # the tracker's first reading, 0.2 s after the start
    reads = Counting.reads
    for _ in range(40):
        scrape(exporter.url)
    assert Counting.reads == reads


def test_a_failing_meter_goes_down_and_counts_its_errors(start_exporter: StartExporter) -> None:
    good = SimulatedMeter("cpu:0", DeviceKind.CPU, 50.0)
    failing = FailingAfter(SimulatedMeter("gpu:0", DeviceKind.GPU, 200.0), n_reads=3)
    exporter = start_exporter(meters=[good, failing])
    families = until(
        lambda: scrape(exporter.url),
        lambda f: 0.0 in values(f, "greenai_meter_up").values(),
    )
    up = {dict(k)["devices"]: v for k, v in values(families, "greenai_meter_up").items()}
    errors = {dict(k)["devices"]: v for k, v in values(families, "greenai_meter_errors_total").items()}
    assert up == {"cpu:0": 1.0, "gpu:0": 0.0}
    assert errors["cpu:0"] == 0.0 and errors["gpu:0"] >= 1.0
    # the lost GPU keeps the energy it had; the CPU goes on
    energy = by_device(families, "greenai_energy_joules_total")
    later = scrape(exporter.url)
    time.sleep(0.3)
    later = scrape(exporter.url)
    assert by_device(later, "greenai_energy_joules_total")["gpu:0"] == pytest.approx(energy["gpu:0"])
    assert by_device(later, "greenai_energy_joules_total")["cpu:0"] > energy["cpu:0"]


def test_bad_readings_count_as_errors(start_exporter: StartExporter) -> None:
    nan = BadValue(SimulatedMeter("gpu:0", DeviceKind.GPU, 200.0), math.nan, after=2, times=1)
    exporter = start_exporter(meters=[nan])
    families = until(lambda: scrape(exporter.url), lambda f: 1.0 in values(f, "greenai_meter_errors_total").values())
    # one bad reading, then good ones again: up once more, the error counted once
    families = until(lambda: scrape(exporter.url), lambda f: set(values(f, "greenai_meter_up").values()) == {1.0})
    assert set(values(families, "greenai_meter_errors_total").values()) == {1.0}


def test_a_run_in_progress_has_series_until_it_finishes(start_exporter: StartExporter, make_config) -> None:
    config = make_config()
    exporter = start_exporter(config)
    name = 'train "big" \\ model\n' + "x" * 300  # quotes, a backslash, a newline and a long name
    tracker = Tracker(name, config=config, meters=[SimulatedMeter("gpu:0", DeviceKind.GPU, 100.0)]).start()
    try:
        families = until(
            lambda: scrape(exporter.url),
            lambda f: any(dict(k)["run_id"] == tracker.run_id for k in values(f, "greenai_run_energy_joules")),
        )
        assert value(families, "greenai_ledger_up") == 1.0
        assert value(families, "greenai_runs_in_progress") == 1.0
        for sample in ("greenai_run_energy_joules", "greenai_run_power_watts", "greenai_run_carbon_grams"):
            ((labels, _),) = values(families, sample).items()
            assert dict(labels) == {"run_id": tracker.run_id, "name": name[:MAX_NAME_CHARS]}
        # power: 100 W once two flushes have been seen
        families = until(
            lambda: scrape(exporter.url),
            lambda f: abs(value(f, "greenai_run_power_watts") - 100.0) < 0.1,
        )
        assert value(families, "greenai_run_energy_joules") > 0
    finally:
        tracker.stop()
    families = until(lambda: scrape(exporter.url), lambda f: not values(f, "greenai_run_energy_joules"))
    assert value(families, "greenai_runs_in_progress") == 0.0
    assert not values(families, "greenai_run_power_watts") and not values(families, "greenai_run_carbon_grams")


def test_recording_names_its_run_and_counts_it_in_progress(start_exporter: StartExporter, make_config) -> None:
    exporter = start_exporter(make_config(), record=True)
    assert exporter.run_id is not None and exporter.name == f"monitor@{socket.gethostname()}"
    families = until(lambda: scrape(exporter.url), lambda f: values(f, "greenai_run_energy_joules"))
    ((labels, _),) = values(families, "greenai_run_energy_joules").items()
    assert dict(labels) == {"run_id": exporter.run_id, "name": exporter.name}
    (info,) = values(families, "greenai_monitor_info")
    assert dict(info)["run_id"] == exporter.run_id
    result = exporter.stop()
    assert result is not None and result.status == "completed" and result.stored


def test_a_port_in_use_is_a_clear_error_and_records_nothing(make_config, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(GreenAIError, match=f"cannot listen on 127.0.0.1:{port}: the port is already in use"):
            Exporter(make_config(), port=port, record=True).start()
    assert not (tmp_path / "ledger.db").exists()  # refused before the run began


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(port=65536), "port must be a number from 0 to 65535"),
        (dict(port=-1), "port must be a number from 0 to 65535"),
        (dict(interval_s=0.01), "interval must be from 0.1 to 60 seconds"),
        (dict(interval_s=600.0), "interval must be from 0.1 to 60 seconds"),
    ],
)
def test_bad_port_or_interval(make_config, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Exporter(make_config(), **kwargs)  # type: ignore[arg-type]


def test_an_unresolvable_host_is_a_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match="does not resolve to an address"):
        Exporter(make_config(), host="no-such-host.invalid", port=0).start()


def test_loopback_is_not_exposed_and_any_address_is(start_exporter: StartExporter) -> None:
    assert not start_exporter().exposed
    exposed = start_exporter(host="0.0.0.0")
    assert exposed.exposed
    assert by_device(ready(f"http://127.0.0.1:{exposed.port}/metrics"), "greenai_energy_joules_total")


def test_stop_closes_the_server(start_exporter: StartExporter, make_config: Callable[..., Config]) -> None:
    exporter = start_exporter()
    ready(exporter.url)
    exporter.stop()
    with pytest.raises(OSError):
        fetch(exporter.url)
    assert exporter.stop() is exporter.result  # idempotent


def test_importing_the_package_loads_no_prometheus_client() -> None:
    code = "import sys, greenai.monitor, greenai.cli.main; assert 'prometheus_client' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_openmetrics_is_served_when_asked_for(start_exporter: StartExporter) -> None:
    """Prometheus asks for OpenMetrics first: the same families, counters with _total."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    exporter = start_exporter()
    ready(exporter.url)
    request = urllib.request.Request(exporter.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        body = response.read().decode()
    families = {f.name: f for f in parse_openmetrics(body)}
    for spec in METRICS:
        assert families[spec.name.removesuffix("_total")].type == spec.kind, spec.name
    energy = families["greenai_energy_joules"]
    assert {s.name for s in energy.samples} == {"greenai_energy_joules_total"}
