"""Hugging Face Transformers: a tiny BERT, built from a config (nothing downloaded), trained by
the Trainer on the digits read as sentences of tokens, tracked by greenai's TrainerCallback.

    python examples/transformers_digits.py                       # 2 epochs
    python examples/transformers_digits.py --budget-j 20         # a stop budget: checkpoint, then training ends
    python examples/transformers_digits.py --epochs 1 --limit 128

Each 8x8 image is a sentence: [CLS] then its 64 pixel intensities (0-16) as tokens, the blank
pixels of the border left out and padded (so the attention mask has zeros and the per-token
energy counts real tokens only). The callback adds the energy per step, per epoch and per token
to the Trainer's logs (`trainer.state.log_history`), and a stop budget ends training through
`control.should_training_stop` after the Trainer saved a checkpoint.
Needs `pip install 'greenai[demo,transformers]'`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing comes from the Hub: the model is built from a config

import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments  # noqa: E402

from greenai import Budget  # noqa: E402
from greenai.demo.digits import load_digits_data  # noqa: E402
from greenai.integrations.transformers import GreenAICallback  # noqa: E402
from greenai.units import J_PER_KWH  # noqa: E402

PAD, CLS = 0, 1  # token ids; intensity v is token v + 2
VOCAB = 17 + 2
MAX_LEN = 65


class DigitsAsTokens(torch.utils.data.Dataset):
    """Digits as token sequences: [CLS] and the pixels that are not blank in any image of the
    set (the blank ones, mostly the left and right columns, dropped and the rest padded)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        pixels = (images.reshape(len(images), -1) * 16).round().long()  # back to 0-16
        self.items = []
        for row, label in zip(pixels, labels):
            tokens = [CLS] + [int(v) + 2 for v in row if v > 0]
            ids = torch.full((MAX_LEN,), PAD, dtype=torch.long)
            ids[: len(tokens)] = torch.tensor(tokens)
            mask = (ids != PAD).long()
            self.items.append({"input_ids": ids, "attention_mask": mask, "labels": label})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    ap.add_argument("--budget-j", type=float, default=None, help="stop training once it has used this many joules")
    ap.add_argument("--out", default=None, help="the Trainer's output_dir (default: a temporary directory)")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    data = load_digits_data()
    train = DigitsAsTokens(data.x_train[: args.limit], data.y_train[: args.limit])
    test = DigitsAsTokens(data.x_test[:256], data.y_test[:256])
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LEN,
    )
    config.num_labels = 10
    model = BertForSequenceClassification(config)  # random weights: nothing downloaded

    budgets = [Budget(energy_kwh=args.budget_j / J_PER_KWH, action="stop")] if args.budget_j else []
    energy = GreenAICallback(name="digits-bert", budgets=budgets)
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingArguments(
            output_dir=args.out or tmp,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128,
            learning_rate=1e-3,
            eval_strategy="epoch",
            logging_steps=10,
            save_strategy="no",  # the callback still asks for a checkpoint before a budget stop
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=training, train_dataset=train, eval_dataset=test, callbacks=[energy])
        energy.attach(trainer)  # first in line: the printed logs and every reporter get greenai's figures
        trainer.train()

        r = energy.result
        assert r is not None
        print(
            f"\ntraining: {r.status}, {trainer.state.global_step} steps, {r.energy_j:.1f} J ({r.snapshot.provenance.value})"
        )
        if r.stop_reason:
            print(f"  stopped: {r.stop_reason}")
            print(f"  checkpoint: {energy.checkpoint_path.name if energy.checkpoint_path else None}")
        for phase in ("train_step", "evaluation"):
            print(f"  {phase:<11}{r.phase_energy_j(phase):8.2f} J")
        for counter in ("samples", "tokens"):
            per = r.energy_per(counter)
            if per is not None:
                print(f"  {per * 1000:.3f} mJ per {counter[:-1]} ({r.snapshot.counters[counter]:.0f} {counter})")
        logged = sorted({k for entry in trainer.state.log_history for k in entry if k.startswith("greenai_")})
        print(f"in trainer.state.log_history: {', '.join(logged)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
