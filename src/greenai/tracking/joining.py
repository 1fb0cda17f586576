"""How a run joins a distributed job: the hook between the tracker and greenai.distributed.

greenai.distributed is a layer above the tracker, so the tracker cannot import it: it
registers itself here when imported (`greenai.track` and `greenai.Tracker` import it), and
the tracker asks `joiner()` for it. A `Membership` is one rank's part in a job: it chooses
which of the discovered meters this rank reads (each physical device read by one rank), is
told about every tick (to publish the rank's totals), and at the end adds up the job. Joining
(`joiner()(...)` and `select`) holds the tracker's start for a bounded time; a rank whose store
did not answer by then is given a membership that is not joined (its run is its own, with a
note) rather than an error.

`distributed=` of `greenai.track`: True (join, or fail at start if greenai.distributed was
never imported), False (never), None (the default: join when this process is a rank of a
launch, `RANK`/`WORLD_SIZE` set with more than one rank or torch.distributed initialised,
unless `GREENAI_DISTRIBUTED` says no), or an object that greenai.distributed understands (a
Ray job's worker spec).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from greenai.config import FALSE_WORDS, Config
from greenai.ledger.records import RunSnapshot
from greenai.meters.base import Meter

if TYPE_CHECKING:
    from greenai.ledger.distributed import JobRecord
    from greenai.ledger.store import Ledger
    from greenai.meters.process import ProcessScope

ENV_SWITCH = "GREENAI_DISTRIBUTED"  # 0/false/no/off: never join a job automatically


class Membership(Protocol):
    """One rank's part in a distributed job (implemented by greenai.distributed)."""

    job_id: str
    rank: int

    def select(self, meters: list[Meter], scope: ProcessScope, config: Config) -> list[Meter]:
        """The meters this rank reads, out of those discovered (the others are closed)."""

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for the run's environment record (`environment["distributed"]`)."""

    def started(self, run_id: str, run_name: str, started_at: float, ledger: Ledger | None) -> None:
        """The rank's run has begun (and is in `ledger`, when there is one)."""

    def observe(self, snapshot: Callable[[], RunSnapshot]) -> None:
        """Sampler thread, after each tick: when due, hand the rank's totals over to be
        published on another thread. Never waits on a store or a lock; cheap when not due."""

    def hold_sigterm(self) -> None:
        """The run is ending (main thread): hold SIGTERM back until `ended` has written the job
        (a launcher that lost a rank sends it to the others), for a bounded time."""

    def release_sigterm(self) -> None:
        """Deliver a SIGTERM held back, if one came (idempotent; `ended` does it too): the
        tracker calls it once its end is over, whether or not `ended` was reached."""

    def ended(self, status: str, snapshot: RunSnapshot) -> tuple[JobRecord | None, tuple[str, ...]]:
        """The run has ended: publish the final totals, and on the job's writer add up the
        job (bounded by the aggregation timeout). Returns the job (or None) and notes."""

    def detach(self) -> None:
        """In a forked child: forget everything without touching it."""


Joiner = Callable[[Any, Any], "Membership | None"]
_joiners: list[Joiner] = []


def set_joiner(joiner: Joiner) -> None:
    """Register greenai.distributed's joiner (called by it on import)."""
    _joiners[:] = [joiner]


def joiner() -> Joiner | None:
    return _joiners[0] if _joiners else None


def switched_off(environ: Mapping[str, str]) -> bool:
    """GREENAI_DISTRIBUTED set to 0, false, no, n or off (empty is unset)."""
    value = str(environ.get(ENV_SWITCH, "")).strip().lower()
    return bool(value) and value in FALSE_WORDS


def launched_as_rank(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process looks like one rank of several: `WORLD_SIZE` > 1 with `RANK` or
    `LOCAL_RANK` set, or torch.distributed initialised with more than one rank (only looked at
    when torch.distributed is already imported), unless GREENAI_DISTRIBUTED turns it off."""
    env = os.environ if environ is None else environ
    if switched_off(env):
        return False
    try:
        world = int(env.get("WORLD_SIZE", "0"))
    except ValueError:
        world = 0
    if world > 1 and ("RANK" in env or "LOCAL_RANK" in env):
        return True
    dist = sys.modules.get("torch.distributed")
    try:
        return bool(dist is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)
    except Exception:  # a half-initialised torch must not stop a run
        return False
