"""Per-weight importance scores for pruning: the lower the score, the sooner it is pruned.

- magnitude: |w| (Han et al. 2015, "Learning both Weights and Connections for Efficient
  Neural Networks").
- taylor: first-order Taylor estimate of the loss change when a weight is removed,
  (g·w)² per batch, averaged over batches (Molchanov et al. 2019, "Importance Estimation
  for Neural Network Pruning", eq. 3 and section 3.2). Ranks the same as the RMS over
  batches of |w·dL/dw|.
- hessian: Optimal Brain Damage saliency ½·h_ii·w² (LeCun et al. 1990), the loss change
  under a diagonal quadratic model at a minimum. The Hessian diagonal is estimated with
  Hutchinson's method, diag(H) = E[z ⊙ Hz] for Rademacher z (Bekas et al. 2007; used in
  PyHessian, Yao et al. 2020), with Hessian-vector products from double backpropagation
  (Pearlmutter 1994). OBD assumes h_ii > 0 at a minimum; away from one, or through
  estimator noise, an estimate can be negative, so |h_ii| is used: a weight in a strongly
  curved direction is kept whatever the sign.

Gradient-based scores run the model in eval mode (no dropout, batch-norm statistics left
alone) and restore its mode and `requires_grad` flags afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from greenai.errors import ConfigError
from greenai.optimize.candidate import Batch

LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def magnitude_scores(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """|w| for each weight tensor."""
    return [w.detach().abs() for w in weights]


@contextmanager
def _grad_ready(model: nn.Module, weights: Sequence[nn.Parameter]) -> Iterator[None]:
    """Eval mode and requires_grad on `weights` for the block; both restored after."""
    was_training = model.training
    flags = [w.requires_grad for w in weights]
    model.eval()
    for w in weights:
        w.requires_grad_(True)
    try:
        with torch.enable_grad():
            yield
    finally:
        for w, flag in zip(weights, flags):
            w.requires_grad_(flag)
        model.train(was_training)


def _scalar_loss(loss: LossFn, model: nn.Module, batch: Batch) -> torch.Tensor:
    value = loss(model, batch)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ConfigError(
            f"task.loss must return a scalar tensor, got {type(value).__name__}"
            f"{'' if not isinstance(value, torch.Tensor) else tuple(value.shape)}"
        )
    return value.reshape(())


def _grads(
    outputs: torch.Tensor | Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    grad_outputs: Sequence[torch.Tensor] | None = None,
    *,
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> list[torch.Tensor]:
    """torch.autograd.grad with zeros where a weight does not take part."""
    found = torch.autograd.grad(
        outputs,
        weights,
        grad_outputs=grad_outputs,
        create_graph=create_graph,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return [torch.zeros_like(w) if g is None else g for g, w in zip(found, weights)]


def taylor_scores(
    model: nn.Module, weights: Sequence[nn.Parameter], loss: LossFn, batches: Sequence[Batch]
) -> list[torch.Tensor]:
    """Mean over `batches` of (w · dL/dw)² per weight (Molchanov et al. 2019)."""
    if not batches:
        raise ConfigError("no training batches to estimate gradients on")
    scores = [torch.zeros_like(w, dtype=torch.float32) for w in weights]
    with _grad_ready(model, weights):
        for batch in batches:
            grads = _grads(_scalar_loss(loss, model, batch), weights)
            for score, w, g in zip(scores, weights, grads):
                score += (w.detach() * g.detach()).float().pow(2)
    return [score / len(batches) for score in scores]


def hessian_diagonal(
    model: nn.Module,
    weights: Sequence[nn.Parameter],
    loss: LossFn,
    batches: Sequence[Batch],
    samples: int = 4,
    seed: int = 0,
) -> list[torch.Tensor]:
    """Hutchinson estimate of the diagonal of the Hessian of the mean batch loss.

    For each batch: g = dL/dw with a graph; for each of `samples` Rademacher vectors z
    (±1, seeded), Hz = d(g·z)/dw; the estimate is the mean of z ⊙ Hz over all batches and
    vectors. It is unbiased: E[z_i (Hz)_i] = Σ_j H_ij E[z_i z_j] = H_ii.
    """
    if samples < 1:
        raise ConfigError("samples must be at least 1")
    if not batches:
        raise ConfigError("no training batches to estimate curvature on")
    generator = torch.Generator().manual_seed(seed)
    diag = [torch.zeros_like(w, dtype=torch.float32) for w in weights]
    with _grad_ready(model, weights):
        for batch in batches:
            grads = _grads(_scalar_loss(loss, model, batch), weights, create_graph=True)
            live = [i for i, g in enumerate(grads) if g.requires_grad]  # others: zero curvature
            for _ in range(samples):
                zs = [torch.randint(0, 2, w.shape, generator=generator).to(w) * 2 - 1 for w in weights]
                if not live:
                    continue
                hz = _grads(
                    [grads[i] for i in live], [weights[i] for i in live], [zs[i] for i in live], retain_graph=True
                )
                for i, h in zip(live, hz):
                    diag[i] += (zs[i] * h.detach()).float()
            del grads
    count = len(batches) * samples
    return [d / count for d in diag]


def obd_scores(weights: Sequence[torch.Tensor], hessian_diag: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Optimal Brain Damage saliency ½·|h_ii|·w² (LeCun et al. 1990, eq. 7)."""
    return [0.5 * h.abs() * w.detach().float().pow(2) for w, h in zip(weights, hessian_diag)]


def hessian_scores(
    model: nn.Module,
    weights: Sequence[nn.Parameter],
    loss: LossFn,
    batches: Sequence[Batch],
    samples: int = 4,
    seed: int = 0,
) -> list[torch.Tensor]:
    """OBD saliency with a Hutchinson Hessian diagonal."""
    return obd_scores(weights, hessian_diagonal(model, weights, loss, batches, samples, seed))
