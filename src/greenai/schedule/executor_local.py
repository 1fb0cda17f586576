"""`LocalExecutor`: jobs as subprocesses on this machine, each tracked by its own Tracker.

A pool of `max_parallel` threads: each thread starts one job's process and tracks its
process tree from here (as `greenai run -- CMD` does), so a job that crashes, exits non-zero
or is killed still leaves a `failed` run with the energy it used.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from greenai.config import Config, load_config
from greenai.errors import ConfigError
from greenai.schedule.executor import (
    JobHandle,
    JobOutcome,
    run_job_tracked,
    this_host,
    tracking_config,
)
from greenai.schedule.jobs import Job

LOCAL_NODE = "local"  # the one node of a local batch, as policies name it


class LocalExecutor:
    """Run jobs here, at most `max_parallel` at a time (default: the usable CPUs)."""

    name = "local"

    def __init__(self, max_parallel: int | None = None, config: Config | None = None,
                 log_dir: Path | None = None) -> None:
        if max_parallel is None:
            max_parallel = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count() or 1)
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise ConfigError(f"max_parallel must be an integer >= 1 (got {max_parallel!r})")
        self.max_parallel = max_parallel
        self.config = config if config is not None else load_config()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._pool = cf.ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="greenai-job")
        self._host = this_host()

    def capacity(self) -> int:
        return self.max_parallel

    def node_id(self, name: str) -> str:
        """This machine, the only node here: `local` or its host name."""
        if name not in (LOCAL_NODE, self._host):
            raise ConfigError(f"node {name!r}: the local executor runs jobs on this machine only "
                              f"({LOCAL_NODE!r} or {self._host!r}); use --executor ray for several nodes")
        return self._host

    def submit(self, job: Job, *, ledger_path: Path, tags: Mapping[str, str] = {},
               node: str | None = None) -> JobHandle:
        if node is not None:
            self.node_id(node)
        config = tracking_config(self.config, ledger_path)
        all_tags = {"executor": self.name, **tags}
        submitted = time.time()
        future = self._pool.submit(
            lambda: run_job_tracked(job, config, tags=all_tags, node=self._host,
                                    log_dir=self.log_dir).outcome)
        return JobHandle(job, submitted, future)

    def wait(self, handles: Sequence[JobHandle], timeout_s: float | None = None) -> list[tuple[JobHandle, JobOutcome]]:
        by_future = {h.token: h for h in handles}
        done, _ = cf.wait(by_future, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        finished = []
        for future in done:
            handle = by_future[future]
            try:
                outcome = future.result()
            except Exception as e:  # a bug in the tracking path: the job still gets a record
                outcome = JobOutcome(handle.job.job_id, "failed", None, None, "", None,
                                     error=f"internal error: {type(e).__name__}: {e}", node=self._host)
            finished.append((handle, outcome))
        return finished

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
