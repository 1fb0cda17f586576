"""The energy-quality plot of a study (matplotlib, written to a PNG file)."""

from __future__ import annotations

import math
from pathlib import Path

from greenai.optimize.search import Study


def plot_study(study: Study, path: Path) -> Path:
    """Energy per sample (log x) against quality; the Pareto front joined, the quality bound
    dashed, the recommendation ringed. Bars show the repeats' spread, which is what
    comparisons on one meter face; the meter's own band, common to all, is in the label.
    Points are numbered; the key beside the plot names them."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on servers
    import matplotlib.pyplot as plt

    measured = [o for o in study.outcomes if o.measurement is not None and o.quality is not None]
    fig, ax = plt.subplots(figsize=(12.5, 5), dpi=110)
    key = []
    for number, o in enumerate(measured, start=1):
        m, quality = o.measurement, o.quality
        assert m is not None and quality is not None  # `measured` keeps only those
        on_front = o.name in study.front
        ax.errorbar(
            m.energy_per_sample_j,
            quality,
            xerr=m.energy_per_sample_j * m.rel_spread,
            fmt="o",
            color="tab:green" if on_front else "tab:gray",
            capsize=3,
            alpha=0.9,
        )
        ax.annotate(
            str(number),
            (m.energy_per_sample_j, quality),
            textcoords="offset points",
            xytext=(4, 4 + 7 * (number % 2)),
            fontsize=8,
        )
        key.append(f"{number:>2}  {o.name}")
    fig.text(0.625, 0.88, "\n".join(key), fontsize=7, family="monospace", va="top")
    # the front is drawn from measured outcomes with a quality: the filter only narrows the types
    front = [
        (o.energy_j, o.quality)
        for o in map(study.outcome, study.front)
        if o.energy_j is not None and o.quality is not None
    ]
    ax.plot([e for e, _ in front], [q for _, q in front], "-", color="tab:green", label="Pareto front")
    ax.axhline(study.bound, linestyle="--", color="tab:red", label=f"quality bound {study.bound:.4g}")
    if (
        study.recommended is not None
        and study.recommended.energy_j is not None
        and study.recommended.quality is not None
    ):
        ax.plot(
            study.recommended.energy_j,
            study.recommended.quality,
            "o",
            markersize=14,
            markerfacecolor="none",
            markeredgecolor="tab:blue",
            label=f"recommended: {study.recommended.name}",
        )
    first = measured[0].measurement if measured else None
    provenance = first.provenance.value if first else "?"
    meter = math.sqrt(max(first.rel_uncertainty**2 - first.rel_spread**2, 0.0)) if first else 0.0
    meter_band = f", meter band ±{100 * meter:.0f} % common to all" if first else ""
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per sample (J, {provenance}; bars: repeat spread{meter_band})")
    ax.set_ylabel(study.quality_name)
    ax.set_title("greenai optimize: energy vs quality")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.subplots_adjust(left=0.07, right=0.61, bottom=0.12, top=0.92)
    fig.savefig(path)
    plt.close(fig)
    return path
