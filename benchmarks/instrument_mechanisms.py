"""Where instrument()'s cost per step goes: each mechanism it uses, timed alone in CPU time.

    python benchmarks/instrument_mechanisms.py                 # ~3 min on 2 busy cores
    python benchmarks/instrument_mechanisms.py --rounds 5 --scale 0.2   # smoke run
    python benchmarks/instrument_mechanisms.py --write         # update docs/benchmarks.md

Each row is a few arms run in interleaved rounds (after waiting a few seconds at most for the
machine to quieten); within a round the arms alternate in 20 short chunks, the order rotated
each chunk, each chunk a loop of calls timed by the thread's CPU clock (time.thread_time_ns):
other processes taking the cores do not count, their cache traffic does. Reported: the median over rounds of the CPU
time per call, and the median of the rounds' paired differences from the row's first arm
with its 95 % interval (order statistics, `_harness.median_ci`).

- module call: a module whose forward returns its input, called bare; with a forward
  pre-hook (with_kwargs) and a forward hook (always_call), both doing nothing (PyTorch then
  leaves `_call_impl`'s fast path); and with its forward replaced by a wrapper on the instance;
- autograd: `(w * x).sum().backward()` bare; with a pre-hook on the output's grad_fn
  registered every iteration; and with the pre-hook queueing an engine callback;
- optimizer step: SGD on one parameter, bare and with a step pre-hook and post-hook;
- greenai: `run.count("samples", 32)`, `run.count("steps")`, a reused phase's enter and
  exit at the top level and nested one deep, and `with run.phase("forward")` (a new phase
  object each time), against a call of an empty function;
- step: a tiny MLP's training step (batch 32) plain, with the README's three phases and two
  counts written by hand, under instrument() (its CPU default, backward by autograd hooks,
  and `backward_mode="span"`), and plain with only those autograd hooks (a pre-hook on each
  output's grad_fn, and the callback it queues, both doing nothing else).

Every arm runs inside one started greenai run (10 Hz, ledger in a temporary directory),
torch at one thread.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import (
    QUIET_CORES,
    RESULTS_DIR,
    add_write,
    command,
    log,
    median_ci,
    parser,
    rotated,
    wait_for_quiet,
    write_section,
)
from _training_loops import training_loops

KEY = "instrument-mechanisms"
RESULTS = RESULTS_DIR / "instrument_mechanisms.json"
QUIET_WAIT_S = 2.0
CHUNKS = 20  # alternations of the arms within a round
Loop = Callable[[int], None]  # runs n calls
Row = tuple[str, int, dict[str, Loop]]  # mechanism, calls per round, arms (the first is the reference)


def torch_rows(run: Any) -> list[Row]:
    import torch
    from torch import nn

    class Echo(nn.Module):
        def forward(self, x: Any) -> Any:
            return x

    x = torch.zeros(2, 4)
    bare, hooked, wrapped = Echo(), Echo(), Echo()
    hooked.register_forward_pre_hook(lambda m, a, k: None, with_kwargs=True)
    hooked.register_forward_hook(lambda m, a, o: None, always_call=True)
    inner = wrapped.forward

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return inner(*args, **kwargs)

    wrapped.forward = wrapper  # type: ignore[method-assign]

    def calls_of(module: nn.Module) -> Loop:
        def loop(n: int) -> None:
            for _ in range(n):
                module(x)

        return loop

    w = torch.ones(4, requires_grad=True)
    xa = torch.ones(4)
    queue_callback = torch.autograd.Variable._execution_engine.queue_callback

    def noop_hook(grad_outputs: Any) -> None:
        return None

    def queueing_hook(grad_outputs: Any) -> None:
        queue_callback(noop)
        return None

    def backward_with(hook: Callable[[Any], None] | None) -> Loop:
        def loop(n: int) -> None:
            for _ in range(n):
                out = (w * xa).sum()
                if hook is not None:
                    out.grad_fn.register_prehook(hook)
                out.backward()

        return loop

    p_bare, p_hooked = nn.Parameter(torch.ones(1)), nn.Parameter(torch.ones(1))
    p_bare.grad, p_hooked.grad = torch.zeros(1), torch.zeros(1)
    opt_bare = torch.optim.SGD([p_bare], lr=0.1)
    opt_hooked = torch.optim.SGD([p_hooked], lr=0.1)
    opt_hooked.register_step_pre_hook(lambda o, a, k: None)
    opt_hooked.register_step_post_hook(lambda o, a, k: None)

    def steps_of(opt: torch.optim.Optimizer) -> Loop:
        def loop(n: int) -> None:
            for _ in range(n):
                opt.step()

        return loop

    return [
        (
            "module call",
            20_000,
            {"bare": calls_of(bare), "pre+post hooks": calls_of(hooked), "wrapped forward": calls_of(wrapped)},
        ),
        (
            "autograd backward",
            5_000,
            {
                "bare": backward_with(None),
                "grad_fn pre-hook": backward_with(noop_hook),
                "pre-hook + queue_callback": backward_with(queueing_hook),
            },
        ),
        ("optimizer step", 5_000, {"bare": steps_of(opt_bare), "pre+post hooks": steps_of(opt_hooked)}),
    ]


def noop() -> None:
    return None


def greenai_rows(run: Any) -> list[Row]:
    phase = run.phase("forward")
    outer = run.phase("train_step")

    def empty(n: int) -> None:
        for _ in range(n):
            noop()

    def count_samples(n: int) -> None:
        for _ in range(n):
            run.count("samples", 32)

    def count_steps(n: int) -> None:
        for _ in range(n):
            run.count("steps")

    def enter_exit(n: int) -> None:
        for _ in range(n):
            phase.__enter__()
            phase.__exit__(None, None, None)

    def nested(n: int) -> None:
        with outer:
            enter_exit(n)

    def with_new_phase(n: int) -> None:
        for _ in range(n):
            with run.phase("forward"):
                pass

    return [
        (
            "greenai",
            50_000,
            {
                "empty function call": empty,
                'run.count("samples", 32)': count_samples,
                'run.count("steps")': count_steps,
                "phase enter + exit": enter_exit,
                "phase enter + exit, nested": nested,
                'with run.phase("forward")': with_new_phase,
            },
        )
    ]


def step_rows(run: Any) -> list[Row]:
    import torch
    from torch import nn

    from greenai.integrations.torch import instrument

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    batches = [(torch.randn(32, 64), torch.randint(0, 10, (32,))) for _ in range(8)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    plain, manual = training_loops(run, model, optimizer, batches)

    def instrumented(mode: str) -> Loop:
        def loop(n: int) -> None:
            with instrument(model, optimizer, run, backward_mode=mode):  # type: ignore[arg-type]
                plain(n)

        return loop

    queue_callback = torch.autograd.Variable._execution_engine.queue_callback

    def hooked(queue: bool) -> Loop:
        """The plain loop with only autograd's part of instrument()'s backward: a pre-hook on
        each output's grad_fn (and the callback it queues)."""

        def hook(grad_outputs: Any) -> None:
            if queue:
                queue_callback(noop)
            return None

        def forward(x: Any) -> Any:
            out = model(x)
            out.grad_fn.register_prehook(hook)
            return out

        return training_loops(run, forward, optimizer, batches)[0]

    arms = {"plain": plain, "by hand": manual, "instrument()": instrumented("auto")}
    arms['instrument(backward_mode="span")'] = instrumented("span")
    arms["plain + grad_fn pre-hook"] = hooked(False)
    arms["plain + pre-hook + queue_callback"] = hooked(True)
    return [(STEP, 1_000, arms)]


