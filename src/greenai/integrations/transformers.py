"""A Hugging Face Transformers `TrainerCallback`: energy per step, per epoch and per token in the
Trainer's logs, and stop budgets that end training through `control.should_training_stop`.

    from greenai import Budget
    from greenai.integrations.transformers import GreenAICallback

    energy = GreenAICallback(budgets=[Budget(carbon_g=50, action="stop")])
    trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[energy])
    energy.attach(trainer)        # optional: first in line, so every reporter sends greenai's figures
    trainer.train()
    print(energy.result.energy_per("tokens"), "J/token")

Runs: with no `run`, the callback starts a run at `on_train_begin` (named `name`, planned to
`state.max_steps` so the forecast has a target; keyword arguments such as `budgets`,
`on_budget`, `tags`, `config` go to its Tracker) and ends it at `on_train_end`. The Trainer
tells callbacks nothing of an exception, so a run of the callback's own that dies with
`train()` is ended when the interpreter exits; for a `failed` status, pass your own run:
`with greenai.track("finetune") as run: Trainer(..., callbacks=[GreenAICallback(run)]).train()`
(the callback never starts or ends a run you pass).

Phases: `train_step` (from `on_step_begin` to `on_step_end`: the micro-batches' forwards and
backwards and the optimizer step) and `evaluation` (from the first forward in eval mode to
`on_evaluate`; modelled as periodic by the forecast). Counts: `samples` and `tokens` of the
training forwards (a forward pre-hook on the model reads the batch: the rows of `input_ids`
and the ones of `attention_mask`, or every position of `input_ids` without a mask; the mask's
sum is kept on its device and read only when logging), `steps`, `epochs`.

Logs (on `on_log`, rank 0 only), added to the dict every later callback and reporter sees and
to `state.log_history`: `greenai_energy_j`, `greenai_carbon_g`, `greenai_energy_per_step_j`
and `greenai_energy_per_token_j` (since the previous log that carried them: a log that comes
before the sampler has read any of its steps' energy leaves them out, never logs 0), the forecast
(`greenai_forecast_energy_j`, `_low_j`, `_high_j`, `greenai_forecast_progress`, at most every
`forecast_every_s`) and, in the log the callback asks for at each epoch's end
(`log_epochs=True`), `greenai_epoch_energy_j` and `greenai_epoch_energy_per_token_j` (neither
for an epoch no sampler reading fell in). The
Trainer calls callbacks in order and its reporters come first: `attach(trainer)` moves this
callback to the front so they send greenai's figures too.

Budgets: the `steps` count at `on_step_end` (after the optimizer step, outside any phase) is a
safe point. A `stop` budget fires there (after `on_budget`): the callback sets
`control.should_save` (`checkpoint=True`: the Trainer's own checkpoint, in
`output_dir/checkpoint-<step>`) and `control.should_training_stop`; an evaluation the
Trainer's schedule asks for at that step or epoch still runs. On several processes each rank's
run joins one greenai job (greenai.distributed: each device counted once) and the flag is
all-reduced (any rank's stop stops all) so that no rank is left waiting in a collective; a rank
stopped by another rank's budget ends its run `interrupted` too (its `stopped_by` None).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from greenai.integrations import unavailable

try:
    import torch
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as e:
    raise unavailable("transformers", e) from None

from greenai.errors import BudgetExceeded
from greenai.integrations._common import OpenPhases, is_rank_zero, run_settings
from greenai.ledger.records import RunStatus
from greenai.tracking.budget import BudgetBreach
from greenai.tracking.forecast import Forecast
from greenai.tracking.result import RunResult
from greenai.tracking.tracker import Tracker

log = logging.getLogger("greenai.integrations")

PREFIX = "greenai_"
TRAIN_STEP = "train_step"
EVALUATION = "evaluation"


class GreenAICallback(TrainerCallback):
    """Tracks `Trainer.train()`; see the module's docstring."""

    def __init__(
        self,
        run: Tracker | None = None,
        *,
        name: str = "transformers",
        checkpoint: bool = True,
        log_epochs: bool = True,
        forecast_every_s: float = 5.0,
        **tracker_kwargs: Any,
    ) -> None:
        self._tracker_kwargs = run_settings(run, tracker_kwargs, EVALUATION)
        self.name = name
        self.checkpoint = checkpoint
        self.log_epochs = log_epochs
        self.forecast_every_s = forecast_every_s
        self._given = run
        self.run: Tracker | None = run
        self.results: list[RunResult] = []
        self.forecast: Forecast | None = None
        self.stopped_by: BudgetBreach | None = None
        self.checkpoint_path: Path | None = None  # the Trainer's checkpoint saved for a budget stop
        self._phases: OpenPhases | None = OpenPhases(run) if run is not None else None
        self._hook: Any = None
        self._thread = threading.get_ident()
        self._world_size = 1
        self._samples = 0  # training samples seen by the hook, not yet counted
        self._eval_samples = 0
        self._tokens_int = 0  # tokens not yet counted: python ints ...
        self._tokens_t: Any = None  # ... and a tensor on the model's device (mask sums)
        self._tokens_total = 0.0
        self._last_step = 0
        self._stopping = False
        self._deferred: BudgetBreach | None = None  # a breach met while counting, acted on at the next step
        self._forecast_at = float("-inf")
        self._at_log: tuple[float, float, float] = (0.0, 0.0, 0.0)  # energy, steps, tokens at the last log
        self._at_epoch: tuple[float, float] = (0.0, 0.0)  # energy, tokens at the epoch's start
        self._epoch_figures: dict[str, float] = {}

    @property
    def result(self) -> RunResult | None:
        """The last run this callback ended (None with `run=`: that run is yours to end)."""
        return self.results[-1] if self.results else None

    def attach(self, trainer: Any) -> GreenAICallback:
        """Put this callback first among the trainer's callbacks (adding it if it is not there),
        so that the reporters (TensorBoard, MLflow, W&B...) and the progress bar see the
        figures it adds to each log."""
        callbacks = trainer.callback_handler.callbacks
        if self in callbacks:
            callbacks.remove(self)
        callbacks.insert(0, self)
        return self

    # -- the run's life -----------------------------------------------------------------------
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        self._thread = threading.get_ident()
        self._world_size = args.world_size  # a property that asks the distributed state: read once
        if self._given is None:
            settings = dict(self._tracker_kwargs)
            if "planned_steps" not in settings and "planned_epochs" not in settings and state.max_steps > 0:
                settings["planned_steps"] = state.max_steps
            run = Tracker(self.name, **settings)
            run.start()
            self.run, self._phases = run, OpenPhases(run)
            self._tokens_total = 0.0
        self._stopping = False
        self._last_step = state.global_step
        energy = self._energy_j()
        self._at_log = (energy, float(state.global_step), self._tokens_total)
        self._at_epoch = (energy, self._tokens_total)
        if model is not None and isinstance(model, torch.nn.Module):
            self._hook = model.register_forward_pre_hook(self._forward_pre, with_kwargs=True)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._phases is not None:
            self._phases.close_all()
        self._count_pending()
        if self._epoch_figures and state.is_world_process_zero:  # asked for a log that never came
            state.log_history.append({**self._epoch_figures, "epoch": state.epoch, "step": state.global_step})
            self._epoch_figures = {}
        if self._given is None and self.run is not None:
            # a rank stopped by another rank's budget was cut short as much as the rank whose budget fired
            status = RunStatus.INTERRUPTED if self._stopping else RunStatus.COMPLETED
            self.results.append(self.run.stop(status))
            self.run, self._phases = None, None

    # -- the model's forwards -----------------------------------------------------------------
    def _forward_pre(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if threading.get_ident() != self._thread or self._phases is None:
            return
        ids = kwargs.get("input_ids")
        if ids is None and args and isinstance(args[0], torch.Tensor):
            ids = args[0]
        if not module.training:
            if not self._phases.is_open(EVALUATION):
                self._phases.enter(EVALUATION)
            if isinstance(ids, torch.Tensor) and ids.dim():
                self._eval_samples += int(ids.shape[0])
            return
        if not isinstance(ids, torch.Tensor) or not ids.dim():
            return
        self._samples += int(ids.shape[0])
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.shape == ids.shape:
            total = mask.sum()
            self._tokens_t = total if self._tokens_t is None else self._tokens_t + total
        else:
            self._tokens_int += ids.numel()

    # -- steps and epochs ---------------------------------------------------------------------
    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._phases is not None:
            self._phases.exit(EVALUATION)
            self._phases.enter(TRAIN_STEP)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        run, phases = self.run, self._phases
        if run is None or phases is None:
            return
        if self._samples:
            run.count("samples", self._samples)  # inside the step's phase: not a safe point
            self._samples = 0
        phases.exit(TRAIN_STEP)
        breach = None
        try:
            run.count("steps", state.global_step - self._last_step)  # after the optimizer step: a safe point
        except BudgetExceeded as e:
            breach = e.breach
        self._last_step = state.global_step
        self._decide(args, state, control, breach)

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._at_epoch = (self._energy_j(), self._read_tokens())

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        run = self.run
        if run is None:
            return
        breach = None
        try:
            run.count("epochs")
        except BudgetExceeded as e:
            breach = e.breach
        energy, tokens = self._energy_j(), self._read_tokens()
        epoch_j, epoch_tokens = energy - self._at_epoch[0], tokens - self._at_epoch[1]
        self._epoch_figures = {}
        if epoch_j > 0:  # 0 J: an epoch shorter than the sampler saw; its figures would be false
            self._epoch_figures[f"{PREFIX}epoch_energy_j"] = epoch_j
            if epoch_tokens > 0:
                self._epoch_figures[f"{PREFIX}epoch_energy_per_token_j"] = epoch_j / epoch_tokens
        if self.log_epochs:
            control.should_log = True
        self._decide(args, state, control, breach)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self._phases is not None:
            self._phases.exit(EVALUATION)
        self._count_pending()

    def on_predict(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics: Any = None, **kwargs: Any
    ) -> None:
        self.on_evaluate(args, state, control)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self._stopping and self.checkpoint_path is None:
            self.checkpoint_path = Path(args.output_dir or ".") / f"checkpoint-{state.global_step}"

    # -- logs ---------------------------------------------------------------------------------
    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        run = self.run
        if run is None or logs is None:
            return
        tokens = self._read_tokens()
        self._count_pending()
        if not state.is_world_process_zero:
            return
        snap = run.snapshot()
        figures: dict[str, float] = {f"{PREFIX}energy_j": snap.energy_j, f"{PREFIX}carbon_g": snap.carbon_g}
        energy0, steps0, tokens0 = self._at_log
        spent, steps = snap.energy_j - energy0, state.global_step - steps0
        # the energy moves at the sampler's ticks: a log before the next one has seen none of the
        # steps' energy yet, and a per-step figure of 0 J would be false. Left out of that log;
        # the next log's figure covers these steps too.
        if spent > 0:
            if steps > 0:
                figures[f"{PREFIX}energy_per_step_j"] = spent / steps
            if tokens - tokens0 > 0:
                figures[f"{PREFIX}energy_per_token_j"] = spent / (tokens - tokens0)
            self._at_log = (snap.energy_j, float(state.global_step), tokens)
        now = time.monotonic()
        if now - self._forecast_at >= self.forecast_every_s:
            self._forecast_at = now
            self.forecast = run.forecast()
        if self.forecast is not None:
            f = self.forecast
            figures[f"{PREFIX}forecast_energy_j"] = f.energy_j
            figures[f"{PREFIX}forecast_energy_low_j"] = f.energy_low_j
            figures[f"{PREFIX}forecast_energy_high_j"] = f.energy_high_j
            figures[f"{PREFIX}forecast_progress"] = f.progress
        figures.update(self._epoch_figures)
        self._epoch_figures = {}
        history = state.log_history
        # the entry the Trainer appended for this log: {**logs, "step": ...}
        if history and history[-1].get("step") == state.global_step and logs.items() <= history[-1].items():
            history[-1].update(figures)
        logs.update(figures)

    # -- plumbing -----------------------------------------------------------------------------
    def _read_tokens(self) -> float:
        """Tokens seen so far (reads the mask sums off their device: called when logging)."""
        if self._tokens_t is not None:
            self._tokens_int += int(self._tokens_t.item())
            self._tokens_t = None
        return self._tokens_total + self._tokens_int

    def _count_pending(self) -> None:
        """Count the tokens and evaluation samples seen since the last call. Outside any phase
        this is a safe point: a stop budget firing here is acted on at the next `on_step_end`
        (where every rank decides together)."""
        run = self.run
        if run is None:
            return
        self._read_tokens()
        pending = [("tokens", self._tokens_int), ("eval_samples", self._eval_samples)]
        self._tokens_total += self._tokens_int
        self._tokens_int = self._eval_samples = 0
        for counter, n in pending:
            if n:
                try:
                    run.count(counter, n)
                except BudgetExceeded as e:  # acted on at the next step's end, on every rank alike
                    self._deferred = self._deferred or e.breach

    def _decide(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, breach: BudgetBreach | None
    ) -> None:
        breach, self._deferred = breach or self._deferred, None
        stop = breach is not None
        if self._world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1 if stop else 0], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            self._stop(control, breach)

    def _stop(self, control: TrainerControl, breach: BudgetBreach | None) -> None:
        if self._stopping:
            return
        self._stopping = True
        if breach is not None:
            self.stopped_by = breach
        control.should_training_stop = True
        if self.checkpoint:
            control.should_save = True
        reason = breach.message() if breach is not None else "another rank's budget"
        if is_rank_zero():
            log.warning("greenai: stopping training: %s", reason)

    def _energy_j(self) -> float:
        try:
            return float(self.run.snapshot().energy_j) if self.run is not None else 0.0
        except Exception:
            return 0.0
