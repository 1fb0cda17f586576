"""MLflow: the digits CNN trained under greenai, its energy, carbon, cost, provenance and phases
logged into an MLflow run, with the run's HTML report attached as an artifact.

    python examples/mlflow_digits.py                              # a file store in a temporary directory
    python examples/mlflow_digits.py --tracking-uri sqlite:///mlflow.db --experiment digits
    python examples/mlflow_digits.py --epochs 1 --no-report

Metrics (`greenai.energy_j`, `greenai.carbon_g`, `greenai.phase.forward.energy_j`, ...) are
logged at each epoch from the live run and at the end from its result; params say what the
figures were computed with (PUE, carbon source, currency), tags what they are (provenance,
status, the greenai run id). Needs `pip install 'greenai[demo,mlflow,report]'`.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import mlflow
from mlflow.tracking import MlflowClient

import greenai
from greenai.demo.digits import train_digits
from greenai.integrations.mlflow import log_run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--tracking-uri", default=None, help="default: a file store in a temporary directory")
    ap.add_argument("--experiment", default="greenai-digits")
    ap.add_argument("--no-report", action="store_true", help="do not attach the HTML report")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.tracking_uri is None:
            # MLflow 3 keeps its file store in maintenance mode and asks for this to use it
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(args.tracking_uri or f"file://{tmp}/mlruns")
        mlflow.set_experiment(args.experiment)
        with mlflow.start_run(run_name="digits-cnn") as active:
            mlflow.log_params({"epochs": args.epochs, "model": "digits CNN"})
            with greenai.track("digits-mlflow", tags={"model": "cnn"}) as run:

                def each_epoch(epoch: int, accuracy: float) -> None:
                    mlflow.log_metric("test_accuracy", accuracy, step=epoch)
                    log_run(run, step=epoch)  # the live run's figures so far

                train_digits(run, epochs=args.epochs, on_epoch=each_epoch)
            assert run.result is not None
            logged = log_run(run.result, step=args.epochs, report=None if args.no_report else greenai.report)

        stored = MlflowClient().get_run(active.info.run_id).data
        print(f"MLflow run {active.info.run_id[:8]} ({mlflow.get_tracking_uri()})")
        print(f"  {len(logged.metrics)} greenai metrics, e.g.")
        for key in (
            "greenai.energy_j",
            "greenai.carbon_g",
            "greenai.phase.forward.energy_j",
            "greenai.energy_per.samples_j",
        ):
            print(f"    {key} = {stored.metrics[key]:.4g}")
        print(
            "  params: "
            + ", ".join(f"{k}={v[:40]}" for k, v in sorted(stored.params.items()) if k.startswith("greenai."))
        )
        print("  tags:   " + ", ".join(f"{k}={stored.tags[k]}" for k in ("greenai.provenance", "greenai.status")))
        if logged.artifact:
            print(f"  artifact: {logged.artifact}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
