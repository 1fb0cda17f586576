"""`greenai run -- CMD ARGS`: track any program and its child processes.

The program's stdout and stdin are untouched: what greenai says goes to stderr, the summary
or, with --json, the run as JSON (the last thing written there, after the program's own
stderr), or to a file of its own with --json-out FILE, where nothing else can mix with it.

The tracker starts before the program does: the program is started held at a gate (a pipe,
as the scheduler's jobs are: schedule/executor.py), the ledger opened and the tracker started,
and only then the gate opens and the program runs, so the whole of it is measured (it was
started first: `sleep 1` read 0.95 s) and a tracker that cannot start (a ledger that cannot
be written) stops greenai before the program ran at all (it was started, then killed). The
command line and the program's exit code are stored with the run; the run is named after
the script a known interpreter runs (`python train.py` is `train.py`), else the program.

Options of greenai come before the program (or before `--`); everything after the program's
name is the program's, and an option greenai does not know is an error, not a program.

SIGTERM and SIGHUP are forwarded to the program; SIGINT (Ctrl-C) is
not, because the terminal already delivers it to the whole foreground process group, and a
second copy would interrupt the program's own clean-up. The handlers are in place before the
tracker starts; a signal that comes before the gate opens ends the program unstarted, and the
run is `interrupted`. The command line is written with the run before the gate opens, through
the tracker's own ledger connection and within 1 s (a ledger busy longer is a warning). The
program's exit code is written after the tracker's end, retried with backoff while the ledger
is locked for EXIT_CODE_WRITE_TIMEOUT_S (5 s, as the tracker's final write) at most, opening
the ledger included (then a warning). The program's exit code becomes greenai's (128+N when it
was killed by signal N, as shells report it) whatever happens after the program ended: the
handlers stay in place until greenai returns, and a summary or JSON that cannot be written is
a warning. On Linux the program
dies with greenai (the kernel's parent-death signal, greenai/hardware/parent_death.py): killed
with SIGKILL, greenai cannot forward anything, and the program would run on untracked.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from greenai.cli.options import (
    IntensityOpt,
    LedgerOpt,
    PriceOpt,
    PueOpt,
    SampleHzOpt,
    SimulateOpt,
    build_config,
    print_json,
)
from greenai.cli.render import line, make_console, render_result, result_to_dict, visible
from greenai.distributed.deadline import within
from greenai.distributed.launcher import RanksSeen, RankWatcher
from greenai.errors import GreenAIError, LedgerError
from greenai.ledger.records import RunStatus
from greenai.schedule.executor import held_command_argv, missing_program

if TYPE_CHECKING:
    from greenai.config import Config
    from greenai.tracking.result import RunResult

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
COMMAND_WRITE_TIMEOUT_S = 1.0  # the command line is written with the run within this, before the program runs
# the exit code is written after the run ended within this, as the tracker's final write
# (tracking.tracker.FINAL_WRITE_TIMEOUT_S): retried with backoff while the ledger is locked
EXIT_CODE_WRITE_TIMEOUT_S = 5.0
_GIVE_UP_MARGIN_S = 0.5  # the write's own retries end first; the thread is waited for this much longer


def run(
    command: Annotated[
        list[str], typer.Argument(help="The program and its arguments (after greenai's options, or after --).")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name", "-n", help="Run name (default: the script an interpreter runs, e.g. train.py, or the program)."
        ),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag, repeatable.")] = None,
    ledger: LedgerOpt = None,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
    price: PriceOpt = None,
    simulate: SimulateOpt = False,
    sample_hz: SampleHzOpt = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="The run as JSON on stderr instead of the summary (stdout is the program's alone).",
        ),
    ] = False,
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json-out",
            metavar="FILE",
            help="Also write the run as JSON to FILE, where the program's output cannot mix.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")] = False,
    keep_freed_memory: Annotated[
        bool,
        typer.Option(
            "--keep-freed-memory",
            help="Start the program with glibc's malloc keeping freed memory mapped (no page faults on "
            "re-used buffers; training steps 1.03-1.34x cheaper in docs/benchmarks.md; peak memory kept). "
            "Tagged on the run.",
        ),
    ] = False,
) -> int:
    """Run a program and track the energy of its whole process tree."""
    from greenai.tracking.tracker import Tracker

    tags = parse_tags(tag or [])
    config = build_config(ledger, intensity, pue, price, simulate, sample_hz)
    missing = missing_program(command[0])
    if missing:
        raise GreenAIError(missing)
    env = None
    if keep_freed_memory:
        env = {**os.environ, **_keep_freed_memory_env()}
        tags.setdefault("allocator", "keep-freed-memory")
    json_sink = _open_json_file(json_file)  # a file that cannot be written fails before anything runs
    try:
        proc, gate = _start_held(command, env)
    except BaseException:
        _close(json_sink)
        raise
    # the handlers are in place before the tracker starts: a signal from here on is forwarded
    # (SIGTERM, SIGHUP) or noted (SIGINT), never the end of greenai with its tracker running
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, _forward_to(proc, received, forward=sig in FORWARDED_SIGNALS))
        for sig in (signal.SIGINT, *FORWARDED_SIGNALS)
    }
    try:
        try:
            tracker = Tracker(
                name or default_run_name(command),
                tags=tags,
                config=config,
                pid=proc.pid,
                handle_signals=False,
                distributed=False,  # one run for the whole tree, whatever ranks it holds
            )
            tracker.start()
        except BaseException:
            os.close(gate)  # the held process reads EOF and exits: the program never ran
            proc.wait()
            _close(json_sink)
            raise
        try:  # through the tracker's own connection, bounded, before the program runs
            tracker.record_command(command, timeout_s=COMMAND_WRITE_TIMEOUT_S)
        except LedgerError as e:
            _warn(f"could not record the command line: {e}")
        _open_gate(gate, go=not received)  # a signal before it: the program never runs
        watcher = RankWatcher(proc.pid).start()  # ranks of a launch (torchrun) in the tree
        try:
            returncode = wait_for_exit(proc)
        except BaseException:
            tracker.stop(RunStatus.FAILED)
            _close(json_sink)
            raise
        # the program has ended: from here on greenai only wraps up, within its bounds, and
        # exits with the program's code (a signal now is noted or forwarded to nobody)
        status = RunStatus.COMPLETED if returncode == 0 else RunStatus.INTERRUPTED if received else RunStatus.FAILED
        seen = watcher.stop()
        try:
            result = tracker.stop(status)  # its last reading still sees the exited program
        finally:
            proc.wait()  # reap it
        if result.stored:
            _record_exit_code(config, result.run_id, exit_code(returncode))
        try:
            _report(result, seen, exit_code(returncode), json_out=json_out, json_sink=json_sink, quiet=quiet)
        except Exception as e:  # e.g. stderr closed, --json-out's disk full: the program's code stands
            with contextlib.suppress(Exception):
                _warn(f"could not write the run's summary: {e}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code(returncode)


def _report(
    result: RunResult, seen: RanksSeen, code: int, *, json_out: bool, json_sink: IO[str] | None, quiet: bool
) -> None:
    """The run as JSON (on stderr, to --json-out's file) or as a summary on stderr."""
    if json_out or json_sink is not None:
        ranks = {"ranks": seen.count, "world_size": seen.world_size} if seen.count else {}
        data = {**result_to_dict(result), "exit_code": code, **ranks}
        if json_sink is not None:
            with json_sink:
                print_json(data, json_sink)
        if json_out:
            sys.stdout.flush()
            print_json(data, sys.stderr)
    if not json_out and not quiet:
        console = make_console(stderr=True)
        render_result(console, result)
        if seen.count:
            console.print(line(f"{seen.describe()}: one run for the whole tree"))


# interpreters whose run is named after the script they run (`python train.py`: train.py)
INTERPRETERS = re.compile(r"^(python[0-9.]*|pypy[0-9.]*|sh|bash|zsh|dash|node|ruby|perl|Rscript)$")
# options of python that take a value (`python -X dev -W error train.py`)
_PYTHON_VALUE_OPTIONS = {"-X", "-W", "--check-hash-based-pycs"}


def default_run_name(command: Sequence[str]) -> str:
    """A run's name when --name is not given: the program, or for an interpreter the script
    it runs (`python train.py` is train.py, `python -m pkg.train` pkg.train, `python -c ...`
    "python -c", `bash job.sh` job.sh)."""
    program = os.path.basename(command[0])
    if not INTERPRETERS.match(program):
        return program
    args = list(command[1:])
    python = program.startswith(("python", "pypy"))
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            continue
        if python and arg == "-m" and i + 1 < len(args):
            return args[i + 1]
        if python and arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if arg == "-c" or (python and arg.startswith("-c")):
            return f"{program} -c"
        if python and arg in _PYTHON_VALUE_OPTIONS:
            i += 2
            continue
        if arg.startswith("-") and arg != "-":
            i += 1
            continue
        return os.path.basename(arg) or program
    return program


def _start_held(command: Sequence[str], env: dict[str, str] | None) -> tuple[subprocess.Popen[bytes], int]:
    """The program's process, held at a gate until the tracker runs: a small Python process
    (the scheduler's COMMAND_BOOTSTRAP: schedule.executor.held_command_argv) that sets the
    kernel's parent-death signal (it dies with greenai's main thread, the one starting it,
    which lives as long as greenai; the signal holds through the exec), waits for a byte on a
    pipe, then becomes the program (exec: same pid, so the tracker follows it); EOF instead
    ends it before the program runs. Returns the process and the gate's write end."""
    gate_read, gate_write = os.pipe()
    try:
        proc = subprocess.Popen(held_command_argv(gate_read, command), env=env, pass_fds=(gate_read,))
    except BaseException:
        os.close(gate_write)
        raise
    finally:
        os.close(gate_read)
    return proc, gate_write


def _open_gate(gate: int, go: bool) -> None:
    """Let the held program run (`go`), or end it before it ran (EOF); a held process that is
    already gone (a signal forwarded to it) is not an error: its exit status says why."""
    try:
        if go:
            os.write(gate, b"g")  # the program starts now, tracked from its first instruction
    except OSError:
        pass
    finally:
        os.close(gate)


def _record_exit_code(config: Config, run_id: str, code: int) -> None:
    """Write the program's exit code to the run's ledger, after the run ended (the tracker's
    connection is closed by then): retried with backoff while the ledger is locked or the
    write fails, EXIT_CODE_WRITE_TIMEOUT_S at most in all. Opening the ledger waits on a lock
    for longer (30 s), so the whole of it runs in a thread greenai waits for no longer; a
    ledger that refuses or does not answer in time is said on stderr."""
    from greenai.ledger import queries
    from greenai.ledger.store import Ledger, default_ledger_path

    path = config.ledger or default_ledger_path()
    deadline = time.monotonic() + EXIT_CODE_WRITE_TIMEOUT_S

    def write() -> None:
        with Ledger(path) as store:
            left_s = max(deadline - time.monotonic(), 0.01)
            store.write(lambda conn: queries.set_exit_code(conn, run_id, code), timeout_s=left_s)

    try:
        within(write, deadline + _GIVE_UP_MARGIN_S, "greenai-exit-code")
    except TimeoutError:
        _warn(f"could not record the exit code: ledger {path} did not answer within {EXIT_CODE_WRITE_TIMEOUT_S:g} s")
    except Exception as e:  # the program's exit code stands whatever the ledger does
        _warn(f"could not record the exit code: {e}")


def _warn(message: str) -> None:
    """A warning on stderr; a stderr that cannot be written (a closed pipe) loses it quietly:
    after the program ended, nothing may change greenai's exit code from the program's."""
    with contextlib.suppress(Exception):
        print(f"greenai: warning: {visible(message)}", file=sys.stderr)  # a path in it acts on nothing


def _open_json_file(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return path.open("w")
    except OSError as e:
        raise GreenAIError(f"--json-out: cannot write {path}: {e.strerror or e}") from None


def _close(sink: IO[str] | None) -> None:
    if sink is not None:
        sink.close()


def _keep_freed_memory_env() -> dict[str, str]:
    from greenai.tune.allocator import keep_freed_memory_env, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        raise GreenAIError(f"--keep-freed-memory: {reason}")
    return keep_freed_memory_env()


def wait_for_exit(proc: subprocess.Popen[bytes]) -> int:
    """Wait until the program exits without reaping it (waitid(2) with WNOWAIT), and return
    its Popen-style return code. Until it is reaped it stays a zombie whose /proc entry still
    holds its CPU time and that of the children it waited for, so the tracker's last reading
    counts the tree's final moments; once reaped, they would be lost."""
    if not hasattr(os, "waitid"):  # not Linux/Unix: reap at once
        return proc.wait()
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:  # already reaped (by Popen): it kept the status
        return proc.wait()
    assert info is not None  # waitid returns None only with WNOHANG
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def exit_code(returncode: int) -> int:
    """Popen reports death by signal N as -N; shells report 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def parse_tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GreenAIError(f"tag {item!r} must look like KEY=VALUE")
        tags[key] = value
    return tags


def _forward_to(proc: subprocess.Popen[bytes], received: list[int], forward: bool) -> Callable[[int, object], None]:
    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        # not proc.poll() or send_signal(), which would reap an exited program before
        # wait_for_exit's last reading; unreaped, its pid cannot be reused, so kill() is safe
        if forward and proc.returncode is None:
            try:
                os.kill(proc.pid, signum)
            except ProcessLookupError:
                pass

    return handler
