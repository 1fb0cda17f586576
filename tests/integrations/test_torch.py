"""instrument(model, optimizer, run) on real PyTorch training loops: phases and counts in the
ledger, nesting under the user's phases, budgets at the optimizer step, and clean removal."""

from __future__ import annotations

import copy
import inspect
import io
import threading
import time
import weakref

import pytest

torch = pytest.importorskip("torch")
from tests.integrations.helpers import calls, cpu, joules, paths, sim_config, stored  # noqa: E402
from torch import nn  # noqa: E402

from greenai.errors import BudgetExceeded  # noqa: E402
from greenai.integrations.torch import instrument  # noqa: E402
from greenai.tracking.budget import Budget, BudgetBreach  # noqa: E402
from greenai.tracking.tracker import Tracker  # noqa: E402

BATCH = 8


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Tiny models on a shared 2-core machine."""


def make() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    return model, torch.optim.SGD(model.parameters(), lr=0.01)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, accumulate: int = 1) -> None:
    for _ in range(accumulate):
        x, y = torch.randn(BATCH, 16), torch.randint(0, 4, (BATCH,))
        nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad()


def hooks_of(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[int]:
    """What instrument() puts on: a forward on the instance and the optimizer's two step hooks
    (and no module hook, which would take the model off nn.Module.__call__'s fast path)."""
    return [
        int("forward" in model.__dict__),
        len(model._forward_pre_hooks),
        len(model._forward_hooks),
        len(optimizer._optimizer_step_pre_hooks),
        len(optimizer._optimizer_step_post_hooks),
    ]


def test_phases_and_counts_of_a_training_loop_reach_the_ledger(tmp_path) -> None:
    model, opt = make()
    with Tracker("loop", config=sim_config(tmp_path), meters=[cpu()]) as run:
        hooks = instrument(model, opt, run)
        for _ in range(12):
            train_step(model, opt)
        with torch.no_grad():
            model(torch.randn(5, 16))  # an evaluation forward
        hooks.remove()
    record = stored(tmp_path, run.run_id)
    assert paths(record) >= {"forward", "backward", "optimizer_step"}
    assert (calls(record, "forward"), calls(record, "backward"), calls(record, "optimizer_step")) == (13, 12, 12)
    assert (hooks.forwards, hooks.backwards, hooks.steps) == (13, 12, 12)
    assert record.snapshot.counters == {"samples": 12 * BATCH, "steps": 12, "eval_samples": 5}
    result = run.result
    assert result is not None
    assert result.phase_duration_s("backward") > 0 and result.phase_energy_j("backward") > 0
    assert result.energy_per("samples") == pytest.approx(result.energy_j / (12 * BATCH))


def test_gradient_accumulation_has_a_forward_and_backward_per_micro_batch(tmp_path) -> None:
    model, opt = make()
    with Tracker("accumulate", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run):
            for _ in range(5):
                train_step(model, opt, accumulate=3)
    record = stored(tmp_path, run.run_id)
    assert (calls(record, "forward"), calls(record, "backward"), calls(record, "optimizer_step")) == (15, 15, 5)
    assert record.snapshot.counters == {"samples": 15 * BATCH, "steps": 5}


def test_phases_nest_under_the_users_own_phases(tmp_path) -> None:
    model, opt = make()
    with Tracker("nested", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run):
            for _ in range(4):
                with run.phase("train_step"):
                    train_step(model, opt)
            with run.phase("evaluation"), torch.no_grad():
                model(torch.randn(3, 16))
    record = stored(tmp_path, run.run_id)
    assert {"train_step/forward", "train_step/backward", "train_step/optimizer_step", "evaluation/forward"} <= paths(
        record
    )
    assert "forward" not in paths(record) and "backward/forward" not in paths(record)
    assert calls(record, "train_step/backward") == 4


def test_removing_takes_every_hook_off_and_nothing_is_recorded_after(tmp_path) -> None:
    model, opt = make()
    before = hooks_of(model, opt)
    with Tracker("removed", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run) as hooks:
            assert hooks_of(model, opt) == [b + d for b, d in zip(before, [1, 0, 0, 1, 1])]
            train_step(model, opt)
            with pytest.raises(ValueError, match="already instrumented"):
                instrument(model, opt, run)
        assert hooks.removed and hooks_of(model, opt) == before
        hooks.remove()  # idempotent
        counted = run.counters()
        for _ in range(3):
            train_step(model, opt)
        assert run.counters() == counted
        again = instrument(model, None, run)  # allowed once the first handle is removed; forwards only
        model(torch.randn(2, 16))
        again.remove()
    record = stored(tmp_path, run.run_id)
    assert (calls(record, "forward"), calls(record, "backward"), calls(record, "optimizer_step")) == (2, 1, 1)
    assert record.snapshot.counters == {"samples": BATCH + 2, "steps": 1}


def test_a_forward_that_raises_still_leaves_its_phase(tmp_path) -> None:
    class Fails(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fail = True
            self.linear = nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.fail:
                raise RuntimeError("bad batch")
            return self.linear(x)

    model = Fails()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Tracker("raises", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run):
            with pytest.raises(RuntimeError, match="bad batch"):
                model(torch.randn(BATCH, 16))
            model.fail = False
            train_step(model, opt)
    record = stored(tmp_path, run.run_id)
    assert paths(record) <= {"(no phase)", "forward", "backward", "optimizer_step"}  # no forward/forward
    assert calls(record, "forward") == 2


def test_a_stop_budget_fires_after_the_optimizer_step_with_on_budget_first(tmp_path) -> None:
    seen: list[str] = []

    def on_budget(run: Tracker, breach: BudgetBreach) -> None:
        seen.append(f"on_budget at step {hooks.steps}")

    model, opt = make()
    budget = Budget(energy_kwh=joules(20.0), action="stop")  # 20 ms at 1 kW
    with pytest.raises(BudgetExceeded):
        with Tracker(
            "stop", config=sim_config(tmp_path), meters=[cpu(1000.0)], budgets=[budget], on_budget=on_budget
        ) as run:
            hooks = instrument(model, opt, run)
            for _ in range(1000):
                x, y = torch.randn(BATCH, 16), torch.randint(0, 4, (BATCH,))
                nn.functional.cross_entropy(model(x), y).backward()
                before = [p.detach().clone() for p in model.parameters()]
                try:
                    opt.step()
                except BudgetExceeded:
                    seen.append("raised from optimizer.step()")
                    updated = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
                    seen.append(f"parameters updated: {updated}")
                    raise
                opt.zero_grad()
                time.sleep(0.002)
    assert seen == [f"on_budget at step {hooks.steps}", "raised from optimizer.step()", "parameters updated: True"]
    hooks.remove()
    record = stored(tmp_path, run.run_id)
    assert record.status == "interrupted"
    assert record.snapshot.counters["steps"] == hooks.steps < 1000
    assert record.snapshot.counters["greenai.budget.stop.energy_kwh"] == 1.0
    assert calls(record, "optimizer_step") == hooks.steps  # its phase was left before the raise


def test_steps_counted_inside_their_phase_are_never_a_safe_point(tmp_path) -> None:
    model, opt = make()
    budget = Budget(energy_kwh=joules(5.0), action="stop")
    with Tracker("no-stop", config=sim_config(tmp_path), meters=[cpu(1000.0)], budgets=[budget]) as run:
        with instrument(model, opt, run, stop_at_steps=False):
            for _ in range(20):
                train_step(model, opt)
                time.sleep(0.002)
    result = run.result
    assert result is not None
    assert result.status == "completed" and result.stopped_by is None
    assert [b.quantity for b in result.budget_breaches] == ["energy_kwh"]  # fired, never acted on
    assert result.snapshot.counters["steps"] == 20


def test_span_mode_runs_the_backward_phase_from_the_forward_to_the_step(tmp_path) -> None:
    model, opt = make()
    with Tracker("span", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run, backward_mode="span") as hooks:
            for _ in range(6):
                train_step(model, opt)
            with torch.no_grad():
                model(torch.randn(2, 16))  # no grad: no span opened
    record = stored(tmp_path, run.run_id)
    assert (calls(record, "forward"), calls(record, "backward"), calls(record, "optimizer_step")) == (7, 6, 6)
    assert hooks.backwards == 6
    assert paths(record) <= {"(no phase)", "forward", "backward", "optimizer_step"}


def test_forwards_in_other_threads_and_phases_named_none_are_left_out(tmp_path) -> None:
    model, opt = make()
    with Tracker("threads", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run, optimizer_step=None, eval_samples=None) as hooks:
            train_step(model, opt)
            worker = threading.Thread(target=lambda: model(torch.randn(4, 16)))
            worker.start()
            worker.join()
            with torch.no_grad():
                model(torch.randn(3, 16))
    assert hooks.forwards == 2  # the training forward and the no-grad one; not the worker's
    record = stored(tmp_path, run.run_id)
    assert "optimizer_step" not in paths(record)
    assert record.snapshot.counters == {"samples": BATCH, "steps": 1}


def test_instrument_checks_its_arguments(tmp_path) -> None:
    model, opt = make()
    run = Tracker("args", config=sim_config(tmp_path), meters=[cpu()], store=False)
    with pytest.raises(TypeError, match="nn.Module"):
        instrument(object(), opt, run)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Optimizer"):
        instrument(model, object(), run)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Tracker"):
        instrument(model, opt, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backward_mode"):
        instrument(model, opt, run, backward_mode="sometimes")  # type: ignore[arg-type]


def test_the_forward_is_put_back_as_it_was_and_keeps_its_signature(tmp_path) -> None:
    model, opt = make()
    own = model.forward  # a forward the user put on the instance before instrumenting
    model.forward = own
    inner = nn.Linear(16, 4)
    with Tracker("forward", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(inner, None, run):
            assert inspect.signature(inner.forward) == inspect.signature(nn.Linear(1, 1).forward)
            assert not inner._forward_pre_hooks and not inner._forward_hooks
        assert "forward" not in inner.__dict__  # the class's forward again
        with instrument(model, opt, run):
            assert model.forward is not own
        assert model.forward is own
        train_step(model, opt)
    assert run.counters() == {}


def test_a_model_calling_itself_and_the_users_own_hooks(tmp_path) -> None:
    class Recursive(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(16, 16)

        def forward(self, x: torch.Tensor, again: bool = True) -> torch.Tensor:
            return self(self.linear(x), again=False) if again else self.linear(x)

    model = Recursive()
    seen: list[int] = []
    model.register_forward_hook(lambda module, args, output: seen.append(len(output)))
    with Tracker("recursive", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, None, run) as hooks:
            model(torch.randn(BATCH, 16)).sum().backward()
    assert hooks.forwards == 1 and hooks.backwards == 1
    assert seen == [BATCH, BATCH]  # the user's hook fires for both calls
    record = stored(tmp_path, run.run_id)
    assert calls(record, "forward") == 1 and "forward/forward" not in paths(record)
    assert record.snapshot.counters == {"samples": BATCH}


def test_a_copy_of_an_instrumented_model_is_plain_and_records_nothing(tmp_path) -> None:
    model, opt = make()
    x = torch.randn(BATCH, 16)
    with Tracker("copies", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run) as hooks:
            twin = copy.deepcopy(model)
            with torch.no_grad():
                next(twin.parameters()).add_(1.0)  # the copy computes with its own parameters
            assert not torch.equal(twin(x), model(x))
            buffer = io.BytesIO()
            torch.save(model, buffer)
            buffer.seek(0)
            loaded = torch.load(buffer, weights_only=False)
            assert torch.equal(loaded(x), model(x))
            weights = io.BytesIO()
            torch.save(model.state_dict(), weights)
            weights.seek(0)
            assert list(torch.load(weights)) == list(make()[0].state_dict())
            for other in (twin, loaded):
                other(x).sum().backward()
                # plain: none of greenai's attributes on the copy's instance
                assert not {"forward", "_replicate_for_data_parallel", "__getstate__"} & set(other.__dict__)
                assert other._replicate_for_data_parallel().forward.__self__ is not model
            assert (hooks.forwards, hooks.backwards) == (2, 0)  # the two model(x) only, no copy's
            gone = copy.deepcopy(model)
            freed = weakref.ref(gone)
            del gone  # no reference cycle through a method bound to the copy: freed at once
            assert freed() is None
            with instrument(twin, None, run) as twin_hooks:  # a copy is a model of its own
                twin(x)
            assert twin_hooks.forwards == 1
            train_step(model, opt)
        assert hooks.forwards == 3
    assert run.counters() == {"samples": 4 * BATCH, "steps": 1}  # model x 3, the instrumented twin x 1


def test_a_data_parallel_replica_gets_the_forward_the_model_had(tmp_path) -> None:
    # nn.parallel.replicate (DataParallel over several GPUs) makes each replica with
    # module._replicate_for_data_parallel(), a copy of the instance's __dict__: greenai's
    # forward there would run the original model (its parameters, its device)
    model, opt = make()
    x = torch.randn(BATCH, 16)
    with Tracker("replicas", config=sim_config(tmp_path), meters=[cpu()]) as run:
        with instrument(model, opt, run) as hooks:
            replica = model._replicate_for_data_parallel()
            assert "forward" not in replica.__dict__ and "_replicate_for_data_parallel" not in replica.__dict__
            assert replica.forward.__self__ is replica
            assert torch.equal(replica(x), model(x))
            assert hooks.forwards == 1  # model(x) only
        assert "_replicate_for_data_parallel" not in model.__dict__ and "forward" not in model.__dict__
        assert model._replicate_for_data_parallel().forward.__self__ is not model


def test_a_forward_wrapped_again_by_the_user_stays_after_remove(tmp_path) -> None:
    model, opt = make()
    wrapped: list[int] = []
    with Tracker("rewrapped", config=sim_config(tmp_path), meters=[cpu()]) as run:
        hooks = instrument(model, opt, run)
        ours = model.forward

        def theirs(*args: object, **kwargs: object) -> torch.Tensor:
            wrapped.append(1)
            return ours(*args, **kwargs)

        model.forward = theirs
        train_step(model, opt)
        hooks.remove()
        assert model.forward is theirs
        train_step(model, opt)  # theirs still runs; greenai's, under it, records nothing more
        hooks.remove()
        again = instrument(model, None, run)  # a new handle wraps theirs
        model(torch.randn(2, 16))
        again.remove()
        assert model.forward is theirs
    assert len(wrapped) == 3 and (hooks.forwards, hooks.steps) == (1, 1)
    assert run.counters() == {"samples": BATCH + 2, "steps": 1}
