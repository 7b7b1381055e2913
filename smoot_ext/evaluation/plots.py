"""PNG figures of one evaluation: removal curves with bootstrap bands (the paper's Figure 3) and
saliency grids (Figure 2). Render only: every number drawn comes computed from the summary."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .results import RANDOM  # noqa: E402

STYLES = {"morf": "-", "lerf": "--", "random": ":"}  # line style per order; colour per model


def plot_removal_curves(results: dict, out_dir: str | Path) -> list[Path]:
    """One figure per saliency method, two panels (accuracy, true-class probability): per model
    one colour, MoRF solid, LeRF dashed, the random order dotted; each mean curve with its
    bootstrap band."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x = [100.0 * v for v in results["levels"]]
    models = results["models"]
    methods = list(results["methods"]) if any(o != RANDOM for o in results["orders"]) else [RANDOM]
    paths = []
    for m in methods:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, metric, label in zip(axes, ("accuracy", "probability"),
                                     ("test accuracy (%)", "true-class probability (%)")):
            for i, (name, entry) in enumerate(models.items()):
                curves = dict(entry["methods"].get(m, {}).get(metric, {}).get("curves", {}))
                if m != RANDOM:
                    curves.update(entry["methods"].get(RANDOM, {}).get(metric, {}).get("curves", {}))
                for order, c in curves.items():
                    ax.plot(x, c["mean"], STYLES[order], color=f"C{i}", marker="o", markersize=3,
                            label=f"{name}, {order}")
                    ax.fill_between(x, c["lo"], c["hi"], color=f"C{i}", alpha=0.2, linewidth=0)
            ax.set_xlabel("units removed (%)")
            ax.set_ylabel(label)
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Removal curves: {m} (bands: {100 * results['bootstrap']['confidence']:g}% bootstrap)",
                     fontsize=10)
        paths.append(save_figure(fig, out_dir / f"curves_{m}.png", dpi=120))
    return paths


def plot_saliency_grid(maps: dict, out_dir: str | Path) -> list[Path]:
    """One figure per saliency method: rows = test images, first column the image, then one
    column per trained model showing |saliency| (each map scaled to its own maximum). Sequences
    show time along x: a series and its element maps as features x steps, token ids and step
    maps as one row."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, labels = maps["images"], maps["labels"]
    sequence = maps.get("sequence", False)
    as_input, as_map = (_as_sequence, _as_sequence) if sequence else (_as_image, lambda t: t.float())
    aspect = "auto" if sequence else "equal"  # a 50 x 1 strip of tokens stays readable
    rows = images.shape[0]
    paths = []
    for m, per_model in maps["saliency"].items():
        cols = 1 + len(per_model)
        fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
        for r in range(rows):
            _show(axes[r, 0], as_input(images[r]), cmap="gray", aspect=aspect)
            axes[r, 0].set_ylabel(f"label {int(labels[r])}", fontsize=8)
            for c, (name, sal) in enumerate(per_model.items(), start=1):
                _show(axes[r, c], as_map(sal[r]), cmap="hot", aspect=aspect)
                if r == 0:
                    axes[r, c].set_title(name, fontsize=9)
        axes[0, 0].set_title("input", fontsize=9)
        fig.suptitle(f"{m}: |attribution| per {'unit' if sequence else 'pixel'}", fontsize=10)
        paths.append(save_figure(fig, out_dir / f"saliency_{m}.png", dpi=100))
    return paths


def save_figure(fig, path: Path, dpi: int) -> Path:
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


def _as_sequence(x: torch.Tensor) -> torch.Tensor:
    """(T,) -> (1, T); (T, D) -> (D, T): time along the x axis."""
    x = x.float()
    return x.unsqueeze(0) if x.dim() == 1 else x.T


def _show(ax, img: torch.Tensor, cmap: str, aspect: str = "equal"):
    kw = {"vmin": 0.0} if cmap == "hot" else {}
    ax.imshow(img.numpy(), cmap=cmap, aspect=aspect, **kw)
    ax.set_xticks([])
    ax.set_yticks([])
