"""`greenai monitor`: serve this machine's energy, power and carbon as Prometheus metrics
until SIGTERM or SIGINT (docs/monitor.md lists every metric)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from greenai.cli.options import IntensityOpt, PueOpt, SimulateOpt, build_config
from greenai.cli.render import line, make_console, one_line, render_result
from greenai.monitor.exporter import (
    DEFAULT_HOST,
    DEFAULT_INTERVAL_S,
    DEFAULT_PORT,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    Exporter,
    StopSignals,
)


def monitor(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to serve /metrics on (0: any free port).")
    ] = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on; anything but loopback lets other machines read the metrics."
        ),
    ] = DEFAULT_HOST,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", min=MIN_INTERVAL_S, max=MAX_INTERVAL_S, help="Seconds between two readings of the meters."
        ),
    ] = DEFAULT_INTERVAL_S,
    ledger: Annotated[
        bool,
        typer.Option(
            "--ledger",
            help="Also record this machine as a run of its own (monitor@HOST) in the ledger "
            "(GREENAI_LEDGER or the configured one).",
        ),
    ] = False,
    simulate: SimulateOpt = False,
    intensity: IntensityOpt = None,
    pue: PueOpt = None,
) -> None:
    """Serve this machine's meters, and the ledger's runs in progress, as Prometheus metrics."""
    config = build_config(intensity=intensity, pue=pue, simulate=simulate)
    out, err = make_console(), make_console(stderr=True)
    with StopSignals() as stop:  # a signal during the start is kept: the exporter then stops at once
        exporter = Exporter(config, host=host, port=port, interval_s=interval, record=ledger).start()
        try:
            _announce(exporter, host, interval, out, err)
            received = stop.wait()
        finally:
            result = exporter.stop()
    err.print(f"greenai monitor: stopped ({received.name})", soft_wrap=True)
    if result is not None:
        render_result(err, result)
        for note in result.notes:
            err.print(line(("note:", "bold"), " ", one_line(note)), soft_wrap=True)


def _announce(exporter: Exporter, host: str, interval: float, out: Console, err: Console) -> None:
    meters = ", ".join(f"{m.name} ({m.devices})" if m.devices else m.name for m in exporter.meters)
    out.print(
        line(f"greenai monitor: serving {exporter.url} every {interval:g} s; meters: ", one_line(meters)),
        soft_wrap=True,
    )
    if exporter.run_id is not None:
        out.print(
            line(
                f"recording this machine as run {exporter.run_id[:8]} ",
                one_line(repr(exporter.name)),
                " in ",
                one_line(exporter.ledger_path),
            ),
            soft_wrap=True,
        )
    if exporter.exposed:
        err.print(
            line(
                ("warning:", "bold"),
                f" listening on {one_line(host)}, an address other machines can reach: anyone who can connect "
                "reads this machine's energy figures and the names of its runs (no authentication)",
            ),
            soft_wrap=True,
        )
    out.print("stop with Ctrl-C or SIGTERM", soft_wrap=True)
