"""A greenai run's figures in an MLflow run: metrics, params, tags, and its report as an artifact.

    import greenai, mlflow
    from greenai.integrations.mlflow import log_run

    with mlflow.start_run():
        with greenai.track("train") as run:
            train()
        log_run(run.result, report=greenai.report)   # or report="greenai-report.html"

What goes where (keys under `prefix`, "greenai" by default; characters MLflow refuses in a
key, such as the colon of "cpu:0", become "_"):

- metrics (numbers, at `step`): `energy_j`, `energy_kwh`, `energy_band_j` (the ~95 % band's
  half-width), `rel_uncertainty`, `facility_energy_j`, `carbon_g`, `cost` (when a price is
  configured), `duration_s`; `device.<device>.energy_j`; `counter.<name>` and
  `energy_per.<name>_j` (J/sample, J/token...); per phase, inclusive of its nested phases,
  `phase.<path>.energy_j`, `.duration_s`, `.calls`; the forecast's `forecast.energy_j`,
  `.energy_low_j`, `.energy_high_j`, `.progress` when the run has one.
- params (what the figures were computed with; MLflow keeps a param's first value):
  `pue`, `carbon_source`, `currency`.
- tags (what the figures are): `provenance` (the run's weakest: measured, integrated,
  estimated, simulated), `device.<device>.provenance`, `status`, `run_id` and `run_name` (the
  greenai run, to find it with `greenai runs show`), `ledger`, `version`, `stop_reason`.

`log_run` takes a finished run's `RunResult` or a live `Tracker` (its figures so far, e.g. at
each epoch with `step=epoch`). It logs into the active MLflow run, or `mlflow_run_id`. In a
job of several processes only global rank 0 logs (the others return an empty record): the
process-group-wide total is the distributed tracker's business.

The report: greenai's reports are drawn by `greenai.reports`, a layer above the integrations,
which never import it. So `report` is either the path of a report you wrote
(`greenai.report(result, output=...)`) or the function itself, `report=greenai.report`, which
`log_run` calls as `report(result, output=<temporary file>)` (a live run is passed by its
id); the file is attached under the artifact path `prefix`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from greenai.integrations import unavailable

try:
    import mlflow
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
except ImportError as e:
    raise unavailable("mlflow", e) from None

from greenai._version import __version__
from greenai.errors import GreenAIError
from greenai.integrations._common import process_rank
from greenai.ledger.records import RunSnapshot, RunStatus
from greenai.tracking.forecast import Forecast
from greenai.tracking.phases import NO_PHASE, inclusive_totals
from greenai.tracking.result import RunResult
from greenai.tracking.tracker import Tracker
from greenai.units import J_PER_KWH

log = logging.getLogger("greenai.integrations")

T = TypeVar("T")
MAX_METRICS_PER_BATCH = 1000  # MLflow's limits for one log_batch call
MAX_TAGS_PER_BATCH = 100
MAX_TAG_LENGTH = 5000  # below MLflow's 8000 for tags, 6000 for params
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")  # what MLflow accepts in a key on every OS (no colon on Windows)
NO_PHASE_KEY = "no_phase"


@dataclass(frozen=True)
class Logged:
    """What `log_run` logged: the MLflow run, the metrics, params and tags (by key), and the
    report's artifact path if one was attached."""

    mlflow_run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact: str | None = None


def log_run(
    run: RunResult | Tracker,
    *,
    mlflow_run_id: str | None = None,
    prefix: str = "greenai",
    step: int = 0,
    phases: bool = True,
    report: str | os.PathLike[str] | Callable[..., Any] | None = None,
) -> Logged:
    """Log a greenai run's figures into an MLflow run; see the module's docstring."""
    result, snapshot, status, forecast = _figures_of(run)
    if process_rank() != 0:
        return Logged(None)
    if mlflow_run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise GreenAIError(
                "no active MLflow run: call log_run inside `with mlflow.start_run():` or pass mlflow_run_id="
            )
        mlflow_run_id = active.info.run_id
    metrics = _metrics(snapshot, forecast, phases, _cost_configured(run))
    params = {"pue": f"{snapshot.pue:g}", "carbon_source": snapshot.carbon_source or "unknown"}
    if _cost_configured(run):
        params["currency"] = snapshot.currency
    tags = _tags(run, result, snapshot, status)
    p = prefix.rstrip(".") + "." if prefix else ""
    metrics = {_key(p + k): v for k, v in metrics.items() if math.isfinite(v)}
    params = {_key(p + k): _text(v) for k, v in params.items()}
    tags = {_key(p + k): _text(v) for k, v in tags.items()}

    client = MlflowClient()
    now_ms = int(time.time() * 1000)
    for numbers in _chunks(list(metrics.items()), MAX_METRICS_PER_BATCH):
        client.log_batch(mlflow_run_id, metrics=[Metric(k, v, now_ms, step) for k, v in numbers])
    for texts in _chunks(list(tags.items()), MAX_TAGS_PER_BATCH):
        client.log_batch(mlflow_run_id, tags=[RunTag(k, v) for k, v in texts])
    logged_params = {}
    for key, value in params.items():
        try:
            client.log_param(mlflow_run_id, key, value)
            logged_params[key] = value
        except MlflowException as e:  # the param was logged before with another value
            log.warning("greenai: MLflow param %s not changed to %r: %s", key, value, e.message)
    artifact = _attach_report(client, mlflow_run_id, run, report, prefix or "greenai")
    return Logged(mlflow_run_id, metrics, logged_params, tags, artifact)


