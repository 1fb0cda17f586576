"""`greenai env`: which meters work here, which do not, and why."""

from __future__ import annotations

import os

from rich.table import Table

from greenai.cli.options import JsonOpt, SimulateOpt, build_config, print_json
from greenai.cli.render import make_console
from greenai.meters.discover import discover
from greenai.meters.process import ProcessScope


def env(simulate: SimulateOpt = False, json_out: JsonOpt = False) -> None:
    """Show the meters greenai would use on this machine and those it cannot use."""
    config = build_config(simulate=simulate)
    found = discover(config, ProcessScope(os.getpid()))
    try:
        infos = [m.info() for m in found.meters]
    finally:
        for meter in found.meters:
            meter.close()
    if json_out:
        print_json(
            {
                "available": [
                    {"name": i.name, "devices": list(i.devices), "provenance": i.provenance.value, "detail": i.detail}
                    for i in infos
                ],
                "unavailable": [{"name": u.name, "reason": u.reason} for u in found.unavailable],
            }
        )
        return
    console = make_console()
    table = Table(title="Meters in use", title_justify="left")
    for col in ("meter", "devices", "provenance", "detail"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.name, ", ".join(i.devices), i.provenance.value, i.detail)
    console.print(table)
    if found.unavailable:
        missing = Table(title="Not available here", title_justify="left")
        missing.add_column("meter")
        missing.add_column("why")
        for u in found.unavailable:
            missing.add_row(u.name, u.reason)
        console.print(missing)
