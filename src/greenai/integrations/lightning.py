"""A PyTorch Lightning callback: every `fit`, `validate`, `test` and `predict` tracked, with phases,
counts, the forecast in Lightning's loggers, and stop budgets that end `fit` cleanly.

    import lightning as L                     # or: import pytorch_lightning as pl
    from greenai import Budget
    from greenai.integrations.lightning import GreenAICallback

    energy = GreenAICallback(budgets=[Budget(energy_kwh=0.2, action="stop")])
    trainer = L.Trainer(max_epochs=10, callbacks=[energy])
    trainer.fit(model, train_loader, val_loader)
    print(energy.result.energy_j, energy.result.stop_reason, energy.checkpoint_path)

Runs: with no `run`, the callback starts a run of its own at each entry point's `setup` (named
`<name>-fit`, `<name>-test`, ...; keyword arguments such as `budgets`, `on_budget`, `tags`,
`config` go to its Tracker) and ends it at `teardown` (`failed` if Lightning reports an
exception, `interrupted` on Ctrl-C or a budget stop); `fit` plans the run's steps from
`trainer.estimated_stepping_batches` so the forecast has a target. With `run=` (a started
Tracker) every entry point goes into that run and the callback never starts or ends it.

Phases: `train` (each training batch: forward, backward, optimizer step), `validation`
(modelled as a periodic phase by the forecast), `sanity_check`, `test`, `predict`.
Counts: `samples` (dim 0 of the batch's first tensor, every training batch), `steps`
(optimizer steps, `trainer.global_step`), `epochs`.

Budgets: the `steps` count after a batch whose optimizer step ran is a safe point (outside
any phase, after the step). A `stop` budget fires there: `on_budget` is called, then the
callback saves a checkpoint (`checkpoint=True`: `greenai-budget-stop-step=N.ckpt` in the
ModelCheckpoint's directory, else `<default_root_dir>/checkpoints`; a path; or False) and sets
`trainer.should_stop`; `fit` returns normally (Lightning may still run the validation that
an early stop allows, and `min_epochs`/`min_steps` keep it going, as for EarlyStopping). On
several processes each rank's run joins one greenai job (greenai.distributed: each device
counted once), the decision is reduced over the ranks (any rank's stop stops all; a rank
stopped by another's budget ends its run `interrupted`, its `stopped_by` None) and every rank
saves, as `Trainer.save_checkpoint` requires; only global rank 0 logs.

Logged to every logger in `trainer.loggers` every `log_every_n_steps` optimizer steps
(default: the trainer's) and at each epoch's end: `greenai/energy_j`, `greenai/carbon_g`, `greenai/energy_per_sample_j`
and, once the run has a forecast (computed at most every `forecast_every_s`),
`greenai/forecast_energy_j` with its `_low_j`/`_high_j` band, `greenai/forecast_progress`,
`greenai/forecast_duration_s`, `greenai/forecast_carbon_g`; at each epoch's end also
`greenai/epoch_energy_j` and `greenai/epoch_energy_per_sample_j` (neither for an epoch no
sampler reading fell in: 0 J would be false).

Both Lightning packages: the unified `lightning` (`lightning.pytorch.Trainer`) and
`pytorch_lightning` ship separate copies of the same classes, and each Trainer wants its own
`Callback`. GreenAICallback subclasses the `Callback` of every one installed, so it is an
instance of either; it uses nothing of Lightning's but the trainer it is handed, so it never
mixes the two.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenai.errors import BudgetExceeded
from greenai.integrations import unavailable
from greenai.integrations._common import OpenPhases, batch_size_of, run_settings
from greenai.ledger.records import RunStatus
from greenai.tracking.budget import BudgetBreach
from greenai.tracking.forecast import Forecast
from greenai.tracking.result import RunResult
from greenai.tracking.tracker import Tracker

if TYPE_CHECKING:  # the type checker reads one package's API; the other's is the same
    import pytorch_lightning as pl

log = logging.getLogger("greenai.integrations")

FLAVOURS = ("lightning.pytorch", "pytorch_lightning")  # the unified package's first, as in its docs


def _callback_classes() -> tuple[type, ...]:
    """The `Callback` class of each Lightning package that imports here."""
    classes, errors = [], []
    for flavour in FLAVOURS:
        try:
            classes.append(importlib.import_module(flavour).Callback)
        except ImportError as e:
            errors.append(e)
        except Exception as e:  # installed but broken (a version mismatch): the other may still work
            log.warning("greenai: %s could not be imported (%s: %s); not used", flavour, type(e).__name__, e)
            errors.append(ImportError(f"{flavour} failed to import: {e}"))
    if classes:
        return tuple(classes)
    tops = {flavour.split(".")[0] for flavour in FLAVOURS}
    other = [e for e in errors if (e.name or "").split(".")[0] not in tops]  # installed, but it needs more
    raise unavailable(
        "lightning", other[0] if other else ImportError("neither lightning nor pytorch_lightning is installed")
    ) from None


CALLBACK_CLASSES = _callback_classes()

PREFIX = "greenai/"
VALIDATION = "validation"
CHECKPOINT_NAME = "greenai-budget-stop-step={step}.ckpt"


class GreenAICallback(*CALLBACK_CLASSES):  # type: ignore[misc]  # mypy wants bases it can see
    """Tracks Lightning's entry points; a `Callback` of each Lightning package installed (see
    the module's docstring)."""

    def __init__(
        self,
        run: Tracker | None = None,
        *,
        name: str = "lightning",
        log_every_n_steps: int | None = None,
        forecast_every_s: float = 5.0,
        checkpoint: bool | str | Path = True,
        **tracker_kwargs: Any,
    ) -> None:
        self._tracker_kwargs = run_settings(run, tracker_kwargs, VALIDATION)
        self.name = name
        self.log_every_n_steps = log_every_n_steps
        self.forecast_every_s = forecast_every_s
        self.checkpoint = checkpoint
        self._given = run
        self.run: Tracker | None = run
        self.results: list[RunResult] = []  # the runs this callback started and ended, in order
        self.forecast: Forecast | None = None  # the latest forecast computed
        self.stopped_by: BudgetBreach | None = None
        self.checkpoint_path: Path | None = None  # saved before a budget stop
        self._phases: OpenPhases | None = OpenPhases(run) if run is not None else None
        self._last_step = 0
        self._last_logged_step = 0
        self._forecast_at = float("-inf")
        self._epoch_energy_j = 0.0
        self._epoch_samples = 0.0
        self._samples = 0.0
        self._budget_stopped = False  # this entry point was stopped by a budget, this rank's or another's

    @property
    def result(self) -> RunResult | None:
        """The last run this callback ended (None with `run=`: that run is yours to end)."""
        return self.results[-1] if self.results else None

    # -- the run's life -----------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._given is None:
            stage = getattr(stage, "value", stage)  # a TrainerFn ("fit") or its value
            run = Tracker(f"{self.name}-{stage}", **self._tracker_kwargs)
            run.start()
            self.run, self._phases = run, OpenPhases(run)
            self._samples = 0.0
        self._last_step = self._last_logged_step = trainer.global_step
        self._budget_stopped = False

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # a rank stopped by another rank's budget was cut short as much as the rank whose budget fired
        self._end(RunStatus.INTERRUPTED if self._budget_stopped else RunStatus.COMPLETED)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        interrupted = isinstance(exception, (KeyboardInterrupt, BudgetExceeded))
        self._end(RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED)

    def _end(self, status: str) -> None:
        if self._phases is not None:
            self._phases.close_all()
        if self._given is None and self.run is not None:
            self.results.append(self.run.stop(status))
            self.run, self._phases = None, None

    # -- training -----------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.run is None:
            return
        planned = "planned_steps" in self._tracker_kwargs or "planned_epochs" in self._tracker_kwargs
        if self._given is None and not planned:
            try:
                steps = trainer.estimated_stepping_batches
            except Exception:  # e.g. accumulate_grad_batches varying by epoch: no plan
                steps = float("inf")
            if steps != float("inf") and steps > 0:
                self.run.plan(steps=int(steps))
        self._last_step = self._last_logged_step = trainer.global_step
        self._epoch_energy_j = self._energy_j()
        self._epoch_samples = self._samples

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._phases is not None:
            self._phases.enter("train")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        run, phases = self.run, self._phases
        if run is None or phases is None:
            return
        if type(batch) in (list, tuple) and batch and hasattr(batch[0], "shape") and len(batch[0].shape):
            n = batch[0].shape[0]  # the usual (inputs, targets): no search
        else:
            n = batch_size_of(batch)
        if n:
            run.count("samples", n)  # inside the train phase: not a safe point
            self._samples += n
        phases.exit("train")
        step = trainer.global_step
        if step == self._last_step:
            return  # accumulating gradients: no optimizer step, no safe point
        breach = None
        try:
            run.count("steps", step - self._last_step)  # after the optimizer step: a safe point
        except BudgetExceeded as e:
            breach = e.breach
        self._last_step = step
        if breach is not None or trainer.world_size > 1:
            self._after_safe_point(trainer, breach)
        every = self.log_every_n_steps or getattr(trainer, "log_every_n_steps", 0) or 50
        if step - self._last_logged_step >= every:
            self._last_logged_step = step
            self._log_progress(trainer, run)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run = self.run
        if run is None:
            return
        breach = None
        try:
            run.count("epochs")
        except BudgetExceeded as e:
            breach = e.breach
        energy = self._energy_j()
        epoch_j, samples = energy - self._epoch_energy_j, self._samples - self._epoch_samples
        self._epoch_energy_j, self._epoch_samples = energy, self._samples
        if trainer.is_global_zero and trainer.loggers:
            metrics = self._progress(run)
            if epoch_j > 0:  # 0 J: an epoch shorter than the sampler saw; its figures would be false
                metrics[f"{PREFIX}epoch_energy_j"] = epoch_j
                if samples > 0:
                    metrics[f"{PREFIX}epoch_energy_per_sample_j"] = epoch_j / samples
            self._log(trainer, metrics)
        self._after_safe_point(trainer, breach)

    # -- evaluation ---------------------------------------------------------------------------
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._phases is not None:
            self._phases.enter("sanity_check" if trainer.sanity_checking else VALIDATION)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._phases is not None:
            self._phases.exit("sanity_check" if trainer.sanity_checking else VALIDATION)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._phases is not None:
            self._phases.enter("test")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._phases is not None:
            self._phases.exit("test")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._phases is not None:
            self._phases.enter("predict")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._phases is not None:
            self._phases.exit("predict")

    # -- budgets ------------------------------------------------------------------------------
    def _after_safe_point(self, trainer: pl.Trainer, breach: BudgetBreach | None) -> None:
        """Every rank decides together (an all-reduce of one flag on several processes, as
        EarlyStopping does), then every rank saves and stops."""
        stop = breach is not None
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.reduce_boolean_decision(stop, all=False))
        if not stop or trainer.should_stop:
            return
        if breach is not None:
            self.stopped_by = breach
        self._budget_stopped = True
        self.checkpoint_path = self._save_checkpoint(trainer)
        trainer.should_stop = True
        if trainer.is_global_zero:
            reason = breach.message() if breach is not None else "another rank's budget"
            log.warning("greenai: stopping fit at step %d: %s", trainer.global_step, reason)

    def _save_checkpoint(self, trainer: pl.Trainer) -> Path | None:
        if self.checkpoint is False:
            return None
        if self.checkpoint is True:
            ckpt = trainer.checkpoint_callback
            folder = getattr(ckpt, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
            path = Path(folder) / CHECKPOINT_NAME.format(step=trainer.global_step)
        else:
            path = Path(self.checkpoint)
        try:
            trainer.save_checkpoint(path)
        except Exception:  # the stop still happens; the tracker never breaks the user's program
            log.exception("greenai: saving the checkpoint before the budget stop failed")
            return None
        return path

    # -- logging ------------------------------------------------------------------------------
    def _energy_j(self) -> float:
        try:
            return float(self.run.snapshot().energy_j) if self.run is not None else 0.0
        except Exception:
            return 0.0

    def _log_progress(self, trainer: pl.Trainer, run: Tracker) -> None:
        if trainer.is_global_zero and trainer.loggers:
            self._log(trainer, self._progress(run))

    def _progress(self, run: Tracker) -> dict[str, float]:
        """The run's figures so far, and its forecast (recomputed at most every forecast_every_s)."""
        snap = run.snapshot()
        metrics = {f"{PREFIX}energy_j": snap.energy_j, f"{PREFIX}carbon_g": snap.carbon_g}
        if self._samples > 0:
            metrics[f"{PREFIX}energy_per_sample_j"] = snap.energy_j / self._samples
        now = time.monotonic()
        if now - self._forecast_at >= self.forecast_every_s:
            self._forecast_at = now
            self.forecast = run.forecast()
        f = self.forecast
        if f is not None:
            metrics.update(
                {
                    f"{PREFIX}forecast_energy_j": f.energy_j,
                    f"{PREFIX}forecast_energy_low_j": f.energy_low_j,
                    f"{PREFIX}forecast_energy_high_j": f.energy_high_j,
                    f"{PREFIX}forecast_progress": f.progress,
                    f"{PREFIX}forecast_duration_s": f.duration_s,
                    f"{PREFIX}forecast_carbon_g": f.carbon_g,
                }
            )
        return metrics

    def _log(self, trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            try:
                logger.log_metrics(metrics, step=trainer.global_step)
            except Exception:  # a logger's failure is not the training's
                log.exception("greenai: logging to %s failed", type(logger).__name__)
