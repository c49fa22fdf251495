"""Cost-quality plot of an eval report (optional: needs matplotlib, the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmswitch.evals.metrics import Point, nondecreasing_hull


class PlotError(RuntimeError):
    """The plot could not be drawn (matplotlib missing or file not writable)."""


def plot_report(report: dict[str, Any], path: Path, title: str | None = None) -> None:
    """Draw the router's curve and hull, single models, task-best and oracle hulls to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("--plot needs matplotlib: pip install 'llmswitch[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curve = report["curve"]
    ax.plot(
        [p["cost_usd"] for p in curve],
        [p["quality"] for p in curve],
        ".",
        alpha=0.4,
        label="router (λ sweep)",
    )
    hull = nondecreasing_hull([Point(p["cost_usd"], p["quality"]) for p in curve])
    ax.plot(
        [p.cost for p in hull],
        [p.quality for p in hull],
        "-",
        lw=2,
        label=f"router hull (AIQ {report['aiq']:.3f})",
    )
    single = report["baselines"]["single"]
    ax.scatter(
        [v["cost_usd"] for v in single.values()],
        [v["quality"] for v in single.values()],
        marker="x",
        color="grey",
        label="single models",
    )
    for name, v in single.items():
        ax.annotate(name, (v["cost_usd"], v["quality"]), fontsize=6, color="grey")
    for name in ("task_best", "oracle"):
        b = report["baselines"].get(name)
        if b:
            ax.scatter([b["cost_usd"]], [b["quality"]], label=f"{name} (AIQ {b['aiq']:.3f})")
    best = report["best_single"]
    ax.axhline(0.95 * best["quality"], ls=":", color="k", lw=0.8, label="95% of best single")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per prompt (USD, log)")
    ax.set_ylabel("mean quality")
    ax.set_title(title or f"{report['n_prompts']} prompts")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise PlotError(f"cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)
