"""The `greenai` command. Each subcommand lives in its own module (which imports only
cli/options.py, cli/render.py and the library, never another command); this one assembles
the command tree and turns every error into one line on stderr and a non-zero exit
(GREENAI_DEBUG=1 shows the traceback)."""

from __future__ import annotations

import functools
import os
import sys
from typing import Annotated, Any

import typer

from greenai._version import __version__
from greenai.cli import (
    calibrate_cmd,
    carbon_cmd,
    dashboard_cmd,
    demo_cmd,
    env_cmd,
    estimate_cmd,
    jobs_cmd,
    monitor_cmd,
    optimize_cmd,
    report_cmd,
    run_cmd,
    runs_cmd,
    schedule_cmd,
    schedule_run,
    schedule_show,
    studies_cmd,
)
from greenai.cli.options import readable_metavars
from greenai.cli.render import visible
from greenai.errors import GreenAIError

app = typer.Typer(
    name="greenai",
    help="Measure, predict and cut the energy, carbon and cost of AI training and inference.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"greenai {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print greenai's version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    pass


app.command("env")(env_cmd.env)
# greenai's options come first; from the program's name on, every word is the program's
app.command("run", context_settings={"allow_interspersed_args": False})(run_cmd.run)
app.command("demo")(demo_cmd.demo)
app.command("estimate")(estimate_cmd.estimate)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("optimize")(optimize_cmd.optimize)
app.command("studies")(studies_cmd.studies)
app.command("report")(report_cmd.report)
app.command("monitor")(monitor_cmd.monitor)
app.command("dashboard")(dashboard_cmd.dashboard)

runs_app = typer.Typer(help="List, show, export, compare and delete recorded runs.", no_args_is_help=True)
runs_app.command("list")(runs_cmd.list_runs)
runs_app.command("show")(runs_cmd.show)
runs_app.command("export")(runs_cmd.export)
runs_app.command("compare")(runs_cmd.compare)
runs_app.command("delete")(runs_cmd.delete)
runs_app.command("check")(runs_cmd.check)
app.add_typer(runs_app, name="runs")

app.add_typer(jobs_cmd.jobs_app, name="jobs")

schedule_app = typer.Typer(help="Carbon- and energy-aware scheduling of jobs.", no_args_is_help=True)
schedule_app.command("simulate")(schedule_cmd.simulate)
schedule_app.command("run")(schedule_run.run_jobs)
schedule_app.command("batches")(schedule_show.batches)
schedule_app.command("show")(schedule_show.show)
app.add_typer(schedule_app, name="schedule")

carbon_app = typer.Typer(help="The carbon intensities greenai ships and how to name them.", no_args_is_help=True)
carbon_app.command("countries")(carbon_cmd.countries)
carbon_app.command("regions")(carbon_cmd.regions)
carbon_app.command("traces")(carbon_cmd.traces)
app.add_typer(carbon_app, name="carbon")

EXIT_ERROR = 1


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns (and exits with) the command's exit code."""
    code = _invoke(argv)
    sys.exit(code)


def _invoke(argv: list[str] | None) -> int:
    try:
        result = command()(args=argv, prog_name="greenai", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _error("aborted")
        return 130
    except typer.TyperException as e:  # usage errors: unknown command or option, bad value
        if type(e).__name__ == "NoArgsIsHelpError":  # help was printed; Typer has no public name for it
            return 0
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _error(f"{e.format_message()}{hint}")
        return e.exit_code
    except GreenAIError as e:
        _error(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as e:  # a bug of ours: still one line, unless debugging
        if os.environ.get("GREENAI_DEBUG"):
            raise
        _error(f"internal error: {type(e).__name__}: {e} (set GREENAI_DEBUG=1 for a traceback)")
        return EXIT_ERROR


@functools.cache
def command() -> Any:
    """The click command Typer builds from `app`, its parameters' metavars made readable
    (`FILE`, `NAME`, `KEY=VALUE` rather than <path>, <str>, <list[str]>)."""
    return readable_metavars(typer.main.get_command(app))


def _error(message: str) -> None:
    print(f"greenai: error: {visible(message)}", file=sys.stderr)  # a name or path in it acts on nothing


if __name__ == "__main__":
    main()
