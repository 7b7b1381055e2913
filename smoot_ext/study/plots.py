"""PNG figures of a comparison over training seeds: removal curves with bands over seeds and
SMOOT's k per epoch. Render only: every number drawn comes from the comparison."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# plt as evaluation.plots sets it up: files only, no display.
from ..evaluation.plots import STYLES, plt, save_figure
from ..evaluation.statistics import DEFAULT_CONFIDENCE


def plot_k_trajectories(summary: dict, out: Path) -> list[Path]:
    """k_trajectories.png: per SMOOT run and seed, the median k per epoch with its min-max band."""
    smoot = {run: seeds for run, seeds in summary["k_trajectories"].items()
             if summary["runs"][run]["method"] == "smoot"}
    if not smoot:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (run, seeds) in enumerate(smoot.items()):
        color = f"C{i}"
        for j, (_, rows) in enumerate(sorted(seeds.items())):
            epochs = [r["epoch"] for r in rows]
            ax.plot(epochs, [r["k_median"] for r in rows], color=color, marker="o", ms=3,
                    label=run if j == 0 else None)
            ax.fill_between(epochs, [r["k_min"] for r in rows], [r["k_max"] for r in rows], color=color, alpha=0.08)
    ax.set(xlabel="epoch", ylabel="k (median; band: min-max)", title="SMOOT's per-sample k, one line per seed")
    ax.legend()
    return [save_figure(fig, out / "k_trajectories.png", dpi=110)]


def plot_removal_curves_over_seeds(curves: dict, out: Path, confidence: float = DEFAULT_CONFIDENCE) -> list[Path]:
    """curves_<method>_<fill>.png: accuracy after removing the top (MoRF) / bottom (LeRF) fraction,
    mean over seeds with its band, one colour per run (``comparison.curves_over_seeds`` gives them)."""
    paths = []
    for (fill, method), runs in curves.items():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for i, (run, orders) in enumerate(runs.items()):
            for order, c in orders.items():
                x = 100 * np.asarray(c["levels"])
                ax.plot(x, c["mean"], STYLES[order], color=f"C{i}", label=f"{run} {order.upper()}")
                if "lo" in c:
                    ax.fill_between(x, c["lo"], c["hi"], color=f"C{i}", alpha=0.15)
        ax.set(xlabel="% of pixels removed", ylabel="test accuracy (%)",
               title=f"{method}, {fill} fill: mean over seeds, {round(100 * confidence)}% band")
        ax.legend(fontsize=7)
        paths.append(save_figure(fig, out / f"curves_{method}_{fill}.png", dpi=110))
    return paths
