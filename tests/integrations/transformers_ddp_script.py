"""A tiny BERT trained by the Hugging Face Trainer on 2 CPU processes, tracked by GreenAICallback
with a stop budget; run by tests/integrations/test_transformers_ddp.py under torchrun:

    python -m torch.distributed.run --standalone --nproc-per-node 2 transformers_ddp_script.py DIR --budget-j J

The model is built from a `BertConfig` and the data are random token ids (nothing downloaded).
Each rank writes DIR/result-<rank>.json once `train()` has returned: its step, the step at which
it first saw `control.should_training_stop`, what the callback decided, and which
`greenai_` figures reached its logs (a callback after greenai's records every `on_log` on every
rank, so that greenai's own rank-0 gate is what is seen) and its `state.log_history`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

from greenai import Budget
from greenai.integrations.transformers import PREFIX, GreenAICallback
from greenai.units import J_PER_KWH

VOCAB, LENGTH, REAL = 50, 8, 6  # 6 of the 8 positions are real tokens


def tokens(n: int) -> list[dict[str, torch.Tensor]]:
    """`n` rows of random token ids, each with its attention mask and label."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, VOCAB, (n, LENGTH), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    mask = (torch.arange(LENGTH) < REAL).long()
    return [{"input_ids": ids[i], "attention_mask": mask, "labels": labels[i]} for i in range(n)]


class Recording(TrainerCallback):
    """What this rank's Trainer showed the callbacks after greenai's: every log, and the first
    step at which training was told to stop."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.stop_step: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_training_stop and self.stop_step is None:
            self.stop_step = state.global_step

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.keys |= set(logs or {})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--budget-j", type=float, required=True)
    ap.add_argument("--max-steps", type=int, default=100_000)  # the budget stops it long before
    args = ap.parse_args()
    torch.manual_seed(0)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=LENGTH,
        )
    )
    energy = GreenAICallback(name="ddp", budgets=[Budget(energy_kwh=args.budget_j / J_PER_KWH, action="stop")])
    recording = Recording()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(args.dir / "out"),
            max_steps=args.max_steps,
            per_device_train_batch_size=4,
            logging_steps=5,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            ddp_backend="gloo",
            disable_tqdm=True,
        ),
        train_dataset=tokens(64),
        callbacks=[energy, recording],
    )
    trainer.train()
    result = energy.result
    assert result is not None
    rank = trainer.args.process_index
    out = {
        "rank": rank,
        "world_size": trainer.args.world_size,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "stop_step": recording.stop_step,
        "stopped_by_own_budget": energy.stopped_by is not None,
        "checkpoint_path": str(energy.checkpoint_path) if energy.checkpoint_path else None,
        "run_id": result.run_id,
        "status": result.status,
        "energy_j": result.energy_j,
        "job_id": result.job.job_id if result.job is not None else None,
        "greenai_logs": sorted(k for k in recording.keys if k.startswith(PREFIX)),
        "other_logs": sorted(k for k in recording.keys if not k.startswith(PREFIX)),
        "greenai_history": sorted({k for h in trainer.state.log_history for k in h if k.startswith(PREFIX)}),
    }
    (args.dir / f"result-{rank}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
