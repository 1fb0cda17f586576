"""PyTorch Lightning: the digits CNN trained by a Trainer, tracked by greenai's callback.

    python examples/lightning_digits.py                         # 5 epochs
    python examples/lightning_digits.py --budget-j 30           # a stop budget: checkpoint, then fit ends
    python examples/lightning_digits.py --epochs 1 --limit 256 --out /tmp/lightning-digits

The callback tracks `fit` (phases train, validation, sanity_check; samples, steps, epochs),
logs the energy and the forecast to the trainer's loggers (a CSVLogger here) and, with a stop
budget, saves a checkpoint and ends `fit` through `trainer.should_stop`; `test` is its own run.
It uses the unified `lightning` package if installed, else `pytorch_lightning`: the callback is
the same for both. Needs `pip install 'greenai[demo,lightning]'` (pytorch-lightning) or
`pip install 'greenai[demo]' lightning`.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from greenai import Budget
from greenai.demo.digits import load_digits_data, make_cnn
from greenai.integrations.lightning import GreenAICallback
from greenai.units import J_PER_KWH

try:  # `import lightning as L` in Lightning's own docs; L.Trainer is lightning.pytorch.Trainer
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger
except ImportError:
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger


class DigitsModule(pl.LightningModule):
    def __init__(self, lr: float = 2e-3) -> None:
        super().__init__()
        self.net = make_cnn()
        self.lr = lr
        self.loss_fn = nn.CrossEntropyLoss()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self.net(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(dim=1) == y).float().mean())

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test_acc", (self.net(x).argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    ap.add_argument("--budget-j", type=float, default=None, help="stop fit once it has used this many joules")
    ap.add_argument("--out", type=Path, default=None, help="logs and checkpoints (default: a temporary directory)")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    data = load_digits_data()
    train = TensorDataset(data.x_train[: args.limit], data.y_train[: args.limit])
    test = TensorDataset(data.x_test, data.y_test)
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test, batch_size=256)

    budgets = [Budget(energy_kwh=args.budget_j / J_PER_KWH, action="stop")] if args.budget_j else []
    energy = GreenAICallback(name="digits", budgets=budgets, log_every_n_steps=10)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        csv_logger = CSVLogger(out, name="digits")
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            callbacks=[energy],
            logger=csv_logger,
            default_root_dir=out,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=10,
        )
        model = DigitsModule()
        trainer.fit(model, train_loader, test_loader)
        fit = energy.result
        assert fit is not None
        print(f"Trainer: {pl.__name__}.Trainer")
        print(f"fit: {fit.status}, {trainer.global_step} steps, {fit.energy_j:.1f} J ({fit.snapshot.provenance.value})")
        if fit.stop_reason:
            print(f"  stopped: {fit.stop_reason}")
            print(f"  checkpoint: {energy.checkpoint_path}")
        for phase in ("train", "validation", "sanity_check"):
            print(f"  {phase:<13}{fit.phase_energy_j(phase):8.2f} J")
        per_sample = fit.energy_per("samples")
        if per_sample is not None:
            print(f"  {per_sample * 1000:.2f} mJ per training sample")
        if energy.forecast is not None:
            print(f"  {energy.forecast.summary()}")

        trainer.test(model, test_loader, verbose=False)
        tested = energy.result
        assert tested is not None
        print(f"test: {tested.energy_j:.2f} J, test phase {tested.phase_energy_j('test'):.2f} J")

        csv_logger.save()
        metrics = Path(csv_logger.log_dir) / "metrics.csv"
        with metrics.open() as f:
            columns = sorted({k for row in csv.DictReader(f) for k, v in row.items() if v and k.startswith("greenai/")})
        print(f"logged to {metrics.name}: {', '.join(columns)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
