"""Optimize the trained digits CNN: the task (accuracy on the held-out digits), a fine-tuning
function for transforms that retrain, and the plan of transforms the demo tries."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from greenai.demo.digits import DigitsData, accuracy
from greenai.optimize.candidate import OptimizeTask
from greenai.optimize.search import Pipeline

SERVING_BATCH = 32  # the baseline serves the test set in batches of 32, in float32


def digits_finetune(
    data: DigitsData, batch_size: int = 32, lr: float = 1e-3, seed: int = 0
) -> Callable[[nn.Module, int], None]:
    """`finetune(model, steps)`: Adam on the training digits, cycling shuffled epochs; the
    model is left in eval mode, even when a step raises."""

    def finetune(model: nn.Module, steps: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        n, done = len(data.x_train), 0
        try:
            while done < steps:
                order = torch.randperm(n, generator=generator)
                for start in range(0, n, batch_size):
                    if done >= steps:
                        break
                    idx = order[start : start + batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    loss_fn(model(data.x_train[idx]), data.y_train[idx]).backward()
                    optimizer.step()
                    done += 1
        finally:  # a failed step must not leave the model in train mode (dropout, batch-norm)
            model.eval()

    return finetune


def digits_task(model: nn.Module, data: DigitsData, finetune_steps: int = 300) -> OptimizeTask:
    """Quality = test accuracy; energy measured serving the test digits in batches of 32."""
    loss_fn = nn.CrossEntropyLoss()
    x, y = data.x_test, data.y_test
    train = [(data.x_train[i : i + 64], data.y_train[i : i + 64]) for i in range(0, len(data.x_train), 64)]
    return OptimizeTask(
        model=model.eval(),
        evaluate=lambda m: accuracy(m, x, y),
        inputs=[(x[i : i + SERVING_BATCH],) for i in range(0, len(x), SERVING_BATCH)],
        calibration=[(data.x_train[i : i + 64],) for i in range(0, 512, 64)],
        finetune=digits_finetune(data),
        finetune_steps=finetune_steps,
        loss=lambda m, batch: loss_fn(m(batch[0]), batch[1]),
        train_batches=train,
        quality_name="test accuracy",
    )


def digits_plan(serving_batch: int = 0) -> list[Pipeline]:
    """Compression, precision, lighter architecture and runtime knobs, alone and combined.

    `serving_batch` > 0 adds candidates that also serve in larger batches (a runtime knob
    the deployment must allow: it adds latency for the first requests of a batch)."""
    from greenai.optimize.transforms.distill import Distill, halve_width
    from greenai.optimize.transforms.int8.dynamic import DynamicInt8
    from greenai.optimize.transforms.int8.static import StaticInt8
    from greenai.optimize.transforms.lighten import DepthwiseSeparable
    from greenai.optimize.transforms.precision import Bf16Autocast
    from greenai.optimize.transforms.prune import StructuredPrune, UnstructuredPrune
    from greenai.optimize.transforms.runtime import BatchSize, Threads

    structured = StructuredPrune(0.5)
    plan: list[Pipeline] = [
        Threads(1),
        DynamicInt8(),
        StaticInt8(),
        Bf16Autocast(),
        UnstructuredPrune(0.5),
        structured,
        DepthwiseSeparable(),
        Distill(halve_width),
        (structured, StaticInt8()),
        (structured, StaticInt8(), Threads(1)),
    ]
    if serving_batch:
        plan += [BatchSize(serving_batch), (structured, StaticInt8(), Threads(1), BatchSize(serving_batch))]
    return plan


def example_task() -> tuple[OptimizeTask, list[Pipeline]]:
    """For `greenai optimize greenai.demo.digits_optimize:example_task`: trains the CNN
    (untracked, about ten seconds) and returns its task with the demo's plan."""
    from greenai.demo.digits import load_digits_data, train_digits
    from greenai.tracking.tracker import Tracker

    with Tracker("digits-train-for-optimize", store=False) as run:
        outcome = train_digits(run)
    return digits_task(outcome.model, load_digits_data()), digits_plan()
