"""Communication as a phase of its own, with bytes: DDP's gradient all-reduce, timed and counted.

`instrument_ddp(ddp_model, run)` registers a DDP communication hook that wraps the hook DDP
would use (by default torch's own `allreduce_hook`: the same all-reduce, the same result).
Each bucket's all-reduce is timed from its launch (on the thread running backward) to its
completion (on the communication library's thread) as the `communication` phase, a phase
bound to no thread (tracking.phases.PhaseLane): while a bucket is in flight, each sampling
interval's energy is shared between it and the phases the threads are in, as between
threads. The run counts `comm.calls` and `comm.bytes`: the bytes this rank sends and
receives for a ring all-reduce of a bucket of S bytes over N ranks, 2 x 2 (N - 1) / N x S
(each rank sends and receives 2 (N - 1) / N x S: reduce-scatter, then all-gather; Patarasuk
and Yuan, J. Parallel Distrib. Comput. 69(2), 2009). `communication(run, nbytes)` does the
same around collectives a program calls itself.

The job (greenai.distributed) reports per rank and in total: the time with a collective in
flight, the bytes, the devices' energy apportioned to the phase, and the network energy of
the bytes at the I/O meter's J/byte (meters.io.NETWORK_J_PER_BYTE). That last figure is an
attribution, not an addition: bytes that cross a NIC are already in the host network
meter's reading, and bytes between ranks of one host (loopback, shared memory) never reach
a NIC, their cost being in the CPU's and GPU's energy.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from greenai.tracking.phases import PhaseLane

if TYPE_CHECKING:
    from greenai.tracking.tracker import Tracker

COMM_PHASE = "communication"
BYTES_COUNTER = "comm.bytes"
CALLS_COUNTER = "comm.calls"

_lanes: weakref.WeakKeyDictionary[Tracker, PhaseLane] = weakref.WeakKeyDictionary()
_lanes_lock = threading.Lock()


def lane_of(run: Tracker) -> PhaseLane:
    """The run's communication phase (one per run)."""
    with _lanes_lock:
        lane = _lanes.get(run)
        if lane is None:
            lane = _lanes[run] = run.lane(COMM_PHASE)
        return lane


def comm_seconds(run: Tracker) -> float:
    """Wall time so far with a collective in flight (0 if none was ever timed)."""
    with _lanes_lock:
        lane = _lanes.get(run)
    return lane.open_s if lane is not None else 0.0


def ring_allreduce_bytes(payload_bytes: int, world_size: int) -> float:
    """Bytes one rank sends plus receives in a ring all-reduce of `payload_bytes`."""
    if world_size <= 1:
        return 0.0
    return 2 * 2 * (world_size - 1) / world_size * payload_bytes


def comm_hook(run: Tracker, inner: Callable[[Any, Any], Any] | None = None) -> Callable[[Any, Any], Any]:
    """A DDP communication hook: `inner(state, bucket)` (torch's `allreduce_hook` by
    default) timed as the run's `communication` phase and counted in bytes."""
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    wrapped = inner if inner is not None else default_hooks.allreduce_hook
    lane = lane_of(run)

    def hook(state: Any, bucket: Any) -> Any:
        tensor = bucket.buffer()
        group = state if state is not None else dist.group.WORLD
        nbytes = ring_allreduce_bytes(tensor.numel() * tensor.element_size(), dist.get_world_size(group))
        lane.begin()
        try:
            future = wrapped(state, bucket)
        except BaseException:
            lane.end()
            raise

        def done(fut: Any) -> Any:
            try:
                return fut.value()
            finally:
                lane.end()
                _count(run, nbytes)

        return future.then(done)

    # DDP checks the annotations it can see; this module's are strings (postponed), so none
    hook.__annotations__ = {}
    return hook


def instrument_ddp(
    ddp_model: Any, run: Tracker, *, state: Any = None, inner: Callable[[Any, Any], Any] | None = None
) -> None:
    """Time and count `ddp_model`'s gradient all-reduce as the run's `communication` phase
    (a DDP model takes one communication hook, registered before its first backward)."""
    ddp_model.register_comm_hook(state, comm_hook(run, inner))


@contextlib.contextmanager
def communication(run: Tracker, nbytes: float = 0.0) -> Iterator[None]:
    """`with communication(run, nbytes):` around collectives the program calls itself: the
    block is timed as the `communication` phase and `nbytes` counted."""
    lane = lane_of(run)
    lane.begin()
    try:
        yield
    finally:
        lane.end()
        _count(run, nbytes)


def _count(run: Tracker, nbytes: float) -> None:
    """Count a collective: `tally`, never a budget safe point (this runs in the communication
    library's callbacks, and a BudgetExceeded taken here would be lost to the program)."""
    try:
        run.tally(CALLS_COUNTER)
        if nbytes:
            run.tally(BYTES_COUNTER, nbytes)
    except Exception:  # noqa: BLE001 - counting must never fail a collective
        pass
