"""PNG plots of a training run: learning curves and the SMOOT k histogram (matplotlib, Agg)."""
from __future__ import annotations

from .._extras import require

require("train", "matplotlib")

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(history: list[dict], path: str, title: str = "") -> None:
    """Train loss, test (and validation) accuracy and k min/median/max against the epoch."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [r["train_loss"] for r in history], marker=".", label="loss")
    axes[0].plot(epochs, [r["train_ce"] for r in history], marker=".", label="cross-entropy")
    axes[0].set(xlabel="epoch", ylabel="train loss")
    axes[0].legend()
    axes[1].plot(epochs, [100 * r["test_acc"] for r in history], marker=".", color="tab:green", label="test")
    if "val_acc" in history[-1]:  # a validation split: its accuracy and the best epoch, the one served
        axes[1].plot(epochs, [100 * r["val_acc"] for r in history], marker=".", color="tab:orange", label="validation")
        axes[1].axvline(history[-1]["best_epoch"], color="grey", linestyle="--", label="best epoch")
        axes[1].legend()
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)" if "val_acc" in history[-1] else "test accuracy (%)")
    for key in ("k_max", "k_median", "k_min"):
        axes[2].plot(epochs, [r[key] for r in history], marker=".", label=key[2:])
    axes[2].set(xlabel="epoch", ylabel="k (masked units)")
    axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_k_histogram(k_summary: dict, path: str, title: str = "") -> None:
    """Histogram of the per-sample k vector (SMOOT), with the k_min/k_max bounds marked;
    ``k_summary`` is ``SaliencyGuidedTraining.k_summary()``."""
    k = k_summary["k"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if k is None:
        ax.text(0.5, 0.5, "no per-sample k (baseline or SGT)", ha="center", va="center",
                transform=ax.transAxes)
    else:
        k = k.cpu()
        lo, hi = int(k.min()), int(k.max())
        ax.hist(k.numpy(), bins=range(lo, hi + 2), align="left", color="tab:blue")
        for bound in (k_summary["kmin"], k_summary["kmax"]):
            ax.axvline(bound, color="tab:red", linestyle="--", linewidth=1)
        ax.set(xlabel=f"k (masked units of {k_summary['num_units']})", ylabel="samples")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
