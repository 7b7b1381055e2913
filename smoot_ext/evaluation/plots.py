"""PNG figures: accuracy-drop curves (the paper's Figure 3) and saliency grids (Figure 2)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .runner import RANDOM  # noqa: E402


def plot_curves(results: dict, out_dir: str | Path) -> list[Path]:
    """One figure per saliency method: a solid line per trained model, its random-ranking
    baseline dashed in the same colour."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pct = results["percentages"]
    models = results["models"]
    methods = [m for m in next(iter(models.values()))["curves"] if m != RANDOM]
    paths = []
    for m in methods:
        fig, ax = plt.subplots(figsize=(5, 4))
        for i, (name, entry) in enumerate(models.items()):
            colour = f"C{i}"
            c = entry["curves"][m]
            ax.plot(pct, c["accuracy"], "o-", color=colour, label=f"{name} (AUC {c['auc']:.2f})")
            r = entry["curves"][RANDOM]
            ax.plot(pct, r["accuracy"], "--", color=colour, alpha=0.7,
                    label=f"{name}, random order (AUC {r['auc']:.2f})")
        ax.set_xlabel("features removed, most salient first (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"Accuracy drop: {m}")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths.append(_save(fig, out_dir / f"curves_{m}.png", dpi=120))
    return paths


def plot_saliency_grid(maps: dict, out_dir: str | Path) -> list[Path]:
    """One figure per saliency method: rows = test images, first column the image, then one
    column per trained model showing |saliency| (each map scaled to its own maximum)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, labels = maps["images"], maps["labels"]
    rows = images.shape[0]
    paths = []
    for m, per_model in maps["saliency"].items():
        cols = 1 + len(per_model)
        fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
        for r in range(rows):
            _show(axes[r, 0], _as_image(images[r]), cmap="gray")
            axes[r, 0].set_ylabel(f"label {int(labels[r])}", fontsize=8)
            for c, (name, sal) in enumerate(per_model.items(), start=1):
                _show(axes[r, c], sal[r].float(), cmap="hot")
                if r == 0:
                    axes[r, c].set_title(name, fontsize=9)
        axes[0, 0].set_title("input", fontsize=9)
        fig.suptitle(f"{m}: |attribution| per pixel", fontsize=10)
        paths.append(_save(fig, out_dir / f"saliency_{m}.png", dpi=100))
    return paths


def _save(fig, path: Path, dpi: int) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _as_image(x: torch.Tensor) -> torch.Tensor:
    """CHW -> HW (one channel) or HWC scaled to [0, 1] (colour) for imshow."""
    if x.shape[0] == 1:
        return x[0].float()
    x = x.permute(1, 2, 0).float()
    return (x - x.min()) / (x.max() - x.min()).clamp(min=1e-12)


def _show(ax, img: torch.Tensor, cmap: str):
    kw = {"vmin": 0.0} if cmap == "hot" else {}
    ax.imshow(img.numpy(), cmap=cmap, **kw)
    ax.set_xticks([])
    ax.set_yticks([])
