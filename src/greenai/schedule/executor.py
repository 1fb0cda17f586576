"""What an executor is, and how any executor runs one job where it lands: under its own tracker.

Command jobs run as a subprocess tracked like `greenai run -- CMD` (the tracker follows the
process tree by pid). Callable jobs (`module:function`) run either in a fresh
`python -c` subprocess (the local executor: one process per job, the parent tracks it) or
in the calling process (a Ray worker, which is already a process of its own).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from greenai.config import Config
from greenai.factories import load_callable
from greenai.hardware import parent_death
from greenai.ledger.records import RunStatus
from greenai.schedule.job_control import JobControl
from greenai.schedule.jobs import Job
from greenai.tracking.result import RunResult
from greenai.tracking.tracker import Tracker

ERROR_TAIL_CHARS = 2000

# A job's process first asks the kernel to kill it when the thread that started it exits
# (hardware/parent_death.py, loaded alone from its file: no import of greenai), so a job never
# outlives its scheduler killed by SIGKILL. Then it waits at a gate (a pipe the parent writes
# once its tracker runs), so all of the job's work is tracked. argv starts with [gate fd,
# parent pid, parent_death.py or ""]. Python's start-up before the gate is executor overhead.
_GATE = """\
import os, sys
if sys.argv[3]:
    _death = {"__name__": "greenai_parent_death"}
    with open(sys.argv[3]) as _source:
        exec(compile(_source.read(), sys.argv[3], "exec"), _death)
    _death["die_with_parent"](int(sys.argv[2]))
    del _death, _source
if not os.read(int(sys.argv[1]), 1):
    sys.exit(1)  # the parent went away before starting the job
os.close(int(sys.argv[1]))
"""
# a command job: the gate process becomes the command (same pid, so the tracker follows it).
# Ctrl-C while it is held ends it as it would end the command (SIGINT's default action, which the
# exec keeps), not with Python's KeyboardInterrupt traceback; an ignored SIGINT stays ignored.
COMMAND_BOOTSTRAP = (
    """\
import signal
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
"""
    + _GATE
    + """\
try:
    os.execvp(sys.argv[4], sys.argv[4:])
except OSError as e:
    sys.exit(f"cannot execute {sys.argv[4]}: {e}")
"""
)
# A callable job: argv = [the gate's three, MODULE:FUNCTION, kwargs JSON, value file, greenai's
# import root]. greenai.factories is imported before the gate (executor overhead; ~10 ms) and
# loads the function after it (the job's own imports are the job's work), by the same rule as
# everywhere else. The import root is only used if this interpreter cannot find greenai.
CALLABLE_BOOTSTRAP = (
    """\
import sys
try:
    from greenai.factories import load_callable
except ImportError:
    sys.path.append(sys.argv[7])
    from greenai.factories import load_callable
from greenai.errors import GreenAIError
"""
    + _GATE
    + """\
import json
try:
    function = load_callable(sys.argv[4])
except GreenAIError as e:
    sys.exit(f"greenai: {e}")
value = function(**json.loads(sys.argv[5]))
try:
    text = json.dumps(value)
except (TypeError, ValueError):
    text = json.dumps(repr(value))
with open(sys.argv[6], "w") as out:
    out.write(text)
"""
)
_PARENT_DEATH_FILE = parent_death.__file__ if parent_death.__file__ and os.path.isfile(parent_death.__file__) else ""


def held_command_argv(gate_fd: int, command: Sequence[str]) -> list[str]:
    """argv of a process that dies with the thread that starts it, waits at the gate `gate_fd`
    (a byte: go on; EOF: exit 1 without running anything), then becomes `command` (same pid):
    COMMAND_BOOTSTRAP in an isolated interpreter without site (`greenai run` holds its program
    so until its tracker runs)."""
    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        COMMAND_BOOTSTRAP,
        str(gate_fd),
        str(os.getpid()),
        _PARENT_DEATH_FILE,
        *command,
    ]


# where `import greenai` finds the package in this process (for CALLABLE_BOOTSTRAP)
_GREENAI_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended. `energy_j` (IT energy, joules) and `provenance` come from the job's
    tracked run; they are None/"" only when no run could be tracked (e.g. command not found).
    `started_at`/`ended_at` are unix times of the job's own work, on the node that ran it."""

    job_id: str
    status: str  # "completed" | "failed"
    run_id: str | None
    energy_j: float | None
    provenance: str
    duration_s: float | None
    error: str = ""
    node: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    carbon_g: float | None = None
    rel_uncertainty: float | None = None
    value: Any = None  # a callable's return value (JSON round-trip locally; pickled on Ray)

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.COMPLETED

    @classmethod
    def failed(cls, job_id: str, error: str, node: str = "") -> JobOutcome:
        """A job that failed before any run of it was tracked: no energy, no duration."""
        return cls(job_id, RunStatus.FAILED, None, None, "", None, error=error, node=node)


