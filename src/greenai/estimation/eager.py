"""What eager PyTorch adds around kernels in a model, measured for calibration.

Calling an nn.Module, recording the autograd graph in a training forward, starting the
autograd engine once per backward, a view, the fixed and per-operator cost of an optimizer
step, the CPUs kept busy during serial work after parallel kernels (spinning OpenMP
workers: energy, not time), and the Python share of an operator call (the interpreter,
argument parsing, the binding: paid once per call made from Python, not by operators issued
from C++ inside it; see calls.py). Each is a difference or a slope of small timed cases (timing.run_bench),
medians where there are several.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from greenai.estimation.timing import filled, run_bench, run_cold


@dataclass(frozen=True)
class Context:
    module_call_s: float  # calling an nn.Module around a kernel, beyond the kernel's own call
    grad_record_s: float  # extra per forward kernel when autograd records the graph
    backward_call_s: float  # starting the autograd engine, once per backward()
    view_s: float  # a view call (counting skips views; reported only)
    optimizer_step_s: float = 0.0  # fixed cost of one optimizer.step()
    optimizer_record_s: float = 0.0  # per operator call inside optimizer.step()
    python_call_s: float = 0.0  # Python's share of an operator called from Python
    serial_busy_cpus: float = 1.0  # CPUs busy during serial work that follows parallel kernels
    fused_step_s: float = 0.0  # fixed cost of one fused optimizer.step() (Adam(fused=True))
    fused_param_s: float = 0.0  # its cost per parameter tensor (Python's loop over them included)


class _OpCounter:
    """Counts the operator calls op counting would record (views and allocations skipped)."""

    _FREE = frozenset(
        {
            "detach",
            "empty",
            "empty_like",
            "empty_strided",
            "new_empty",
            "new_empty_strided",
            "_unsafe_view",
            "lift_fresh",
            "size",
            "stride",
        }
    )

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
                name = func._schema.name.split("::", 1)[-1]
                if not func.is_view and name not in counter._FREE:
                    counter.calls += 1
                return func(*args, **(kwargs or {}))

        self.calls = 0
        self.mode = Mode()


def _tiny_adam(n: int, **options: Any) -> Any:
    """Adam on `n` tiny parameters with gradients, its state created by a first step."""
    import torch

    params = [torch.nn.Parameter(filled(8)) for _ in range(n)]
    for p in params:
        p.grad = filled(8)
    opt = torch.optim.Adam(params, lr=1e-3, **options)
    opt.step()
    return opt


def _fixed_and_per_unit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """The line t = fixed + units x per_unit through two (units, t) points, both terms >= 0."""
    (u1, t1), (u2, t2) = points
    per_unit = max((t2 - t1) / (u2 - u1), 0.0) if u2 > u1 else 0.0
    return max(t1 - u1 * per_unit, 0.0), per_unit


def optimizer_costs(target_s: float = 0.1) -> tuple[float, float]:
    """(fixed cost of Adam.step(), cost per operator call inside it): Adam (count_ops' default
    optimizer) on 2 and on 16 tiny parameters, t = fixed + calls x per_call, each step timed
    with the caches cold (run_cold), as it runs after a backward."""
    points = []
    for n in (2, 16):
        opt = _tiny_adam(n)
        counter = _OpCounter()
        with counter.mode:
            opt.step()
        points.append((counter.calls, run_cold(opt.step, target_s / 2).time_s))
    return _fixed_and_per_unit(points)


def fused_optimizer_costs(target_s: float = 0.05) -> tuple[float, float]:
    """(fixed cost of Adam(fused=True).step(), cost per parameter tensor): on 2 and on 16 tiny
    parameters, t = fixed + tensors x per_tensor. The fused step issues one kernel for all
    tensors, but still walks them in Python (gathering parameters, gradients and state), so its
    cost grows with the number of tensors, not of operators. (0, 0) where torch has no fused
    kernel for CPU float32 (cold, like optimizer_costs)."""
    points = []
    for n in (2, 16):
        try:
            opt = _tiny_adam(n, fused=True)
        except (RuntimeError, ValueError):
            return 0.0, 0.0
        points.append((n, run_cold(opt.step, target_s / 2).time_s))
    return _fixed_and_per_unit(points)


def python_call_cost(target_s: float = 0.05, tensors: int = 32) -> float:
    """Python's share of an operator call: a tiny operator called from Python minus the
    same operator issued from C++. On CPU, ``torch._foreach_*`` on a list of tensors issues
    one regular operator call per tensor from C++ (its per-tensor fallback), so its time per
    tensor is an operator call without the interpreter. Median of add, mul and sigmoid."""
    import torch

    xs = [filled(16) for _ in range(tensors)]
    ys = [filled(16) for _ in range(tensors)]
    x, y = xs[0], ys[0]
    pairs = [
        (lambda: torch.add(x, y), lambda: torch._foreach_add(xs, ys)),
        (lambda: torch.mul(x, y), lambda: torch._foreach_mul(xs, ys)),
        (lambda: torch.sigmoid(x), lambda: torch._foreach_sigmoid(xs)),
    ]
    each = target_s / (2 * len(pairs))
    with torch.inference_mode():
        shares = [run_bench(one, each).time_s - run_bench(many, each).time_s / tensors for one, many in pairs]
    return max(statistics.median(shares), 0.0)


def serial_busy(cpu_s: float, wall_s: float, kernel_cpu_s: float, kernel_wall_s: float) -> float:
    """CPUs busy during the serial part of a loop (parallel kernel, then serial work): the
    loop's CPU time less the kernels' (from a loop of kernels alone), over its wall time less
    the kernels'."""
    serial_wall = wall_s - kernel_wall_s
    return (cpu_s - kernel_cpu_s) / serial_wall if serial_wall > 0 else 1.0


