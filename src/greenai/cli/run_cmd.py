"""`greenai run -- CMD ARGS`: track any program and its child processes.

The program's stdout and stdin are untouched; the summary goes to stderr (or JSON to
stdout with --json). SIGTERM and SIGHUP are forwarded to the program; SIGINT (Ctrl-C) is
not, because the terminal already delivers it to the whole foreground process group, and a
second copy would interrupt the program's own clean-up. The program's exit code becomes
greenai's (128+N when it was killed by signal N, as shells report it). On Linux the program
dies with greenai (the kernel's parent-death signal, greenai/hardware/parent_death.py): killed
with SIGKILL, greenai cannot forward anything, and the program would run on untracked.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from typing import Annotated

import typer

from greenai.cli.options import (
    IntensityOpt,
    JsonOpt,
    LedgerOpt,
    PriceOpt,
    PueOpt,
    SampleHzOpt,
    SimulateOpt,
    build_config,
    print_json,
)
from greenai.cli.render import line, make_console, render_run, result_to_dict
from greenai.distributed.launcher import RankWatcher
from greenai.errors import GreenAIError
from greenai.hardware.parent_death import preexec_die_with_parent
from greenai.ledger.records import RunStatus

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def run(
    command: Annotated[list[str], typer.Argument(help="The program and its arguments, after --.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Run name (default: the program).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag, repeatable.")] = None,
    ledger: LedgerOpt = None,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
    price: PriceOpt = None,
    simulate: SimulateOpt = False,
    sample_hz: SampleHzOpt = None,
    json_out: JsonOpt = False,
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
    env = None
    if keep_freed_memory:
        env = {**os.environ, **_keep_freed_memory_env()}
        tags.setdefault("allocator", "keep-freed-memory")
    try:
        # started from the main thread, which lives as long as greenai: it has no other thread
        # yet, so the preexec_fn is safe
        proc = subprocess.Popen(command, env=env, preexec_fn=preexec_die_with_parent())
    except FileNotFoundError:
        raise GreenAIError(f"command not found: {command[0]}") from None
    except PermissionError:
        raise GreenAIError(f"permission denied: cannot execute {command[0]}") from None
    tracker = Tracker(
        name or os.path.basename(command[0]),
        tags=tags,
        config=config,
        pid=proc.pid,
        handle_signals=False,
        distributed=False,  # one run for the whole tree, whatever ranks it holds
    )
    try:
        tracker.start()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    watcher = RankWatcher(proc.pid).start()  # ranks of a launch (torchrun) in the tree
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, _forward_to(proc, received, forward=sig in FORWARDED_SIGNALS))
        for sig in (signal.SIGINT, *FORWARDED_SIGNALS)
    }
    try:
        returncode = wait_for_exit(proc)
    except BaseException:
        tracker.stop(RunStatus.FAILED)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    status = RunStatus.COMPLETED if returncode == 0 else RunStatus.INTERRUPTED if received else RunStatus.FAILED
    seen = watcher.stop()
    try:
        result = tracker.stop(status)  # its last reading still sees the exited program
    finally:
        proc.wait()  # reap it
    if json_out:
        ranks = {"ranks": seen.count, "world_size": seen.world_size} if seen.count else {}
        print_json({**result_to_dict(result), "exit_code": exit_code(returncode), **ranks})
    elif not quiet:
        console = make_console(stderr=True)
        render_run(
            console,
            run_id=result.run_id,
            name=result.name,
            status=result.status,
            snapshot=result.snapshot,
            cost_configured=result.cost_configured,
            ledger_path=str(result.ledger_path) if result.ledger_path else None,
        )
        if seen.count:
            console.print(line(f"{seen.describe()}: one run for the whole tree"))
    return exit_code(returncode)


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