@dataclass(frozen=True)
class JobHandle:
    """A submitted job; `token` is the executor's own reference (a future, a Ray ObjectRef)."""

    job: Job
    submitted_at: float
    token: Any = field(compare=False, repr=False)


class Executor(Protocol):
    """Runs jobs somewhere, each under its own greenai tracker writing to `ledger_path`."""

    name: str

    def capacity(self) -> int:
        """How many jobs may be in flight at once without queueing inside the executor."""

    def submit(
        self, job: Job, *, ledger_path: Path, tags: Mapping[str, str] = {}, node: str | None = None
    ) -> JobHandle:
        """Start the job (or queue it) — on `node` if a placement policy chose one; raises
        GreenAIError if it can never run here (or there)."""

    def wait(self, handles: Sequence[JobHandle], timeout_s: float | None = None) -> list[tuple[JobHandle, JobOutcome]]:
        """Block until at least one of `handles` is done (or `timeout_s` passes); return the
        finished ones with their outcomes. Never raises for a job's own failure."""

    def shutdown(self) -> None:
        """Release the executor's resources (threads, a Ray cluster it started)."""


class PausingExecutor(Executor, Protocol):
    """An executor that can pause a running job and resume it later (`supports_pause`)."""

    supports_pause: bool

    def pause(self, handle: JobHandle) -> None:
        """Stop the job where it is; it keeps its memory and uses no CPU until `resume`."""

    def resume(self, handle: JobHandle) -> None: ...


@dataclass(frozen=True)
class TrackedJob:
    """A job's outcome and, when a tracker ran, its full result (for shipping to a driver)."""

    outcome: JobOutcome
    result: RunResult | None


def run_job_tracked(
    job: Job,
    config: Config,
    *,
    tags: Mapping[str, str] = {},
    node: str = "",
    callable_in_process: bool = False,
    store: bool = True,
    log_dir: Path | None = None,
    control: JobControl | None = None,
) -> TrackedJob:
    """Run `job` here under a Tracker named after it and return how it ended. A subprocess
    job attaches to `control`, through which another thread may pause and resume it.

    Never raises for the job's own failure (non-zero exit, exception, missing command):
    that is a `failed` outcome, with the energy its tracked run used.
    """
    all_tags = {"job_id": job.job_id, **tags}
    name = job.name or job.job_id
    if job.command is None and job.callable_path is None:
        return TrackedJob(JobOutcome.failed(job.job_id, "the job has neither a command nor a callable", node), None)
    if job.callable_path is not None and callable_in_process:
        return _run_in_process(job, name, all_tags, config, node, store)
    return _run_subprocess(job, name, all_tags, config, node, store, log_dir, control or JobControl())


def _run_in_process(job: Job, name: str, tags: Mapping[str, str], config: Config, node: str, store: bool) -> TrackedJob:
    try:
        tracker = Tracker(name, tags=dict(tags), config=config, store=store, handle_signals=False).start()
    except Exception as e:
        return TrackedJob(JobOutcome.failed(job.job_id, f"could not start tracking: {e}", node), None)
    started = time.time()
    status, error, value = RunStatus.COMPLETED, "", None
    try:
        assert job.callable_path is not None
        value = load_callable(job.callable_path)(**job.kwargs)
    except KeyboardInterrupt:
        tracker.stop(RunStatus.INTERRUPTED)
        raise
    except BaseException as e:  # noqa: BLE001 — a job's SystemExit must not end the worker
        if not (isinstance(e, SystemExit) and e.code in (0, None)):
            status, error = RunStatus.FAILED, f"{type(e).__name__}: {e}"
    result = tracker.stop(status)
    return TrackedJob(_outcome(job, result, node, started, error, value), result)


