"""`greenai dashboard [--ledger PATH] [--host 127.0.0.1] [--port N] [--token T] [--open/--no-open]`.

Serves the ledger read-only in a browser until Ctrl-C. The work is `greenai.dashboard`; this
module only parses the options.
"""

from __future__ import annotations

from typing import Annotated

import typer

from greenai.cli.options import LedgerOpt, build_config


def dashboard(
    ledger: LedgerOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; any but a loopback one needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Token every request must carry (default: GREENAI_DASHBOARD_TOKEN); required off loopback.",
        ),
    ] = None,
    open_browser: Annotated[
        bool | None,
        typer.Option("--open/--no-open", help="Open a browser tab (default: when a display is available)."),
    ] = None,
) -> int:
    """Browse the ledger's runs, comparisons, studies and batches in a web browser (read-only)."""
    from greenai.dashboard.server import serve
    from greenai.ledger import default_ledger_path

    path = ledger or build_config().ledger or default_ledger_path()
    return serve(path.expanduser(), host=host, port=port, token=token, open_browser=open_browser)
