"""The energy-quality plot of a study (matplotlib, written to a PNG file)."""

from __future__ import annotations

from pathlib import Path

from greenai.optimize.search import Study


def plot_study(study: Study, path: Path) -> Path:
    """Energy per sample (log x, with ~95 % bars) against quality; the Pareto front joined,
    the quality bound dashed, the recommendation ringed."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on servers
    import matplotlib.pyplot as plt

    measured = [o for o in study.outcomes if o.measurement is not None and o.quality is not None]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for o in measured:
        m = o.measurement
        assert m is not None
        on_front = o.name in study.front
        ax.errorbar(m.energy_per_sample_j, o.quality, xerr=m.energy_per_sample_j * m.rel_uncertainty,
                    fmt="o", color="tab:green" if on_front else "tab:gray", capsize=3, alpha=0.9)
        ax.annotate(o.name, (m.energy_per_sample_j, o.quality), textcoords="offset points",
                    xytext=(5, 4), fontsize=7)
    front = [study.outcome(name) for name in study.front]
    ax.plot([o.energy_j for o in front], [o.quality for o in front], "-", color="tab:green",
            label="Pareto front")
    ax.axhline(study.bound, linestyle="--", color="tab:red", label=f"quality bound {study.bound:.4g}")
    if study.recommended is not None and study.recommended.energy_j is not None:
        ax.plot(study.recommended.energy_j, study.recommended.quality, "o", markersize=14,
                markerfacecolor="none", markeredgecolor="tab:blue", label=f"recommended: {study.recommended.name}")
    provenance = measured[0].measurement.provenance.value if measured and measured[0].measurement else "?"
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per sample (J, {provenance}; bars ~95 %)")
    ax.set_ylabel(study.quality_name)
    ax.set_title("greenai optimize: energy vs quality")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
