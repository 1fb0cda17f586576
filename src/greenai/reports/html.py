"""One self-contained HTML file: Jinja2 templates (autoescaped) and plotly.js inlined once.

The file loads nothing: plotly.min.js (from the installed plotly package) is written into
it, the styles are inline, fonts are the reader's system fonts. Headline figures and every
table are plain HTML, readable with JavaScript off; only the charts need it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from greenai._version import __version__
from greenai.errors import GreenAIError
from greenai.units import format_duration_precise, format_energy

REPORT_MODULES = ("plotly", "jinja2", "numpy")  # what the `report` extra installs


def missing_modules(modules: Iterable[str]) -> list[str]:
    """Those of `modules` that cannot be imported, in their order."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def require() -> None:
    """plotly, jinja2 and numpy (the `report` extra), or a GreenAIError that says what to install."""
    missing = missing_modules(REPORT_MODULES)
    if missing:
        raise GreenAIError(f"reports need {', '.join(missing)}: pip install 'greenai[report]'")


def environment() -> Any:
    require()
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("greenai.reports", "templates"),
        autoescape=True,  # every value from the ledger is escaped unless marked safe here
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        energy=fmt_energy,
        num=fmt_num,
        pct=fmt_pct,
        dur=format_duration_precise,
        carbon=fmt_carbon,
        watts=fmt_watts,
        ratio=fmt_ratio,
        singular=singular,
    )
    return env


def plotly_js() -> str:
    """plotly.js as shipped in the installed plotly package (inlined once per report)."""
    require()
    import plotly.offline

    source: str = plotly.offline.get_plotlyjs()
    if "</script" in source.lower():  # cannot happen with plotly's minified bundle; never emit a broken page
        raise GreenAIError("the installed plotly.js cannot be inlined (it contains '</script')")
    return source


def render(template: str, **context: Any) -> str:
    require()
    from markupsafe import Markup

    env = environment()
    charts = context.pop("charts", {})
    return str(
        env.get_template(template).render(
            plotly_js=Markup(plotly_js()) if charts else "",
            charts={k: Markup(v) for k, v in charts.items()},
            generated=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            **context,
        )
    )


# -- filters ----------------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def fmt_energy(value: Any) -> str:
    return format_energy(value) if _finite(value) else "—"


def fmt_num(value: Any, digits: int = 4) -> str:
    if not _finite(value):
        return "—"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"


def fmt_pct(value: Any, digits: int = 0) -> str:
    return f"{100 * value:.{digits}f} %" if _finite(value) else "—"


def fmt_carbon(value: Any) -> str:
    if not _finite(value):
        return "—"
    if abs(value) >= 1000:
        return f"{value / 1000:,.3g} kgCO2e"
    if abs(value) >= 1 or value == 0:
        return f"{value:,.3g} gCO2e"
    return f"{value * 1000:,.3g} mgCO2e"


def fmt_watts(value: Any) -> str:
    return f"{value:,.3g} W" if _finite(value) else "—"


def fmt_ratio(value: Any) -> str:
    return f"{value:.3g}×" if _finite(value) else "—"


def singular(counter: str) -> str:
    """ "samples" -> "sample" for a card's label ("Energy per sample"); other names as they are."""
    return counter[:-1] if len(counter) > 3 and counter.endswith("s") and not counter.endswith("ss") else counter
