"""Who this rank is (from the launcher's environment or torch.distributed) and how the job is
joined (`Join`, the `distributed=` argument of greenai.track when defaults do not fit)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from greenai.errors import ConfigError
from greenai.hardware.node import node_id

if TYPE_CHECKING:
    from greenai.distributed.channel import KeyValue

AGGREGATION_TIMEOUT_S = 10.0  # the writer waits this long at most at the end for the ranks' final totals
JOIN_TIMEOUT_S = 10.0  # a rank waits this long at most at start for the lower ranks of its node
PUBLISH_INTERVAL_S = 1.0  # each rank publishes its totals this often (the writer writes the job as often)


@dataclass(frozen=True)
class Join:
    """How a run joins a distributed job: `greenai.track(..., distributed=Join(...))`.

    Every field is optional: the rank, world size and job id come from the launcher
    (torchrun's RANK, WORLD_SIZE, LOCAL_RANK, TORCHELASTIC_RUN_ID; Ray Train's too) or from
    torch.distributed. `writer` is "rank0" (rank 0 adds up and writes the job) or "driver"
    (a Ray driver does: greenai.distributed.ray). `store` is a key-value transport shared by
    the ranks (greenai.distributed.channel), by default the launcher's TCP store
    (MASTER_ADDR:MASTER_PORT), else the ledger."""

    job_id: str | None = None
    rank: int | None = None
    world_size: int | None = None
    local_rank: int | None = None
    aggregation_timeout_s: float = AGGREGATION_TIMEOUT_S
    join_timeout_s: float = JOIN_TIMEOUT_S
    publish_interval_s: float = PUBLISH_INTERVAL_S
    writer: str = "rank0"
    store: KeyValue | None = None  # None: the launcher's store, else the ledger
    id_source: str = ""

    def __post_init__(self) -> None:
        for key in ("aggregation_timeout_s", "join_timeout_s", "publish_interval_s"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 3600):
                raise ConfigError(f"Join({key}={value!r}): a number of seconds > 0 and <= 3600")
        if self.writer not in ("rank0", "driver"):
            raise ConfigError(f"Join(writer={self.writer!r}): 'rank0' or 'driver'")


@dataclass(frozen=True)
class RankEnv:
    """This process as one rank of a job."""

    rank: int
    world_size: int
    local_rank: int | None  # rank among the job's processes on this node (None: not known)
    local_world_size: int | None
    node: str  # hardware.node.node_id(): the machine whose devices this rank may read
    host: str
    pid: int
    elastic_run_id: str | None  # TORCHELASTIC_RUN_ID (None when unset or "none")
    restart: int  # TORCHELASTIC_RESTART_COUNT
    master: tuple[str, int] | None  # MASTER_ADDR:MASTER_PORT, where torchrun's store listens


def _int(env: Mapping[str, str], key: str) -> int | None:
    raw = env.get(key)
    if raw is None or not raw.strip():
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not an integer") from None


def rank_env(join: Join | None = None, environ: Mapping[str, str] | None = None) -> RankEnv:
    """This rank from `join`'s fields, else the launcher's variables, else torch.distributed
    (when initialised). ConfigError when the rank or world size cannot be told."""
    env = os.environ if environ is None else environ
    join = join or Join()
    rank = join.rank if join.rank is not None else _int(env, "RANK")
    world = join.world_size if join.world_size is not None else _int(env, "WORLD_SIZE")
    dist = sys.modules.get("torch.distributed")
    if (rank is None or world is None) and dist is not None:
        try:
            if dist.is_available() and dist.is_initialized():
                rank = dist.get_rank() if rank is None else rank
                world = dist.get_world_size() if world is None else world
        except Exception:  # noqa: BLE001 - a half-initialised group tells nothing
            pass
    if rank is None or world is None:
        raise ConfigError(
            "a distributed run needs its rank and world size: launch with torchrun (RANK, WORLD_SIZE), "
            "initialise torch.distributed first, or pass distributed=Join(rank=..., world_size=...)"
        )
    if not 0 <= rank < world:
        raise ConfigError(f"rank {rank} is not in 0..{world - 1} (world size {world})")
    local = join.local_rank if join.local_rank is not None else _int(env, "LOCAL_RANK")
    run_id = env.get("TORCHELASTIC_RUN_ID")
    port = _int(env, "MASTER_PORT")
    addr = env.get("MASTER_ADDR")
    return RankEnv(
        rank=rank,
        world_size=world,
        local_rank=local,
        local_world_size=_int(env, "LOCAL_WORLD_SIZE"),
        node=node_id(),
        host=socket.gethostname(),
        pid=os.getpid(),
        elastic_run_id=run_id if run_id and run_id.strip().lower() != "none" else None,
        restart=_int(env, "TORCHELASTIC_RESTART_COUNT") or 0,
        master=(addr, port) if addr and port else None,
    )