def measure(rows: list[Row], rounds: int, scale: float) -> dict[str, dict[str, list[float]]]:
    """CPU ns per call of every arm of every row, one value per round."""
    out: dict[str, dict[str, list[float]]] = {}
    for mechanism, calls, arms in rows:
        n = max(int(calls * scale), 10)
        for loop in arms.values():  # warm-up
            loop(max(n // 10, 5))
        times = out[mechanism] = {arm: [] for arm in arms}
        chunk = max(n // CHUNKS, 1)
        for r in range(rounds):
            wait_for_quiet(QUIET_WAIT_S)
            spent = dict.fromkeys(arms, 0)
            for c in range(CHUNKS):  # the arms alternate in short chunks: a slow spell hits them alike
                for arm in rotated(list(arms), r + c):
                    start = time.thread_time_ns()
                    arms[arm](chunk)
                    spent[arm] += time.thread_time_ns() - start
            for arm, ns in spent.items():
                times[arm].append(ns / (chunk * CHUNKS))
        log(f"{mechanism}: " + ", ".join(f"{a} {statistics.median(v):.0f} ns" for a, v in times.items()))
    return out


def render(data: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = [
        "### Where instrument()'s cost goes: each mechanism alone",
        "",
        f"Measured {data['date']} by `benchmarks/instrument_mechanisms.py` ({data['note']}). "
        f"Command: `{data['command']}`",
        "",
        "CPU time of the calling thread per call (the step row: per training step), median over interleaved rounds; "
        "extra = median of the rounds' paired differences from the row's first arm, with its 95 % interval. "
        "Co-load: the CPUs other processes kept busy meanwhile, on average (greenai's own reader; about 0 on a quiet "
        "machine)"
        + (
            ": this run shared a busy machine, which inflates every figure and widens the step row's intervals."
            if (data.get("coload") or 0.0) > QUIET_CORES
            else "."
        ),
    ]
    if before is not None:
        lines += [
            "",
            f"*Before*: the same script, {before['date']} ({before['note']}), on the code before this change "
            f"({before.get('label') or 'saved figures'}), command `{before['command']}` with that code first on "
            "PYTHONPATH; its extra over the row's first arm, median of paired rounds.",
        ]
    lines += [
        "",
        "| mechanism | arm | extra, before | CPU per call | extra | 95 % interval | rounds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for mechanism, arms in data["times"].items():
        names = list(arms)
        ref = arms[names[0]]
        for i, arm in enumerate(names):
            values = arms[arm]
            cell = fmt(statistics.median(values))
            if i == 0:
                lines.append(f"| {mechanism} | {arm} | | {cell} | | | {len(values)} |")
                continue
            low, high, _ = median_ci([a - b for a, b in zip(values, ref)])
            lines.append(
                f"| {mechanism} | {arm} | {extra_before(before, mechanism, arm)} | {cell} "
                f"| {fmt(statistics.median(a - b for a, b in zip(values, ref)), True)} "
                f"| {fmt(low, True)} ... {fmt(high, True)} | {len(values)} |"
            )
    lines.append("")
    step = data["times"].get(STEP)
    if step is not None and all(arm in step for arm in STEP_ARMS):
        plain, hand, inst, span, pre, queued = (step_extra(step, arm) for arm in ("plain", *STEP_ARMS))
        lines += [
            f"**Per step** (the tiny MLP, {fmt(statistics.median(step['plain']))} of CPU plain): the README's "
            f"three phases and two counts written by hand add {hand}; `instrument()` adds {inst} with its CPU "
            f'default (the backward\'s boundaries from autograd hooks) and {span} with `backward_mode="span"`. '
            f"Autograd's hooks alone, doing nothing, add {pre} (a pre-hook on each output's grad_fn) and {queued} "
            "(and the callback it queues) to the same loop: what the default costs beyond the hand-written phases "
            "is PyTorch calling Python from the backward; greenai's own work per step (the forward wrapper, three "
            "phases, two counts, the optimizer's hooks) costs about what the hand-written phases do. In a "
            "training loop every figure is larger than the same calls in a tight loop (the rows above): between "
            "two boundaries the step's own work evicts them from the caches.",
            "",
        ]
        old = (before or {}).get("times", {}).get(STEP, {})
        if all(arm in old for arm in STEP_ARMS[:3]):
            hand, inst, span = (step_extra(old, arm) for arm in STEP_ARMS[:3])
            lines += [f"Before: by hand {hand}, `instrument()` {inst}, span {span}.", ""]
    return "\n".join(lines)


STEP = "tiny MLP step"
STEP_ARMS = (
    "by hand",
    "instrument()",
    'instrument(backward_mode="span")',
    "plain + grad_fn pre-hook",
    "plain + pre-hook + queue_callback",
)


def step_extra(arms: dict[str, list[float]], arm: str) -> str:
    """An arm's extra CPU per step over the plain loop, with its 95 % interval."""
    diffs = [a - b for a, b in zip(arms[arm], arms["plain"])]
    low, high, _ = median_ci(diffs)
    return f"{fmt(statistics.median(diffs), True)} ({fmt(low, True)} ... {fmt(high, True)})"


def extra_before(before: dict[str, Any] | None, mechanism: str, arm: str) -> str:
    arms = (before or {}).get("times", {}).get(mechanism, {})
    if arm not in arms:
        return "-"
    ref = next(iter(arms.values()))
    return fmt(statistics.median(a - b for a, b in zip(arms[arm], ref)), True)


def fmt(ns: float, signed: bool = False) -> str:
    if abs(ns) >= 10_000:
        return f"{ns / 1000:+.1f} us" if signed else f"{ns / 1000:.1f} us"
    return f"{ns:+.0f} ns" if signed else f"{ns:.0f} ns"


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds per row (default 15)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the calls per round (0.2: a smoke run)")
    ap.add_argument("--only", default="torch,greenai,step", help="comma-separated subset of torch, greenai, step")
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"raw figures (default {RESULTS.name} in benchmarks/results/, not below --scale 1)",
    )
    ap.add_argument("--note", default="", help="the machine's state, quoted in the section (co-load, quiet or not)")
    ap.add_argument("--before", type=Path, default=None, help="a saved --json of an earlier run, shown beside")
    ap.add_argument("--label", default="", help="what this run measured (a commit), kept in its --json")
    ap.add_argument("--render", type=Path, default=None, help="render the section again from a saved --json file")
    add_write(ap, KEY)
    args = ap.parse_args(argv)
    before = json.loads(args.before.read_text()) if args.before else None
    if args.render is not None:
        section = render(json.loads(args.render.read_text()), before)
        print(section)
        if args.write:
            write_section(args.write, KEY, section)
        return 0
    import torch

    from greenai.tracking.tracker import Tracker

    torch.set_num_threads(1)
    chosen = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        with Tracker("instrument-mechanisms", ledger=Path(tmp) / "ledger.db", sample_hz=10.0) as run:
            mark = run.coload_mark()
            rows: list[Row] = []
            if "torch" in chosen:
                rows += torch_rows(run)
            if "greenai" in chosen:
                rows += greenai_rows(run)
            if "step" in chosen:
                rows += step_rows(run)
            times = measure(rows, args.rounds, args.scale)
            coload = run.coload_since(mark)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cmd = command(__file__, argv)
    state = f"co-load {coload:.2f} of {os.cpu_count()} CPUs" if coload is not None else "co-load unknown"
    note = f"{args.note}; {state}" if args.note else state
    data = {"date": date, "command": cmd, "note": note, "label": args.label, "coload": coload, "times": times}
    section = render(data, before)
    print(section)
    path = args.json or (RESULTS if args.scale >= 1 else None)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
    if args.write:
        write_section(args.write, KEY, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
