"""One rank of the distributed tests, launched by torchrun (gloo on CPU).

    torchrun --nproc-per-node 2 ddp_worker.py MODE DIR

MODE `node`: track with the fake powercap tree in $GREENAI_RAPL_ROOT; say `ready-<rank>` in DIR once
tracking, train a few DDP steps, wait for DIR/stop (the test advances the counters in between).
MODE `train`: the digits CNN under DDP for `--steps` steps (CPU model estimates).
MODE `kill`: as `train`, but rank 1 kills itself with SIGKILL after a few steps.
Each rank writes its result as JSON to DIR/result-<rank>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import greenai
from greenai.distributed import Join, instrument_ddp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["node", "train", "kill"])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    join = Join(aggregation_timeout_s=args.timeout, publish_interval_s=0.2)
    # tracking starts first, so that each rank's run holds all its work (set-up included), as
    # a `greenai run` around the whole launch does
    with greenai.track(f"ddp-{args.mode}", distributed=join, sample_hz=20) as run:
        import torch
        import torch.distributed as dist
        from torch import nn
        from torch.nn.parallel import DistributedDataParallel

        from greenai.demo.digits import load_digits_data, make_cnn

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        torch.manual_seed(0)
        data = load_digits_data()
        model = DistributedDataParallel(make_cnn())
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()
        instrument_ddp(model, run)
        (args.dir / f"ready-{rank}").write_text(str(os.getpid()))
        for step in range(args.steps):
            idx = torch.arange(step * 16, step * 16 + 16) % len(data.x_train)
            with run.phase("step"):
                loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            run.count("steps")
            if args.mode == "kill" and rank == 1 and step == args.steps // 2:
                time.sleep(1.0)  # a flush or two of its totals first
                os.kill(os.getpid(), signal.SIGKILL)
        if args.mode == "node":
            deadline = time.monotonic() + 60
            while not (args.dir / "stop").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
    r = run.result
    assert r is not None
    out = {
        "rank": rank,
        "run_id": r.run_id,
        "energy_j": r.energy_j,
        "devices": {d.device: d.energy_j for d in r.snapshot.devices},
        "job_id": run.membership.job_id if run.membership else None,
        "job_status": r.job.status if r.job else None,
        "notes": list(r.notes),
    }
    (args.dir / f"result-{rank}.json").write_text(json.dumps(out))
    if r.job is not None:
        print(greenai.distributed.format_job(r.job), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
