"""GreenAICallback on real Hugging Face Trainer runs: a tiny BERT built from a config (nothing
downloaded), energy per step, epoch and token in the logs, a stop budget through
`control.should_training_stop` after the Trainer's checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("accelerate")
transformers = pytest.importorskip("transformers")
import torch  # noqa: E402
from tests.integrations.helpers import calls, cpu, joules, paths, sim_config, stored  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from greenai.integrations.transformers import GreenAICallback  # noqa: E402
from greenai.tracking.budget import Budget  # noqa: E402
from greenai.tracking.tracker import Tracker  # noqa: E402

N, BATCH, LENGTH, REAL = 32, 4, 8, 6  # 8 steps an epoch; 6 of the 8 positions are real tokens


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Tiny models on a shared 2-core machine."""


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int = N) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(2, 50, (n, LENGTH), generator=g)
        self.mask = torch.zeros(n, LENGTH, dtype=torch.long)
        self.mask[:, :REAL] = 1
        self.labels = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=LENGTH,
    )
    return BertForSequenceClassification(config)


def trainer(tmp_path: Path, callback: GreenAICallback, epochs: int = 2, **kw: Any) -> Trainer:
    settings: dict[str, Any] = dict(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=epochs,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=16,
        logging_steps=4,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    settings.update(kw)
    return Trainer(
        model=tiny_bert(),
        args=TrainingArguments(**settings),
        train_dataset=Tokens(),
        eval_dataset=Tokens(16),
        callbacks=[callback],
    )


class Reporter(TrainerCallback):
    """Stands for TensorBoard/MLflow/W&B: keeps what each log showed it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.append(dict(logs or {}))


def test_training_is_a_run_with_phases_counts_and_energy_in_the_trainers_logs(tmp_path) -> None:
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()], forecast_every_s=0.0)
    t = trainer(tmp_path, callback)
    t.train()
    result = callback.result
    assert result is not None and result.name == "transformers" and result.status == "completed"
    record = stored(tmp_path, result.run_id)
    assert {"train_step", "evaluation"} <= paths(record)
    assert (calls(record, "train_step"), calls(record, "evaluation")) == (16, 2)
    assert record.snapshot.counters == {
        "samples": 2 * N,
        "tokens": 2 * N * REAL,  # the attention mask's ones, not the padding
        "steps": 16,
        "epochs": 2,
        "eval_samples": 2 * 16,
    }
    history = t.state.log_history
    train_logs = [h for h in history if "loss" in h]
    assert train_logs and all("greenai_energy_j" in h for h in train_logs)
    # a log before the sampler read any of its steps' energy leaves the per-step figures out
    per_step = [h for h in train_logs if "greenai_energy_per_step_j" in h]
    assert per_step and all(
        h["greenai_energy_per_step_j"] > 0 and h["greenai_energy_per_token_j"] > 0 for h in per_step
    )
    epoch_logs = [h for h in history if "greenai_epoch_energy_j" in h]
    assert len(epoch_logs) == 2 and all(h["greenai_epoch_energy_per_token_j"] > 0 for h in epoch_logs)
    energies = [h["greenai_energy_j"] for h in history if "greenai_energy_j" in h]
    assert energies == sorted(energies) and energies[-1] <= result.energy_j
    assert record.start.environment["plan"]["planned_steps"] == 16  # from state.max_steps


def test_attach_puts_the_callback_first_so_reporters_send_greenais_figures(tmp_path) -> None:
    reporter = Reporter()
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()])
    t = trainer(tmp_path, callback, epochs=1)
    t.add_callback(reporter)  # after greenai's: sees the figures even without attach
    late = Reporter()
    t.callback_handler.callbacks.insert(0, late)  # before greenai's, as the Trainer's reporters are
    t.train()
    assert any("greenai_energy_j" in logs for logs in reporter.seen)
    assert not any("greenai_energy_j" in logs for logs in late.seen)

    callback2 = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()])
    t2 = trainer(tmp_path, callback2, epochs=1)
    early = Reporter()
    t2.callback_handler.callbacks.insert(0, early)
    assert callback2.attach(t2) is callback2
    assert t2.callback_handler.callbacks[0] is callback2
    assert t2.callback_handler.callbacks.count(callback2) == 1
    t2.train()
    assert any("greenai_energy_j" in logs for logs in early.seen)


def test_a_stop_budget_saves_the_trainers_checkpoint_and_ends_training(tmp_path) -> None:
    budget = Budget(energy_kwh=joules(40.0), action="stop")  # 40 ms at 1 kW
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu(1000.0)], budgets=[budget])
    t = trainer(tmp_path, callback, epochs=50, eval_strategy="no")
    output = t.train()  # returns: no exception
    result = callback.result
    assert result is not None and result.status == "interrupted"
    assert callback.stopped_by is not None and callback.stopped_by == result.stopped_by
    assert output.global_step == t.state.global_step < 50 * N // BATCH
    record = stored(tmp_path, result.run_id)
    assert record.status == "interrupted"
    assert record.snapshot.counters["greenai.budget.stop.energy_kwh"] == 1.0
    assert record.snapshot.counters["steps"] == t.state.global_step
    checkpoint = callback.checkpoint_path
    assert checkpoint == tmp_path / "out" / f"checkpoint-{t.state.global_step}"
    assert (checkpoint / "trainer_state.json").exists() and (checkpoint / "model.safetensors").exists()


def test_with_your_own_run_the_callback_never_ends_it(tmp_path) -> None:
    with Tracker("mine", config=sim_config(tmp_path), meters=[cpu()]) as run:
        callback = GreenAICallback(run)
        trainer(tmp_path, callback, epochs=1).train()
        assert run.result is None and callback.result is None
    record = stored(tmp_path, run.run_id)
    assert record.status == "completed" and record.snapshot.counters["steps"] == 8
    assert {"train_step", "evaluation"} <= paths(record)


def test_steps_are_optimizer_steps_when_gradients_accumulate(tmp_path) -> None:
    callback = GreenAICallback(config=sim_config(tmp_path), meters=[cpu()])
    t = trainer(tmp_path, callback, epochs=1, gradient_accumulation_steps=2, eval_strategy="no")
    t.train()
    result = callback.result
    assert result is not None
    assert t.state.global_step == 4
    assert result.snapshot.counters == {"samples": N, "tokens": N * REAL, "steps": 4, "epochs": 1}
    assert calls(stored(tmp_path, result.run_id), "train_step") == 4
