"""GreenAICallback on real Lightning fits (CPU, offline), under both packages' Trainers
(`lightning.pytorch` and `pytorch_lightning`, each skipped when not installed): phases and counts
in the ledger, greenai's figures in Lightning's loggers, a stop budget ending fit cleanly after a
checkpoint. A few tests run under one package only (the first installed of FLAVOURS)."""

from __future__ import annotations

import csv
import functools
import importlib
import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest

from greenai.integrations import is_lightning_available

if not is_lightning_available():
    pytest.skip("needs torch and lightning or pytorch-lightning", allow_module_level=True)

import torch  # noqa: E402
from tests.integrations.helpers import calls, cpu, joules, paths, sim_config, stored, stored_runs  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from greenai.integrations.lightning import GreenAICallback  # noqa: E402
from greenai.tracking.budget import Budget, BudgetBreach  # noqa: E402
from greenai.tracking.tracker import Tracker  # noqa: E402

N, BATCH = 64, 8  # 8 batches an epoch
FLAVOURS = ("pytorch_lightning", "lightning.pytorch")
INSTALLED = [f for f in FLAVOURS if importlib.util.find_spec(f.split(".")[0]) is not None]
EVERY_FLAVOUR = pytest.mark.parametrize(
    "pl",
    [pytest.param(f, marks=pytest.mark.skipif(f not in INSTALLED, reason=f"{f} is not installed")) for f in FLAVOURS],
    indirect=True,
)


@pytest.fixture
def pl(request: pytest.FixtureRequest) -> ModuleType:
    """The Lightning package a test's Trainer and LightningModule come from."""
    return importlib.import_module(getattr(request, "param", INSTALLED[0]))


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Tiny models on a shared 2-core machine."""


@functools.cache
def tiny_class(pl: ModuleType) -> type:
    """The test's LightningModule, a subclass of `pl`'s (a Trainer refuses the other package's)."""

    class Tiny(pl.LightningModule):
        def __init__(self, fail_at_step: int | None = None, sleep_s: float = 0.0) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
            self.fail_at_step = fail_at_step
            self.sleep_s = sleep_s

        def training_step(self, batch, batch_idx):
            if self.fail_at_step is not None and self.global_step == self.fail_at_step:
                raise RuntimeError("diverged")
            time.sleep(self.sleep_s)
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def test_step(self, batch, batch_idx):
            x, y = batch
            self.log("test_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Tiny


def tiny(pl: ModuleType, **kw):
    return tiny_class(pl)(**kw)


def loader(n: int = N) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 16, generator=g), torch.randint(0, 4, (n,), generator=g)), BATCH)


def trainer(pl: ModuleType, tmp_path: Path, callback: GreenAICallback, **kw):
    settings = dict(
        max_epochs=2,
        callbacks=[callback],
        logger=importlib.import_module(f"{pl.__name__}.loggers").CSVLogger(tmp_path / "logs", name="tiny"),
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=2,
        num_sanity_val_steps=1,
    )
    settings.update(kw)
    return pl.Trainer(**settings)


def logged_columns(t) -> set[str]:
    t.logger.save()
    with (Path(t.logger.log_dir) / "metrics.csv").open() as f:
        return {k for row in csv.DictReader(f) for k, v in row.items() if v}


@EVERY_FLAVOUR
def test_the_callback_is_a_callback_of_the_trainers_own_package(pl: ModuleType) -> None:
    callback = GreenAICallback(store=False)
    assert isinstance(callback, pl.Callback)
    t = pl.Trainer(callbacks=callback, logger=False, enable_progress_bar=False)  # alone, not in a list
    assert callback in t.callbacks


