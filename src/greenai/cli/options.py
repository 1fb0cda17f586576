"""Options shared by several subcommands, the config they build and the ledger they open."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from greenai.config import Config, load_config
from greenai.errors import GreenAIError

if TYPE_CHECKING:
    from greenai.ledger.store import Ledger

LedgerOpt = Annotated[
    Path | None,
    typer.Option("--ledger", help="Ledger file (default: GREENAI_LEDGER or ~/.local/share/greenai/ledger.db)."),
]
IntensityOpt = Annotated[
    str | None,
    typer.Option(
        "--intensity",
        metavar="SPEC",
        help="Grid intensity: country (FRA, FR), cloud region (gcp:europe-west1), gCO2e/kWh (230), shipped trace "
        "(trace:gb_2020) or trace:FILE.csv; `greenai carbon countries|regions|traces` lists them.",
    ),
]
PueOpt = Annotated[float | None, typer.Option("--pue", help="Power usage effectiveness of the data centre (>= 1.0).")]
PriceOpt = Annotated[float | None, typer.Option("--price", help="Electricity price per kWh.")]
SimulateOpt = Annotated[
    bool, typer.Option("--simulate", help="Use simulated meters (deterministic traces, labelled 'simulated').")
]
SampleHzOpt = Annotated[float | None, typer.Option("--sample-hz", help="Sampling rate of the meters (default 10).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def build_config(
    ledger: Path | None = None,
    intensity: str | None = None,
    pue: float | None = None,
    price: float | None = None,
    simulate: bool = False,
    sample_hz: float | None = None,
) -> Config:
    return load_config(
        ledger=ledger,
        intensity=intensity,
        pue=pue,
        price_per_kwh=price,
        simulate=simulate or None,
        sample_hz=sample_hz,
    )


def open_ledger(ledger: Path | None) -> Ledger:
    """The ledger of --ledger (default: the configured one), which must exist already."""
    from greenai.ledger import Ledger, default_ledger_path

    path = ledger or build_config().ledger or default_ledger_path()
    if not path.exists():
        raise GreenAIError(f"no ledger at {path} yet: track a run first (e.g. `greenai demo`)")
    return Ledger.open_existing(path)  # read-only when it cannot be written: reads still work


def print_json(data: Any, out: IO[str] | None = None) -> None:
    """`data` as indented JSON on stdout (or `out`)."""
    stream = sys.stdout if out is None else out
    # one write: json.dump writes each token apart, a system call each on an unbuffered stream
    # (PYTHONUNBUFFERED): 48.6 s against 8.5 s for `runs list --all --json` of 100,000 runs
    stream.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    stream.flush()


# Metavars (what a value looks like in --help) for parameters whose own name does not read as
# one; every other takes its name in capitals (NAME, STATUS, POLICY), a path FILE (DIR for a
# *_dir), an integer N, a number NUMBER; flags take none. Typer's own would be <str>,
# <list[str]>, <bool>.
METAVARS = {
    "command": "COMMAND",
    "tag": "KEY=VALUE",
    "try_": "PIPELINE",
    "fmt": "FORMAT",
    "factory": "FILE.py:FUNCTION",
    "run_id": "RUN",
    "run_ids": "RUN",
    "runs": "RUN",
    "study": "STUDY",
    "batch_id": "BATCH",
    "carbon": "TRACE",
    "duration": "DURATION",
    "slack": "DURATION",
    "window": "DURATION",
    "delay": "DURATION",
    "interval": "SECONDS",
    "budget": "SECONDS",
    "start": "TIME",
    "forecast_tz": "ZONE",
    "ray_address": "ADDRESS",
    "pue": "PUE",
    "price": "PRICE",
    "sample_hz": "HZ",
    "power_w": "WATTS",
    "max_power_w": "WATTS",
    "max_energy_kwh": "KWH",
    "days": "DAYS",
    "epochs": "N",
}


def readable_metavars(command: Any) -> Any:
    """Give every parameter of `command` (a click command Typer built) and its subcommands
    a metavar that reads like a person's (see METAVARS); returns `command`. Arguments that
    take several values keep Typer's "..." after the metavar in the usage line."""
    make_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:  # made per context by click, not in `params`
        option = make_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value: nothing to show
            continue
        if param.metavar is None:
            param.metavar = METAVARS.get(param.name) or _metavar_from_type(param)
        if param.param_type_name == "argument":
            # Typer shows an argument's type beside its name (<list[str]>): the name says it
            param.display_type_rich = lambda ctx: None
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    return command


def _metavar_from_type(param: Any) -> str:
    shown = param.display_type(None).strip("<>")  # Typer's label: "path", "int range", "float"
    name = str(param.name or "value").rstrip("_")
    if shown == "path":
        return "DIR" if name.endswith("dir") else "FILE"
    if shown.startswith("int"):
        return "N"
    if shown.startswith("float"):
        return "NUMBER"
    return name.upper()
