"""log_run into a real MLflow file store in a temporary directory: metrics, params, tags and the
report artifact are read back from the store by a fresh client."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402
from tests.integrations.helpers import cpu, sim_config  # noqa: E402

from greenai.errors import GreenAIError  # noqa: E402
from greenai.integrations.mlflow import log_run  # noqa: E402
from greenai.meters.base import DeviceKind  # noqa: E402
from greenai.meters.simulated import SimulatedMeter  # noqa: E402
from greenai.tracking.tracker import Tracker  # noqa: E402


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store in maintenance mode
    uri = f"file://{tmp_path}/mlruns"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("greenai-tests")
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def tracked(tmp_path: Path, name: str = "train", **config: object) -> Tracker:
    gpu = SimulatedMeter("gpu:0", DeviceKind.GPU, 300.0)
    with Tracker(name, config=sim_config(tmp_path, **config), meters=[cpu(100.0), gpu]) as run:
        for _ in range(3):
            with run.phase("train"):
                with run.phase("forward"):
                    time.sleep(0.02)
                with run.phase("backward"):
                    time.sleep(0.02)
            run.count("samples", 32)
    return run


def test_a_result_is_logged_as_metrics_params_and_tags_of_the_active_run(tmp_path) -> None:
    run = tracked(tmp_path, price_per_kwh=0.25, pue=1.2)
    result = run.result
    assert result is not None
    with mlflow.start_run() as active:
        logged = log_run(result)
    assert logged.mlflow_run_id == active.info.run_id
    data = MlflowClient().get_run(active.info.run_id).data  # read back from the file store
    m = data.metrics
    assert m["greenai.energy_j"] == pytest.approx(result.energy_j)
    assert m["greenai.energy_kwh"] == pytest.approx(result.energy_j / 3.6e6)
    assert m["greenai.carbon_g"] == pytest.approx(result.carbon_g)
    assert m["greenai.cost"] == pytest.approx(result.snapshot.cost) and m["greenai.cost"] > 0
    assert m["greenai.facility_energy_j"] == pytest.approx(1.2 * result.energy_j)
    assert m["greenai.device.cpu_0.energy_j"] + m["greenai.device.gpu_0.energy_j"] == pytest.approx(result.energy_j)
    assert m["greenai.counter.samples"] == 96
    assert m["greenai.energy_per.samples_j"] == pytest.approx(result.energy_j / 96)
    assert m["greenai.phase.train.energy_j"] == pytest.approx(result.phase_energy_j("train"))
    assert m["greenai.phase.train/forward.energy_j"] == pytest.approx(result.phase_energy_j("forward"))
    assert m["greenai.phase.train/backward.calls"] == 3
    assert m["greenai.phase.train.duration_s"] == pytest.approx(result.phase_duration_s("train"))
    assert "greenai.phase.no_phase.energy_j" in m
    assert data.params["greenai.pue"] == "1.2"
    assert data.params["greenai.currency"] == "EUR"
    assert "500" in data.params["greenai.carbon_source"]
    assert data.tags["greenai.provenance"] == "simulated"
    assert data.tags["greenai.device.gpu_0.provenance"] == "simulated"
    assert data.tags["greenai.status"] == "completed"
    assert data.tags["greenai.run_id"] == result.run_id and data.tags["greenai.run_name"] == "train"
    assert data.tags["greenai.ledger"] == str(tmp_path / "ledger.db")
    assert set(logged.metrics) <= set(m) and logged.tags.items() <= data.tags.items()


def test_a_live_run_is_logged_at_each_step_and_without_a_price_no_cost(tmp_path) -> None:
    with mlflow.start_run() as active:
        with Tracker("live", config=sim_config(tmp_path), meters=[cpu(100.0)]) as run:
            for epoch in range(3):
                with run.phase("epoch"):
                    time.sleep(0.05)
                logged = log_run(run, step=epoch, prefix="energy")
                assert logged.tags["energy.status"] == "running"
        log_run(run, step=3, prefix="energy")  # ended: its result
    client = MlflowClient()
    history = client.get_metric_history(active.info.run_id, "energy.energy_j")
    assert [h.step for h in history] == [0, 1, 2, 3]
    assert [h.value for h in history] == sorted(h.value for h in history)
    data = client.get_run(active.info.run_id).data
    assert data.tags["energy.status"] == "completed"
    assert "energy.cost" not in data.metrics and "energy.currency" not in data.params


def test_the_report_is_attached_from_a_path_or_from_greenai_report(tmp_path) -> None:
    pytest.importorskip("plotly")
    pytest.importorskip("jinja2")
    import greenai

    result = tracked(tmp_path).result
    assert result is not None
    written = greenai.report(result, output=tmp_path / "mine.html")
    with mlflow.start_run() as active:
        by_path = log_run(result, report=written)
        by_function = log_run(result, report=greenai.report, prefix="again")
    assert by_path.artifact == "greenai/mine.html"
    assert by_function.artifact == f"again/greenai-report-{result.run_id[:8]}.html"
    client = MlflowClient()
    for folder, name in (("greenai", "mine.html"), ("again", f"greenai-report-{result.run_id[:8]}.html")):
        (artifact,) = client.list_artifacts(active.info.run_id, folder)
        assert artifact.path == f"{folder}/{name}" and artifact.file_size > 1000
    local = client.download_artifacts(active.info.run_id, by_function.artifact, str(tmp_path / "down"))
    assert result.run_id[:8] in Path(local).read_text()


def test_errors_name_what_to_do(tmp_path) -> None:
    result = tracked(tmp_path).result
    assert result is not None
    with pytest.raises(GreenAIError, match="mlflow.start_run"):
        log_run(result)  # no active run
    with mlflow.start_run():
        with pytest.raises(GreenAIError, match="greenai.report"):
            log_run(result, report=tmp_path / "missing.html")
    with pytest.raises(TypeError, match="RunResult or Tracker"):
        log_run("3fa2c1")  # type: ignore[arg-type]


def test_an_explicit_mlflow_run_id_needs_no_active_run(tmp_path) -> None:
    result = tracked(tmp_path).result
    assert result is not None
    with mlflow.start_run() as active:
        pass
    log_run(result, mlflow_run_id=active.info.run_id)
    assert MlflowClient().get_run(active.info.run_id).data.tags["greenai.run_id"] == result.run_id


def test_a_param_logged_with_another_value_is_kept_with_a_warning(tmp_path, caplog) -> None:
    first = tracked(tmp_path / "a", pue=1.1).result
    second = tracked(tmp_path / "b", pue=1.5).result
    assert first is not None and second is not None
    with mlflow.start_run() as active, caplog.at_level(logging.WARNING, logger="greenai"):
        log_run(first)
        logged = log_run(second)  # metrics and tags are updated; the param stays
    assert "greenai.pue" not in logged.params
    assert any("greenai.pue" in r.getMessage() for r in caplog.records)
    data = MlflowClient().get_run(active.info.run_id).data
    assert data.params["greenai.pue"] == "1.1"
    assert data.tags["greenai.run_id"] == second.run_id


def test_only_rank_zero_logs(tmp_path, monkeypatch) -> None:
    result = tracked(tmp_path).result
    assert result is not None
    monkeypatch.setenv("RANK", "1")
    with mlflow.start_run() as active:
        logged = log_run(result)
    assert logged.mlflow_run_id is None and logged.metrics == {}
    assert not any(k.startswith("greenai") for k in MlflowClient().get_run(active.info.run_id).data.metrics)