def _figures_of(run: RunResult | Tracker) -> tuple[RunResult | None, RunSnapshot, str, Forecast | None]:
    if isinstance(run, RunResult):
        return run, run.snapshot, run.status, run.forecast
    if isinstance(run, Tracker):
        if run.result is not None:
            return run.result, run.result.snapshot, run.result.status, run.result.forecast
        return None, run.snapshot(), RunStatus.RUNNING, run.forecast()
    raise TypeError(f"log_run() takes a greenai RunResult or Tracker (got {type(run).__name__})")


def _cost_configured(run: RunResult | Tracker) -> bool:
    if isinstance(run, RunResult):
        return run.cost_configured
    return run.config.price_per_kwh is not None


def _metrics(snapshot: RunSnapshot, forecast: Forecast | None, phases: bool, cost: bool) -> dict[str, float]:
    m: dict[str, float] = {
        "energy_j": snapshot.energy_j,
        "energy_kwh": snapshot.energy_j / J_PER_KWH,
        "energy_band_j": snapshot.energy_j * snapshot.rel_uncertainty,
        "rel_uncertainty": snapshot.rel_uncertainty,
        "facility_energy_j": snapshot.facility_energy_j,
        "carbon_g": snapshot.carbon_g,
        "duration_s": snapshot.duration_s,
    }
    if cost:
        m["cost"] = snapshot.cost
    for device in snapshot.devices:
        m[f"device.{device.device}.energy_j"] = device.energy_j
    for name, count in sorted(snapshot.counters.items()):
        m[f"counter.{name}"] = count
        if count > 0 and not name.startswith("greenai."):
            m[f"energy_per.{name}_j"] = snapshot.energy_j / count
    if phases:
        for path, total in inclusive_totals(snapshot.phases).items():
            key = NO_PHASE_KEY if path == NO_PHASE else path
            m[f"phase.{key}.energy_j"] = total.energy_j
            m[f"phase.{key}.duration_s"] = total.duration_s
            m[f"phase.{key}.calls"] = float(total.calls)
    if forecast is not None:
        m["forecast.energy_j"] = forecast.energy_j
        m["forecast.energy_low_j"] = forecast.energy_low_j
        m["forecast.energy_high_j"] = forecast.energy_high_j
        m["forecast.progress"] = forecast.progress
        m["forecast.carbon_g"] = forecast.carbon_g
    return {k: float(v) for k, v in m.items()}


def _tags(run: RunResult | Tracker, result: RunResult | None, snapshot: RunSnapshot, status: str) -> dict[str, str]:
    tags = {
        "provenance": snapshot.provenance.value,
        "status": status,
        "run_id": run.run_id,
        "run_name": run.name,
        "version": __version__,
    }
    for device in snapshot.devices:
        tags[f"device.{device.device}.provenance"] = device.provenance.value
    ledger = result.ledger_path if result is not None else None
    if ledger is not None:
        tags["ledger"] = str(ledger)
    if result is not None and result.stop_reason:
        tags["stop_reason"] = result.stop_reason
    return tags


def _attach_report(
    client: MlflowClient,
    mlflow_run_id: str,
    run: RunResult | Tracker,
    report: str | os.PathLike[str] | Callable[..., Any] | None,
    artifact_dir: str,
) -> str | None:
    if report is None:
        return None
    if callable(report):
        with tempfile.TemporaryDirectory(prefix="greenai-mlflow-") as tmp:
            output = Path(tmp) / f"greenai-report-{run.run_id[:8]}.html"
            target = run if isinstance(run, RunResult) else (run.result or run.run_id)
            written = report(target, output=output)
            path = Path(written) if isinstance(written, (str, os.PathLike)) else output
            client.log_artifact(mlflow_run_id, str(path), artifact_path=artifact_dir)
            return f"{artifact_dir}/{path.name}"
    path = Path(report)
    if not path.is_file():
        raise GreenAIError(f"no report at {path}: write it first, e.g. greenai.report(result, output={str(path)!r})")
    client.log_artifact(mlflow_run_id, str(path), artifact_path=artifact_dir)
    return f"{artifact_dir}/{path.name}"


def _key(key: str) -> str:
    """A key MLflow accepts: no character outside [/\\w.- ], no empty or dot segment."""
    cleaned = _BAD_KEY_CHARS.sub("_", key)
    parts = [p if p not in ("", ".", "..") else "_" for p in cleaned.split("/")]
    return "/".join(parts)[:250]


def _text(value: str) -> str:
    return value if len(value) <= MAX_TAG_LENGTH else value[: MAX_TAG_LENGTH - 1] + "…"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