def _run_subprocess(
    job: Job,
    name: str,
    tags: Mapping[str, str],
    config: Config,
    node: str,
    store: bool,
    log_dir: Path | None,
    control: JobControl,
) -> TrackedJob:
    if job.command is not None:
        missing = missing_program(job.command[0])
        if missing:
            return TrackedJob(JobOutcome.failed(job.job_id, missing, node), None)
    with tempfile.TemporaryDirectory(prefix="greenai-job-") as scratch:
        value_file = Path(scratch) / "value.json"
        gate_read, gate_write = os.pipe()
        # the job dies with this thread, which waits for it (hardware/parent_death.py)
        gate = (str(gate_read), str(os.getpid()), _PARENT_DEATH_FILE)
        try:
            if job.command is not None:
                argv = [sys.executable, "-c", COMMAND_BOOTSTRAP, *gate, *job.command]
            else:
                try:
                    kwargs_json = json.dumps(job.kwargs)
                except (TypeError, ValueError) as e:
                    return TrackedJob(
                        JobOutcome.failed(
                            job.job_id,
                            f"kwargs are not JSON-serialisable ({e}); a "
                            "callable job runs in a subprocess that gets them as JSON",
                            node,
                        ),
                        None,
                    )
                argv = [
                    sys.executable,
                    "-c",
                    CALLABLE_BOOTSTRAP,
                    *gate,
                    job.callable_path or "",
                    kwargs_json,
                    str(value_file),
                    _GREENAI_ROOT,
                ]
            with _output(job, log_dir, scratch) as (stdout, stderr, log_path):
                # a session of its own: one signal pauses, resumes or kills the job's whole tree
                proc = subprocess.Popen(
                    argv,
                    stdout=stdout,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(gate_read,),
                    start_new_session=True,
                )
                os.close(gate_read)
                gate_read = -1
                try:
                    tracker = Tracker(
                        name, tags=dict(tags), config=config, store=store, pid=proc.pid, handle_signals=False
                    ).start()
                except Exception as e:
                    os.close(gate_write)  # the child reads EOF and exits without running the job
                    gate_write = -1
                    proc.wait()
                    return TrackedJob(JobOutcome.failed(job.job_id, f"could not start tracking: {e}", node), None)
                control.attach(proc.pid, tracker)  # at the gate: a pause or an end applies now
                os.write(gate_write, b"g")
                os.close(gate_write)
                gate_write = -1
                started = time.time()
                try:
                    # exited but not reaped: the group id stays ours until the control lets go
                    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
                    control.detach()
                    returncode = proc.wait()
                except BaseException:
                    control.kill()
                    control.detach()
                    proc.wait()
                    tracker.stop(RunStatus.INTERRUPTED)
                    raise
                result = tracker.stop(RunStatus.COMPLETED if returncode == 0 else RunStatus.FAILED)
                error = ""
                if returncode != 0:
                    reason = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
                    tail = _tail(log_path)
                    error = f"{reason}: {tail}" if tail else reason
                value = None
                if returncode == 0 and value_file.is_file():
                    value = json.loads(value_file.read_text())
        finally:
            for fd in (gate_read, gate_write):
                if fd >= 0:
                    os.close(fd)
        return TrackedJob(_outcome(job, result, node, started, error, value), result)


def missing_program(program: str) -> str:
    """Why `program` cannot be executed ("" if it can), checked before anything starts."""
    if os.sep in program:
        if not os.path.isfile(program):
            return f"command not found: {program}"
        if not os.access(program, os.X_OK):
            return f"permission denied: cannot execute {program}"
        return ""
    return "" if shutil.which(program) else f"command not found: {program}"


class _output:
    """Where a subprocess job's output goes: `log_dir/<job_id>.log` (stdout and stderr), or
    stdout inherited and stderr captured in a temp file, copied to our stderr afterwards."""

    def __init__(self, job: Job, log_dir: Path | None, scratch: str) -> None:
        self._job, self._log_dir, self._scratch = job, log_dir, scratch
        self._file: IO[bytes] | None = None
        self._echo = False

    def __enter__(self) -> tuple[Any, Any, Path]:
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            path = self._log_dir / f"{_safe_name(self._job.job_id)}.log"
            self._file = open(path, "wb")
            return self._file, subprocess.STDOUT, path
        path = Path(self._scratch) / "stderr"
        self._file = open(path, "wb")
        self._echo = True
        return None, self._file, path

    def __exit__(self, *exc: object) -> None:
        assert self._file is not None
        self._file.close()
        if self._echo:
            text = Path(self._file.name).read_text(errors="replace")
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - ERROR_TAIL_CHARS))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _safe_name(job_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in job_id)[:100] or "job"


def _outcome(job: Job, result: RunResult, node: str, started: float, error: str, value: Any) -> JobOutcome:
    s = result.snapshot
    return JobOutcome(
        job_id=job.job_id,
        status=RunStatus.COMPLETED if result.status == RunStatus.COMPLETED else RunStatus.FAILED,
        run_id=result.run_id,
        energy_j=s.energy_j,
        provenance=s.provenance.value,
        duration_s=s.duration_s,
        error=error or ("" if result.status == RunStatus.COMPLETED else result.status),
        node=node,
        started_at=started,
        ended_at=time.time(),
        carbon_g=s.carbon_g,
        rel_uncertainty=s.rel_uncertainty,
        value=value,
    )


def tracking_config(config: Config, ledger_path: Path) -> Config:
    """The executor's config, writing runs to the batch's ledger."""
    return replace(config, ledger=Path(ledger_path))


def this_host() -> str:
    return socket.gethostname()
