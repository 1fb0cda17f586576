"""The digits CNN trained with DDP on 2 processes (gloo on CPU), every rank tracked, one job.

    torchrun --nproc-per-node 2 examples/ddp_digits.py
    torchrun --nproc-per-node 2 examples/ddp_digits.py --epochs 1 --limit 256
    greenai run -- torchrun --nproc-per-node 2 examples/ddp_digits.py   # also one run of the whole tree

Each rank's `greenai.track` joins the launch's job by itself (RANK/WORLD_SIZE are set): node-wide
devices are read by rank 0 alone, each rank's own process tree by itself, the gradients'
all-reduce is the `communication` phase (instrument_ddp), and rank 0 prints the job's table.
Needs `pip install 'greenai[demo]'` (torch, scikit-learn).
"""

from __future__ import annotations

import argparse

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import greenai
from greenai.demo.digits import accuracy, load_digits_data, make_cnn
from greenai.distributed import format_job, instrument_ddp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    args = ap.parse_args(argv)

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    with greenai.track("ddp-digits") as run:  # joins the job: launched as a rank
        with run.phase("data_loading"):
            data = load_digits_data()
            x = data.x_train[: args.limit][rank::world]  # this rank's shard
            y = data.y_train[: args.limit][rank::world]
        model = DistributedDataParallel(make_cnn())
        instrument_ddp(model, run)  # the all-reduce: the `communication` phase, with bytes
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        loss_fn = nn.CrossEntropyLoss()
        steps = len(x) // args.batch_size  # the same on every rank (shards differ by one at most)
        for epoch in range(args.epochs):
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
            for step in range(steps):
                idx = order[step * args.batch_size : (step + 1) * args.batch_size]
                with run.phase("forward"):
                    loss = loss_fn(model(x[idx]), y[idx])
                with run.phase("backward"):
                    opt.zero_grad()
                    loss.backward()  # DDP all-reduces the gradients as their buckets fill
                with run.phase("optimizer_step"):
                    opt.step()
                run.count("samples", len(idx))
                run.count("steps")
            with run.phase("evaluation"):
                acc = accuracy(model, data.x_test, data.y_test)
            if rank == 0:
                print(f"epoch {epoch + 1}: test accuracy {acc:.3f}", flush=True)
    result = run.result
    assert result is not None
    print(
        f"rank {rank}: {result.energy_j:.1f} J ({result.snapshot.provenance.value}), "
        f"{result.phase_duration_s('communication') if result.snapshot.counters.get('comm.calls') else 0:.2f} s "
        "all-reducing",
        flush=True,
    )
    dist.barrier()
    if result.job is not None:  # rank 0 wrote the job
        print(format_job(result.job), flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
