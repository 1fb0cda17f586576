"""Plain PyTorch: a training loop with no `with run.phase(...)` in it, phased by greenai's hooks.

    python examples/torch_instrument.py                      # the digits CNN, 3 epochs
    python examples/torch_instrument.py --epochs 1 --limit 256

`instrument(model, optimizer, run)` puts `forward`, `backward` and `optimizer_step` phases on
the loop and counts samples and steps; the run's table and the ledger show them as if the
loop had been written with phases. Needs `pip install 'greenai[demo]'` (torch, scikit-learn).
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import greenai
from greenai.demo.digits import accuracy, load_digits_data, make_cnn
from greenai.integrations.torch import instrument
from greenai.tracking.phases import inclusive_totals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    data = load_digits_data()
    x, y = data.x_train[: args.limit], data.y_train[: args.limit]
    model = make_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(len(x) / args.batch_size)

    with greenai.track("digits-instrumented", planned_steps=args.epochs * steps_per_epoch) as run:
        with instrument(model, optimizer, run) as hooks:
            for epoch in range(args.epochs):
                order = torch.randperm(len(x))
                for start in range(0, len(x), args.batch_size):
                    idx = order[start : start + args.batch_size]
                    loss = loss_fn(model(x[idx]), y[idx])  # forward: the model's hooks
                    loss.backward()  # backward: autograd's hooks
                    optimizer.step()  # optimizer_step, then steps += 1 (a budget safe point)
                    optimizer.zero_grad()
                with run.phase("evaluation"):  # the model's forward nests under it
                    acc = accuracy(model, data.x_test, data.y_test)
                print(f"epoch {epoch + 1}: test accuracy {acc:.3f}")

    r = run.result
    assert r is not None
    print(
        f"\n{r.energy_j:.1f} J ({r.snapshot.provenance.value}, ±{r.snapshot.rel_uncertainty:.0%}), {r.carbon_g:.3g} gCO2e"
    )
    print(f"hooks saw {hooks.forwards} forwards, {hooks.backwards} backwards, {hooks.steps} optimizer steps")
    per_sample = r.energy_per("samples")
    if per_sample is not None:
        print(f"{per_sample * 1000:.2f} mJ per training sample")
    print(f"\n{'phase':<22}{'energy J':>10}{'share':>8}{'calls':>8}")
    for path, total in inclusive_totals(r.snapshot.phases).items():
        share = total.energy_j / r.energy_j if r.energy_j else 0.0
        print(f"{path:<22}{total.energy_j:>10.2f}{share:>8.1%}{total.calls:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
