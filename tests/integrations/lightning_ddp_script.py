"""A tiny Lightning fit on 2 CPU processes (strategy "ddp"), tracked by GreenAICallback with a
stop budget; run by tests/integrations/test_lightning_ddp.py.

    python lightning_ddp_script.py DIR --budget-j J

Lightning's "ddp" strategy re-launches this script for rank 1 (its subprocess launcher), so it
must run from a file. Each rank writes DIR/result-<rank>.json once `fit` has returned: its
step, what the callback saw and decided, and which `greenai/` metrics reached its loggers (a
CSVLogger in DIR/logs, written by rank 0 only as Lightning's loggers are, and a logger of this
script's that records every call on every rank, so that the callback's own rank-0 gate is
what is seen).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger, Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from greenai import Budget
from greenai.integrations.lightning import PREFIX, GreenAICallback
from greenai.units import J_PER_KWH


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(16, 4)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


class Recording(Logger):
    """Every `log_metrics` call this process's trainer makes (no rank-zero gate of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.keys |= set(metrics)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--budget-j", type=float, required=True)
    ap.add_argument("--max-epochs", type=int, default=1000)  # the budget stops it long before
    args = ap.parse_args()
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(256, 16), torch.randint(0, 4, (256,)))
    energy = GreenAICallback(
        name="ddp", budgets=[Budget(energy_kwh=args.budget_j / J_PER_KWH, action="stop")], log_every_n_steps=5
    )
    recording = Recording()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=args.max_epochs,
        logger=[CSVLogger(args.dir / "logs", name="csv"), recording],
        callbacks=[energy],
        default_root_dir=args.dir,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=8))
    result = energy.result
    assert result is not None
    out = {
        "rank": trainer.global_rank,
        "global_step": trainer.global_step,
        "should_stop": trainer.should_stop,
        "stopped_by_own_budget": energy.stopped_by is not None,
        "checkpoint_path": str(energy.checkpoint_path) if energy.checkpoint_path else None,
        "run_id": result.run_id,
        "status": result.status,
        "energy_j": result.energy_j,
        "job_id": result.job.job_id if result.job is not None else None,
        "greenai_metrics": sorted(k for k in recording.keys if k.startswith(PREFIX)),
        "other_metrics": sorted(k for k in recording.keys if not k.startswith(PREFIX)),
    }
    (args.dir / f"result-{trainer.global_rank}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
