"""`LocalExecutor`: jobs as subprocesses on this machine, each tracked by its own Tracker.

One thread per submitted job starts its process and tracks its process tree from here (as
`greenai run -- CMD` does), so a job that crashes, exits non-zero or is killed still leaves a
`failed` run with the energy it used. Every submitted job starts at once: the batch runner
keeps at most `capacity()` of them running, and a paused job (`pause`: SIGSTOP to its
process group, see `job_control`) does not count. Shutting down ends the jobs still
running (SIGTERM, then SIGKILL after a grace period): they run in sessions of their own, so
the terminal's Ctrl-C does not reach them directly. If this process dies without shutting
down (SIGKILL), the jobs' groups die with it (`job_control.GroupGuard`, and the kernel's
parent-death signal for each job's first process).

A job asking for more CPUs than this process may use (the smaller of its affinity mask and its
cgroup CPU quota) or more GPUs than NVML sees here (within CUDA_VISIBLE_DEVICES) can never run
as asked: `check_job` refuses it with the machine's figures and what limits them, at submission
and, through `run_batch`, before a batch starts.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from greenai.config import Config, load_config
from greenai.errors import ConfigError, NvmlError
from greenai.hardware.cpu import cpu_allowance, usable_threads
from greenai.hardware.nvml import NvmlSession
from greenai.schedule.executor import (
    JobHandle,
    JobOutcome,
    run_job_tracked,
    this_host,
    tracking_config,
)
from greenai.schedule.job_control import GroupGuard, JobControl
from greenai.schedule.jobs import Job

LOCAL_NODE = "local"  # the one node of a local batch, as policies name it
SHUTDOWN_GRACE_S = 5.0  # SIGTERM to SIGKILL when a batch is interrupted


class LocalExecutor:
    """Run jobs here; `max_parallel` (default: the usable CPUs as a whole number,
    `hardware.cpu.usable_threads`: a cgroup quota of 1.5 CPUs gives 2) is the capacity the batch
    runner keeps running at once; `gpus` the GPUs jobs may ask for in all (default: those NVML
    sees, counted on first use)."""

    name = "local"
    supports_pause = True

    def __init__(
        self,
        max_parallel: int | None = None,
        config: Config | None = None,
        log_dir: Path | None = None,
        gpus: int | None = None,
    ) -> None:
        if max_parallel is None:
            max_parallel = usable_threads()
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise ConfigError(f"max_parallel must be an integer >= 1 (got {max_parallel!r})")
        self.max_parallel = max_parallel
        self.config = config if config is not None else load_config()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
            raise ConfigError(f"gpus must be an integer >= 0 (got {gpus!r})")
        self._gpus: tuple[int, str] | None = None if gpus is None else (gpus, "as given")
        self._host = this_host()
        self._controls: dict[cf.Future[JobOutcome], JobControl] = {}
        self._threads: list[threading.Thread] = []
        self._guard = GroupGuard()  # started with the first job

    def capacity(self) -> int:
        return self.max_parallel

    def check_job(self, job: Job) -> None:
        """Refuse (ConfigError) a job asking for more CPUs or GPUs than this machine has. CPUs
        are judged by the whole count a job can be given (a 1.5-CPU quota runs two threads, a
        0.5-CPU one runs one): a job of the default 1 CPU always runs, if slowly."""
        allowed = cpu_allowance()
        if job.cpus > allowed.threads:
            raise ConfigError(
                f"job {job.job_id!r} asks for {job.cpus:g} CPUs; this machine has {allowed.cpus:g} usable "
                f"({allowed.limited_by()}); use --executor ray for a cluster"
            )
        if job.gpus > 0:
            if self._gpus is None:
                self._gpus = local_gpus()
            gpus, how = self._gpus
            if job.gpus > gpus:
                raise ConfigError(f"job {job.job_id!r} asks for {job.gpus:g} GPUs; this machine has {gpus} ({how})")

    def node_id(self, name: str) -> str:
        """This machine, the only node here: `local` or its host name."""
        if name not in (LOCAL_NODE, self._host):
            raise ConfigError(
                f"node {name!r}: the local executor runs jobs on this machine only "
                f"({LOCAL_NODE!r} or {self._host!r}); use --executor ray for several nodes"
            )
        return self._host

    def node_slots(self, name: str) -> int:
        """Jobs this machine runs at once: `max_parallel`."""
        self.node_id(name)
        return self.max_parallel

    def submit(
        self, job: Job, *, ledger_path: Path, tags: Mapping[str, str] = {}, node: str | None = None
    ) -> JobHandle:
        if node is not None:
            self.node_id(node)
        self.check_job(job)
        config = tracking_config(self.config, ledger_path)
        all_tags = {"executor": self.name, **tags}
        submitted = time.time()
        future: cf.Future[JobOutcome] = cf.Future()
        control = JobControl(self._guard)

        def run() -> None:
            future.set_running_or_notify_cancel()
            try:
                future.set_result(
                    run_job_tracked(
                        job, config, tags=all_tags, node=self._host, log_dir=self.log_dir, control=control
                    ).outcome
                )
            except BaseException as e:  # noqa: BLE001 — handed to wait(), which records it
                future.set_exception(e)

        thread = threading.Thread(target=run, name=f"greenai-job-{job.job_id}", daemon=True)
        self._controls[future] = control
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return JobHandle(job, submitted, future)

    def pause(self, handle: JobHandle) -> None:
        """Stop the job's processes (SIGSTOP to its group) until `resume`."""
        self._controls[handle.token].pause()

    def resume(self, handle: JobHandle) -> None:
        self._controls[handle.token].resume()

    def wait(self, handles: Sequence[JobHandle], timeout_s: float | None = None) -> list[tuple[JobHandle, JobOutcome]]:
        by_future = {h.token: h for h in handles}
        done, _ = cf.wait(by_future, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        finished = []
        for future in done:
            handle = by_future[future]
            try:
                outcome = future.result()
            except Exception as e:  # a bug in the tracking path: the job still gets a record
                outcome = JobOutcome.failed(
                    handle.job.job_id, f"internal error: {type(e).__name__}: {e}", node=self._host
                )
            finished.append((handle, outcome))
            self._controls.pop(future, None)
        return finished

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """End the jobs still running or paused (an interrupted batch): SIGTERM to each job's
        group (a job may checkpoint on it), SIGKILL to those still there after `grace_s`;
        then wait for their records."""
        for control in self._controls.values():
            control.terminate()
        deadline = time.monotonic() + grace_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for control in self._controls.values():
            control.kill()  # a no-op for jobs that have ended
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._guard.close()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def local_gpus() -> tuple[int, str]:
    """The GPUs jobs here can use and how that was found: NVML's count, within
    CUDA_VISIBLE_DEVICES when it is set; 0 when NVML cannot be used (the reason says why)."""
    try:
        session = NvmlSession()
    except NvmlError as e:
        return 0, f"NVML: {e}"
    try:
        count, how = session.device_count(), "seen by NVML"
    except NvmlError as e:
        count, how = 0, f"NVML: {e}"
    finally:
        session.close()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        listed = [d for d in visible.split(",") if d.strip()]
        if "-1" in (d.strip() for d in listed):  # CUDA stops at the first invalid entry
            listed = listed[: [d.strip() for d in listed].index("-1")]
        if len(listed) < count:
            count, how = len(listed), f"CUDA_VISIBLE_DEVICES={visible!r}"
    return count, how
