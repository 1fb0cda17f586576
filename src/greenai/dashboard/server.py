"""Starting the dashboard: the bind rule, the socket, uvicorn, and the browser tab.

`serve(...)` is what `greenai dashboard` runs: it refuses a non-loopback address without a
token before anything listens, binds the socket itself (so a port in use is one clear line,
and port 0 picks a free one), prints the address, opens a browser tab when there is a display
to show it on, and serves until Ctrl-C or SIGTERM. `serve_in_thread(...)` runs the same server
in a thread (tests and benchmarks).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.dashboard.security import bind_token, is_loopback
from greenai.errors import GreenAIError
from greenai.text import visible

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def has_display() -> bool:
    """True where a browser tab can be shown: macOS and Windows desktops, or an X11 or
    Wayland display (not an SSH session or a headless server)."""
    if sys.platform in ("darwin", "win32"):
        return not os.environ.get("SSH_CONNECTION")
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (a clear GreenAIError when it cannot be had)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise GreenAIError(f"cannot bind the dashboard to {host!r}: {e.strerror or e}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        why = "it is in use (choose another with --port, or --port 0 for any free one)" if e.errno == 98 else e.strerror
        raise GreenAIError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int, token: str | None = None) -> str:
    """The address to open: a loopback name for a loopback or wildcard bind."""
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = "127.0.0.1"
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _server(app: Any, log_level: str = "warning") -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(
    ledger: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool | None = None,
) -> int:
    """Serve the dashboard of `ledger` until interrupted; returns the exit code (0)."""
    from greenai.dashboard import require

    require()
    from greenai.dashboard.app import create_app

    required = bind_token(host, token)  # refuses a non-loopback bind without a token, before listening
    app = create_app(ledger, token=required, allowed_hosts=(host,))
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    url = url_of(host, actual, required)
    where = "this machine only" if is_loopback(host) else f"{host}, token required"
    # what the user gave (the host, the ledger's path) is printed as text: greenai/text.py's rule
    print(visible(f"greenai dashboard: {url}  ({where}; Ctrl-C stops it)"), flush=True)
    there = "" if ledger.exists() else ": not there yet; the page says so"
    print(visible(f"  ledger {ledger} (read-only){there}"), flush=True)
    if open_browser is None:
        open_browser = has_display()
    if open_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url, new=2)).start()
    server = _server(app)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again with the handlers
    # it found: these make that a clean exit (0) rather than death by signal or a KeyboardInterrupt
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        app.state.pool.close()
    print("greenai dashboard: stopped", flush=True)
    return 0


def _stopped(signum: int, frame: Any) -> None:
    """The signal uvicorn re-raises once it has shut down: nothing left to do."""


@dataclass
class Running:
    """A dashboard served from a thread; `stop()` ends it."""

    url: str
    server: Any
    thread: threading.Thread
    app: Any
    sock: socket.socket

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()
        self.app.state.pool.close()


def serve_in_thread(
    ledger: Path, host: str = DEFAULT_HOST, port: int = 0, token: str | None = None, timeout_s: float = 20.0
) -> Running:
    """The dashboard of `ledger` on host:port (0: a free port), served from a daemon thread;
    returns once it accepts connections."""
    from greenai.dashboard import require

    require()
    from greenai.dashboard.app import create_app

    required = bind_token(host, token, environ={})
    app = create_app(ledger, token=required, allowed_hosts=(host,))
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="greenai-dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise GreenAIError("the dashboard did not start")
        time.sleep(0.02)
    return Running(url_of(host, sock.getsockname()[1]), server, thread, app, sock)