@EVERY_FLAVOUR
def test_fit_and_test_are_runs_with_phases_counts_and_figures_in_the_loggers(pl, tmp_path) -> None:
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()], forecast_every_s=0.0)
    t = trainer(pl, tmp_path, callback)
    model = tiny(pl, sleep_s=0.04)  # long enough for a forecast (a few sampler windows) before the end
    t.fit(model, loader(), loader(16))
    fit = callback.result
    assert fit is not None and fit.name == "lightning-fit" and fit.status == "completed"
    record = stored(tmp_path, fit.run_id)
    assert {"train", "validation", "sanity_check"} <= paths(record)
    assert (calls(record, "train"), calls(record, "validation"), calls(record, "sanity_check")) == (16, 2, 1)
    assert record.snapshot.counters == {"samples": 2 * N, "steps": t.global_step, "epochs": 2}
    assert t.global_step == 16
    assert fit.forecast is not None and fit.forecast.planned_steps == 16  # from estimated_stepping_batches
    columns = logged_columns(t)
    assert {"greenai/energy_j", "greenai/carbon_g", "greenai/energy_per_sample_j", "greenai/epoch_energy_j"} <= columns
    assert {"greenai/forecast_energy_j", "greenai/forecast_energy_low_j", "greenai/forecast_progress"} <= columns

    t.test(model, loader(16), verbose=False)
    tested = callback.result
    assert tested is not None and tested.name == "lightning-test" and tested.run_id != fit.run_id
    assert calls(stored(tmp_path, tested.run_id), "test") == 1
    assert [r.name for r in callback.results] == ["lightning-fit", "lightning-test"]


@EVERY_FLAVOUR
def test_a_stop_budget_saves_a_checkpoint_and_ends_fit_cleanly(pl, tmp_path) -> None:
    order: list[str] = []

    def on_budget(run: Tracker, breach: BudgetBreach) -> None:
        order.append("on_budget")

    budget = Budget(energy_kwh=joules(30.0), action="stop")  # 30 ms at 1 kW
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu(1000.0)], budgets=[budget], on_budget=on_budget)
    t = trainer(pl, tmp_path, callback, max_epochs=50, num_sanity_val_steps=0)
    t.fit(tiny(pl, sleep_s=0.005), loader(), loader(16))  # returns: no exception
    result = callback.result
    assert result is not None
    assert result.status == "interrupted" and result.stopped_by is not None
    assert callback.stopped_by == result.stopped_by and order == ["on_budget"]
    assert t.should_stop and t.global_step < 50 * N // BATCH
    record = stored(tmp_path, result.run_id)
    assert record.status == "interrupted"
    assert record.snapshot.counters["greenai.budget.stop.energy_kwh"] == 1.0
    assert record.snapshot.counters["steps"] == t.global_step
    path = callback.checkpoint_path
    assert path is not None and path.exists() and path.name.startswith("greenai-budget-stop-step=")
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["global_step"] == t.global_step and "state_dict" in checkpoint


def test_with_your_own_run_every_entry_point_goes_into_it_and_it_stays_yours(pl, tmp_path) -> None:
    with pytest.raises(ValueError, match="greenai.track"):
        GreenAICallback(run=Tracker("x", store=False), budgets=[])
    with Tracker("mine", config=sim_config(tmp_path), meters=[cpu()]) as run:
        callback = GreenAICallback(run)
        t = trainer(pl, tmp_path, callback, max_epochs=1)
        model = tiny(pl)
        t.fit(model, loader(), loader(16))
        t.test(model, loader(16), verbose=False)
        assert run.result is None and callback.result is None  # not ended by the callback
        assert run.counters()["steps"] == 8
    record = stored(tmp_path, run.run_id)
    assert record.status == "completed"
    assert {"train", "validation", "sanity_check", "test"} <= paths(record)
    assert [r.start.name for r in stored_runs(tmp_path)] == ["mine"]


@EVERY_FLAVOUR
def test_an_exception_in_training_fails_the_run_and_leaves_no_phase_open(pl, tmp_path) -> None:
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()])
    t = trainer(pl, tmp_path, callback)
    with pytest.raises(RuntimeError, match="diverged"):
        t.fit(tiny(pl, fail_at_step=3), loader(), loader(16))
    result = callback.result
    assert result is not None and result.status == "failed"
    record = stored(tmp_path, result.run_id)
    assert record.status == "failed"
    assert paths(record) <= {"(no phase)", "train", "sanity_check"}  # nothing nested in an unclosed phase
    assert callback.run is None


def test_steps_are_optimizer_steps_when_gradients_accumulate(pl, tmp_path) -> None:
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()])
    t = trainer(pl, tmp_path, callback, max_epochs=1, accumulate_grad_batches=4, num_sanity_val_steps=0)
    t.fit(tiny(pl), loader())
    result = callback.result
    assert result is not None
    assert t.global_step == 2
    assert result.snapshot.counters == {"samples": N, "steps": 2, "epochs": 1}
    assert calls(stored(tmp_path, result.run_id), "train") == 8  # every batch
