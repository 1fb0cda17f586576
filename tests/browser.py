"""A real headless browser for the tests: Debian's chromium driven by Playwright's Python package.

Nothing is downloaded: the browser is the distribution's (`apt-get install chromium`, done here
when it is missing and apt is at hand, as root), Playwright is only its driver
(`executable_path`; `playwright install` is never run). Every request that is not for a
`file://` URL (or, for a local server, not for `allow_origin`) is aborted and recorded, so a
page that reaches out to the network is caught.

    with browser_page() as (page, blocked):
        page.goto(path.as_uri())
        ...
        assert blocked == []

Also usable from scripts (docs/img screenshots): `python -m tests.browser FILE.html OUT.png`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


def ensure_chromium() -> str | None:
    """The path of Debian's chromium, installing it with apt-get if missing; None with the
    reason logged by the caller when that cannot be done (no apt, not root)."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, capture_output=True, timeout=900
    )
    return str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (the Python package) is not installed: pip install 'greenai[dev]'"
    if ensure_chromium() is None:
        why = "apt-get is not available" if shutil.which("apt-get") is None else "not root, cannot apt-get install"
        return f"Debian's chromium is not installed and {why}"
    return None


@contextlib.contextmanager
def browser_page(
    allow_origin: str | None = None, viewport: tuple[int, int] = (1280, 900), javascript: bool = True
) -> Iterator[tuple[Any, list[str]]]:
    """(page, blocked): a fresh page whose non-local requests are aborted and listed
    (`javascript=False`: as a reader with JavaScript off sees it)."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    if executable is None:
        raise RuntimeError(unavailable_reason() or "no chromium")
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS), headless=True)
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, java_script_enabled=javascript
            )

            def route(r: Any) -> None:
                url = r.request.url
                if url.startswith(("file://", "data:", "blob:")) or (allow_origin and url.startswith(allow_origin)):
                    r.continue_()
                else:
                    blocked.append(url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            yield page, blocked
        finally:
            browser.close()


def plotly_charts(page: Any) -> list[dict[str, Any]]:
    """Each plotly chart on the page: its id, whether it drew an SVG, and how many traces
    (scatter/bar trace groups, sunburst slices) it drew."""
    result: list[dict[str, Any]] = page.evaluate(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => ({
            id: div.id,
            svg: div.querySelectorAll('svg.main-svg').length,
            traces: div.querySelectorAll('.scatterlayer .trace, .barlayer .trace, .sunburstlayer path.surface').length,
            data: (div.data || []).length,
            inside: !!div.closest('.chart') && div.querySelector('svg.main-svg') !== null
                && div.closest('.chart').contains(div.querySelector('svg.main-svg')),
        }))"""
    )
    return result


def wait_for_charts(page: Any, expected: int, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n && "
        "Array.from(document.querySelectorAll('.js-plotly-plot')).every(d => d._fullLayout)",
        arg=expected,
        timeout=timeout_ms,
    )


def screenshot(html: Path, out: Path, width: int = 1280, full_page: bool = True) -> Path:
    """Open a report and save a screenshot of it (network blocked)."""
    with browser_page(viewport=(width, 900)) as (page, blocked):
        page.goto(html.resolve().as_uri())
        expected = page.evaluate("document.querySelectorAll('.chart > div').length")
        wait_for_charts(page, expected)
        page.wait_for_timeout(300)
        page.screenshot(path=str(out), full_page=full_page)
        if blocked:
            raise RuntimeError(f"the page tried to load {blocked}")
    return out


if __name__ == "__main__":
    import sys

    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
