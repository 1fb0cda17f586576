"""One self-contained HTML file: Jinja2 templates (autoescaped) and plotly.js inlined once.

The file loads nothing: plotly.min.js (from the installed plotly package) is written into
it, the styles are inline, fonts are the reader's system fonts. Headline figures and every
table are plain HTML, readable with JavaScript off; only the charts need it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from greenai._version import __version__
from greenai.errors import GreenAIError
from greenai.units import format_duration_precise, format_energy


def _require() -> tuple[Any, Any]:
    try:
        import jinja2
        import plotly.offline
    except ImportError as e:
        raise GreenAIError(
            f"reports need plotly and jinja2: pip install 'greenai[report]' ({e.name} is missing)"
        ) from None
    return jinja2, plotly.offline


def environment() -> Any:
    jinja2, _ = _require()
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
    _, offline = _require()
    source: str = offline.get_plotlyjs()
    if "</script" in source.lower():  # cannot happen with plotly's minified bundle; never emit a broken page
        raise GreenAIError("the installed plotly.js cannot be inlined (it contains '</script')")
    return source


def render(template: str, **context: Any) -> str:
    _require()
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
