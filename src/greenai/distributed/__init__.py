"""Distributed training counted once: every rank's tracker joined into one job.

`greenai.track(...)` in each rank of a `torchrun` launch (or wherever RANK/WORLD_SIZE are set,
or torch.distributed is initialised) joins the rank's run to one job: one job id for all
ranks, node-wide devices (RAPL, GPUs by UUID, the host's network) read by one rank per node,
each rank's own process tree by itself, and the job's totals written by rank 0. See
docs/distributed.md. `distributed=False` (or GREENAI_DISTRIBUTED=0) keeps runs apart;
`distributed=Join(...)` sets the job id, ranks and timeouts.

Importing this package registers it with the tracker (tracking/joining.py); `greenai.track`
and `greenai.Tracker` import it. It imports no torch until a rank joins.
"""

from __future__ import annotations

from greenai.distributed.aggregate import NodeTotal, aggregate, node_totals
from greenai.distributed.comm import communication, instrument_ddp
from greenai.distributed.membership import join as _join
from greenai.distributed.read import list_jobs, read_job
from greenai.distributed.spec import Join
from greenai.distributed.table import format_job
from greenai.ledger.distributed import JobRecord, RankReport
from greenai.tracking.joining import set_joiner

set_joiner(_join)

__all__ = [
    "Join",
    "JobRecord",
    "NodeTotal",
    "RankReport",
    "aggregate",
    "communication",
    "format_job",
    "instrument_ddp",
    "list_jobs",
    "node_totals",
    "read_job",
]
