"""Options shared by several subcommands, the config they build and the ledger they open."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