def serial_busy_cpus(target_s: float = 0.4, serial_s: float = 300e-6) -> float:
    """CPUs kept busy while the main thread runs serial work (Python, small operators) after a
    parallel kernel. torch's OpenMP workers (libgomp) spin-wait for the next parallel region
    before they sleep (OMP_WAIT_POLICY unset: GOMP_SPINCOUNT iterations, libgomp manual,
    "GOMP_SPINCOUNT"), so in a model with any parallel kernel, the dispatch overheads, the
    optimizer and serial operators keep ~all torch threads busy, which utilization-based
    energy counts (measured here: 1.99 of 2 CPUs over serial stretches of 50 us to 5 ms).
    Timed over windows of 0.1 s and more: the kernel accounts other threads' CPU time at
    scheduler ticks."""
    import torch

    if torch.get_num_threads() <= 1:
        return 1.0
    n = 32768 * 4 * torch.get_num_threads()  # well above ATen's grain size: parallel
    x, y = filled(n), filled(n)
    small = filled(8)
    perf = time.perf_counter

    def loop(serial: bool, seconds: float) -> tuple[float, float, int]:
        c0, w0, k = time.process_time(), perf(), 0
        while perf() - w0 < seconds:
            torch.add(x, y)
            if serial:
                end = perf() + serial_s
                while perf() < end:
                    small.add_(0.0)
            k += 1
        return time.process_time() - c0, perf() - w0, k

    with torch.inference_mode():
        loop(False, 0.01)
        kc, kw, kk = loop(False, target_s / 3)
        c, w, k = loop(True, 2 * target_s / 3)
    busy = serial_busy(c, w, kc * k / kk, kw * k / kk)
    return min(max(busy, 1.0), float(torch.get_num_threads()))


def context(target_s: float = 0.1) -> Context:
    """Measure the costs eager PyTorch adds around kernels in a model (medians of small cases)."""
    import torch
    import torch.nn.functional as F

    each = target_s / 24
    t = lambda call: run_bench(call, each).time_s
    x = filled(4, 16)
    lin = torch.nn.Linear(16, 16)
    relu = torch.nn.ReLU()
    w, b = lin.weight.detach().clone(), lin.bias.detach().clone()
    with torch.inference_mode():
        module = statistics.median(
            [t(lambda: lin(x)) - t(lambda: F.linear(x, w, b)), t(lambda: relu(x)) - t(lambda: F.relu(x))]
        )
        plain = [t(lambda: F.linear(x, w, b)), t(lambda: F.relu(x)), t(lambda: x * x)]
    xg = filled(4, 16, requires_grad=True)
    wg, bg = w.clone().requires_grad_(), b.clone().requires_grad_()
    graph = [t(lambda: F.linear(xg, wg, bg)), t(lambda: F.relu(xg)), t(lambda: xg * xg)]
    grad_record = statistics.median(g - p for g, p in zip(graph, plain))
    y = xg.view(-1)
    gy = torch.ones_like(y)
    backward = t(lambda: torch.autograd.grad(y, [xg], gy, retain_graph=True))
    view = statistics.median([t(lambda: x.t()), t(lambda: x.view(-1)), t(lambda: x.detach())])
    step, per_call = optimizer_costs(target_s / 4)
    fused_step, fused_param = fused_optimizer_costs(target_s / 8)
    python = python_call_cost(target_s / 4)
    spin = serial_busy_cpus(max(2 * target_s, 0.3))
    return Context(
        max(module, 0.0), max(grad_record, 0.0), backward, view, step, per_call, python, spin, fused_step, fused_param
    )
