"""The digits CNN trained with Ray Train's TorchTrainer on 2 workers (gloo on CPU), greenai in
each worker, one job added up in the driver.

    python examples/ray_train_digits.py                 # a local Ray cluster on this machine
    python examples/ray_train_digits.py --epochs 1 --limit 256

Each worker tracks its own run (`distributed=job.join()`); the driver's `RayJob` collects what
they publish and writes the job, each physical device counted once, to the driver's ledger.
Needs `pip install 'greenai[distributed,demo]'` (torch, scikit-learn, ray[train]).
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any


def train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: DDP on the digits, tracked, its all-reduce as a phase."""
    import torch
    from torch import nn

    import greenai
    from greenai.demo.digits import accuracy, load_digits_data, make_cnn
    from greenai.distributed import instrument_ddp

    with greenai.track("ray-digits", distributed=config["greenai"]) as run:
        import ray.train
        import ray.train.torch

        torch.manual_seed(0)
        data = load_digits_data()
        context = ray.train.get_context()
        rank, world = context.get_world_rank(), context.get_world_size()
        x = data.x_train[: config["limit"]][rank::world]  # this worker's shard
        y = data.y_train[: config["limit"]][rank::world]
        model = ray.train.torch.prepare_model(make_cnn())  # DDP over Ray Train's process group
        instrument_ddp(model, run)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        loss_fn = nn.CrossEntropyLoss()
        batch = config["batch_size"]
        for _epoch in range(config["epochs"]):
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(_epoch))
            for start in range(0, len(x) - batch + 1, batch):  # the same number of steps on every worker
                idx = order[start : start + batch]
                with run.phase("forward"):
                    loss = loss_fn(model(x[idx]), y[idx])
                with run.phase("backward"):
                    opt.zero_grad()
                    loss.backward()
                with run.phase("optimizer_step"):
                    opt.step()
                run.count("samples", len(idx))
                run.count("steps")
            with run.phase("evaluation"):
                acc = accuracy(model, data.x_test, data.y_test)
        ray.train.report({"accuracy": acc})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ledger", default=None, help="the driver's ledger (default: GREENAI_LEDGER or the usual one)")
    args = ap.parse_args(argv)

    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from greenai.distributed import format_job
    from greenai.distributed.ray import RayJob

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=args.workers + 1, include_dashboard=False, logging_level="WARNING")
    try:
        job = RayJob("ray-digits", world_size=args.workers, ledger=args.ledger)
        config = {
            "greenai": job.join(),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "limit": args.limit,
        }
        with tempfile.TemporaryDirectory() as storage:
            trainer = TorchTrainer(
                train_loop,
                train_loop_config=config,
                scaling_config=ScalingConfig(num_workers=args.workers, resources_per_worker={"CPU": 1}),
                run_config=RunConfig(storage_path=storage, name="greenai-digits"),
            )
            result = trainer.fit()
        record = job.finish()
    finally:
        if started_here:
            ray.shutdown()
    if result.metrics:
        print(f"test accuracy {result.metrics['accuracy']:.3f}")
    print(format_job(record))
    return 0 if record.status == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
