"""Who may read the dashboard: the bind rule, the token, the Host check and the page headers.

- Bound to a loopback address (127.0.0.1, the default; ::1; localhost) the dashboard is this
  machine's. It then answers only requests whose Host header names a loopback address, so a
  web page on another site cannot reach it through DNS rebinding.
- Bound to any other address it must have a token (`--token` or GREENAI_DASHBOARD_TOKEN):
  without one it does not start. A request carries the token as `Authorization: Bearer T`,
  or once as `?token=T`, which sets an HttpOnly, SameSite=Strict cookie and redirects to the
  same address without it (so the token leaves the address bar and the history). Tokens are
  compared with `hmac.compare_digest` (constant time).
- Every page is sent with a Content-Security-Policy that allows scripts from the dashboard
  itself only (no inline script runs; charts are data, drawn by /static/dashboard.js), and
  with no-referrer, nosniff and no framing.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from greenai.errors import GreenAIError

TOKEN_ENV = "GREENAI_DASHBOARD_TOKEN"
COOKIE = "greenai_dashboard_token"
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    """True for an address (or name) that only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_token(host: str, token: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The token the dashboard bound to `host` requires (None: none, on loopback only).

    `token` (from --token) wins over the environment's GREENAI_DASHBOARD_TOKEN. A non-loopback
    bind without a token is refused with a GreenAIError that says how to give one."""
    env = os.environ if environ is None else environ
    chosen = token if token is not None else env.get(TOKEN_ENV)
    if chosen is not None and not chosen.strip():
        raise GreenAIError("the dashboard token is empty: give a token of at least 16 characters, or none on loopback")
    if chosen is None:
        if is_loopback(host):
            return None
        raise GreenAIError(
            f"refusing to serve the ledger on {host} without a token: anyone who can reach that address could read "
            f"it. Pass --token (or set {TOKEN_ENV}), e.g. --token {secrets.token_urlsafe(24)}, or bind 127.0.0.1"
        )
    if len(chosen) < MIN_TOKEN_CHARS:
        raise GreenAIError(
            f"the dashboard token is {len(chosen)} characters long: use at least {MIN_TOKEN_CHARS} "
            f"(e.g. {secrets.token_urlsafe(24)})"
        )
    return chosen


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (hmac.compare_digest on the UTF-8 bytes)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def host_allowed(host_header: str | None, allowed: Iterable[str]) -> bool:
    """True when the Host header (name[:port]) names one of `allowed` (or any loopback address)."""
    if not host_header:
        return False
    name = host_header.strip().lower()
    if name.startswith("["):  # [::1]:8765
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    return is_loopback(name) or name in {a.lower().strip("[]") for a in allowed}


def without_token(query: str) -> str:
    """The query string less its `token` parameter."""
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"])
