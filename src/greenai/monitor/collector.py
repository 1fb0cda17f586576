"""The Prometheus collector: the exporter's figures as metric families, at each scrape.

A custom collector (prometheus_client's `Collector` protocol) rather than Counter and Gauge
objects set from a thread: the figures are already computed, and a series must disappear
when its run finishes, which a collector does by not yielding it. A scrape reads the current
`MachineFigures` and `RunsFigures` (immutable records) and formats them; it never reads a
meter or the ledger.

Names follow Prometheus's conventions as Kepler and the DCGM exporter apply them: a `greenai_`
prefix, base units in the name (joules, watts, grams, seconds, a ratio), `_total` on counters.
docs/monitor.md documents every metric and label; `METRICS` is the list it is checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from greenai.monitor.figures import MachineFigures, RunsFigures

DEVICE_LABELS = ("device", "kind", "provenance")
METER_LABELS = ("meter", "devices")
RUN_LABELS = ("run_id", "name")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed (a counter's with its _total)
    kind: str  # counter or gauge
    help: str
    labels: tuple[str, ...] = ()

    def family(self) -> CounterMetricFamily | GaugeMetricFamily:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=self.labels)
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


ENERGY = MetricSpec(
    "greenai_energy_joules_total", "counter", "Energy of each device since the exporter started.", DEVICE_LABELS
)
POWER = MetricSpec(
    "greenai_power_watts", "gauge", "Mean power of each device over the last sampling interval.", DEVICE_LABELS
)
UNCERTAINTY = MetricSpec(
    "greenai_meter_uncertainty_ratio",
    "gauge",
    "Half-width of the ~95% band of each device's energy, as a fraction of it.",
    DEVICE_LABELS,
)
FACILITY = MetricSpec(
    "greenai_facility_energy_joules_total",
    "counter",
    "Energy of all devices times the PUE, since the exporter started.",
)
CARBON = MetricSpec(
    "greenai_carbon_grams_total",
    "counter",
    "Carbon emitted by the facility energy, gCO2e, at the grid intensity of each interval, since the exporter started.",
)
INTENSITY = MetricSpec(
    "greenai_carbon_intensity_grams_per_kwh", "gauge", "Grid carbon intensity now, gCO2e per kWh.", ("source",)
)
SAMPLED_AT = MetricSpec(
    "greenai_sample_timestamp_seconds", "gauge", "Unix time of the meter readings behind the device figures."
)
METER_UP = MetricSpec(
    "greenai_meter_up", "gauge", "1 if the meter's last read gave good readings and is recent, else 0.", METER_LABELS
)
METER_ERRORS = MetricSpec(
    "greenai_meter_errors_total", "counter", "Reads of the meter that failed or gave bad readings.", METER_LABELS
)
RUNS_IN_PROGRESS = MetricSpec("greenai_runs_in_progress", "gauge", "Runs in progress in the ledger.")
RUN_ENERGY = MetricSpec(
    "greenai_run_energy_joules",
    "gauge",
    "Energy of a run in progress so far, as last flushed to the ledger.",
    RUN_LABELS,
)
RUN_POWER = MetricSpec(
    "greenai_run_power_watts", "gauge", "Mean power of a run in progress between its last two flushes.", RUN_LABELS
)
RUN_CARBON = MetricSpec("greenai_run_carbon_grams", "gauge", "Carbon of a run in progress so far, gCO2e.", RUN_LABELS)
LEDGER_UP = MetricSpec("greenai_ledger_up", "gauge", "1 if the last read of the ledger worked, else 0.")
INFO = MetricSpec(
    "greenai_monitor_info",
    "gauge",
    "Always 1; the labels describe the exporter (run_id: its own run in the ledger, empty without --ledger).",
    ("version", "host", "run_id"),
)

METRICS = (
    ENERGY,
    POWER,
    UNCERTAINTY,
    FACILITY,
    CARBON,
    INTENSITY,
    SAMPLED_AT,
    METER_UP,
    METER_ERRORS,
    RUNS_IN_PROGRESS,
    RUN_ENERGY,
    RUN_POWER,
    RUN_CARBON,
    LEDGER_UP,
    INFO,
)


class MonitorCollector:
    """Yields every metric in METRICS from the figures current at the scrape. Device and
    meter series appear with the first reading (about 0.2 s after the start)."""

    def __init__(
        self,
        machine: Callable[[], MachineFigures | None],
        runs: Callable[[], RunsFigures],
        info: Callable[[], dict[str, str]],
    ) -> None:
        self._machine = machine
        self._runs = runs
        self._info = info

    def describe(self) -> Iterator[Metric]:
        """The families without samples (the registry checks names with it, not with a scrape)."""
        for spec in METRICS:
            yield spec.family()

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {spec.name: spec.family() for spec in METRICS}
        machine, runs = self._machine(), self._runs()
        if machine is not None:
            for d in machine.devices:
                labels = [d.device, d.kind, d.provenance]
                families[ENERGY.name].add_metric(labels, d.energy_j)
                families[POWER.name].add_metric(labels, d.power_w)
                families[UNCERTAINTY.name].add_metric(labels, d.rel_uncertainty)
            families[FACILITY.name].add_metric([], machine.facility_energy_j)
            families[CARBON.name].add_metric([], machine.carbon_g)
            families[INTENSITY.name].add_metric([machine.intensity_source], machine.intensity_g_per_kwh)
            families[SAMPLED_AT.name].add_metric([], machine.sampled_at)
            for m in machine.meters:
                families[METER_UP.name].add_metric([m.meter, m.devices], 1.0 if m.up else 0.0)
                families[METER_ERRORS.name].add_metric([m.meter, m.devices], float(m.errors))
        families[RUNS_IN_PROGRESS.name].add_metric([], float(runs.in_progress))
        for r in runs.runs:
            families[RUN_ENERGY.name].add_metric([r.run_id, r.name], r.energy_j)
            families[RUN_POWER.name].add_metric([r.run_id, r.name], r.power_w)
            families[RUN_CARBON.name].add_metric([r.run_id, r.name], r.carbon_g)
        families[LEDGER_UP.name].add_metric([], 1.0 if runs.ledger_up else 0.0)
        info = self._info()
        families[INFO.name].add_metric([info.get(label, "") for label in INFO.labels], 1.0)
        yield from families.values()
