"""The dashboard: a read-only web app over the ledger (`greenai dashboard`). See docs/dashboard.md.

    from greenai.dashboard import create_app, serve
    serve(Path("ledger.db"))                  # http://127.0.0.1:8765/ until Ctrl-C
    app = create_app(Path("ledger.db"))       # the ASGI app, to serve as you like

fastapi, uvicorn, jinja2, plotly and numpy (`pip install 'greenai[dashboard]'`) are imported
only when the app is made.
"""

from __future__ import annotations

from typing import Any

from greenai.errors import GreenAIError

__all__ = ["create_app", "require", "serve", "serve_in_thread"]


def require() -> None:
    """fastapi, uvicorn and jinja2, and plotly and numpy (which draw the report's charts): the
    `dashboard` extra, or a GreenAIError that says what to install."""
    from greenai.reports.html import REPORT_MODULES, missing_modules

    missing = missing_modules(dict.fromkeys(("fastapi", "uvicorn", "jinja2", *REPORT_MODULES)))
    if missing:
        raise GreenAIError(f"the dashboard needs {', '.join(missing)}: pip install 'greenai[dashboard]'")


def __getattr__(name: str) -> Any:
    if name == "create_app":
        require()
        from greenai.dashboard.app import create_app

        return create_app
    if name in ("serve", "serve_in_thread"):
        from greenai.dashboard import server

        return getattr(server, name)
    raise AttributeError(f"module 'greenai.dashboard' has no attribute {name!r}")
