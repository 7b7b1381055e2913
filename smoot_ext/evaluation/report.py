"""Write the evaluation as JSON, CSV and a markdown report in the paper's table layout."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .runner import RANDOM

# The paper's Tables 2-3 (CNN, 100 epochs, A100): (# test, min k, median k, max k, accuracy %, AUC).
PAPER_TABLES = {
    "mnist": {
        "Traditional": ("10K", 0, 0, 0, 99.40, 36.35),
        "SGT": ("10K", 392, 392, 392, 99.35, 34.67),
        "SMOOT": ("10K", 234, 388, 544, 99.40, 33.16),
    },
    "fashion-mnist": {
        "Traditional": ("10K", 0, 0, 0, 93.60, 40.79),
        "SGT": ("10K", 392, 392, 392, 93.35, 39.91),
        "SMOOT": ("10K", 223, 372, 576, 93.65, 36.18),
    },
}
LOCALIZATION = ("precision_at_region", "auroc")


def write_report(results: dict, out_dir: str | Path, figures: list[Path] = ()) -> dict[str, Path]:
    """results.json, curves.csv (one row per model x method x percentage), summary.csv (one row
    per model x method) and report.md. Returns the paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "curves_csv": out_dir / "curves.csv",
             "summary_csv": out_dir / "summary.csv", "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")

    with paths["curves_csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "saliency", "percent_removed", "accuracy"])
        for name, entry in results["models"].items():
            for m, c in entry["curves"].items():
                for p, a in zip(results["percentages"], c["accuracy"]):
                    w.writerow([name, m, p, f"{a:.4f}"])

    with paths["summary_csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "saliency", "num_test", "k_min", "k_median", "k_max", "accuracy", "auc",
                    *LOCALIZATION])
        for name, entry in results["models"].items():
            k = _k(entry)
            for m, c in entry["curves"].items():
                w.writerow([name, m, results["num_test"], *k, f"{entry['accuracy']:.4f}", f"{c['auc']:.4f}",
                            *(f"{c[key]:.4f}" if key in c else "" for key in LOCALIZATION)])

    paths["markdown"].write_text(markdown(results, [Path(p).relative_to(out_dir) if Path(p).is_relative_to(out_dir)
                                                    else Path(p) for p in figures]))
    return paths


def markdown(results: dict, figures=()) -> str:
    cfg = results["config"]
    models = results["models"]
    methods = [m for m in next(iter(models.values()))["curves"] if m != RANDOM]
    dataset = results.get("dataset", "")
    lines = [
        "# Saliency evaluation",
        "",
        f"- test images: {results['num_test']}" + (f" of `{dataset}`" if dataset else ""),
        f"- removed: the most salient {cfg['unit']}s first (ranked by "
        f"{'|attribution|' if cfg['abs'] else 'signed attribution'}), at "
        f"{', '.join(f'{p:g}' for p in results['percentages'])} %",
        f"- fill of removed units: {cfg['fill']}"
        + (f" (value {', '.join(f'{v:.4g}' for v in cfg['background'])}: black in the data's units)"
           if cfg["fill"] == "background"
           else " (uniform in [min, max] of the kept units, as in training)"),
        f"- AUC units: {results['auc_units']}; smaller = steeper drop = better saliency",
        "- random: the same removal with a uniformly random ranking (seed "
        f"{cfg['seed']}, identical for every model)",
        "",
    ]
    for m in methods:
        lines += [f"## Accuracy drop: {m}", "",
                  "| Method | # Test | Min(K) | Median(K) | Max(K) | Accuracy | AUC | AUC (random order) "
                  "| Trainer's test accuracy |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, entry in models.items():
            c, r = entry["curves"][m], entry["curves"][RANDOM]
            lines.append(f"| {name} | {results['num_test']} | " + " | ".join(_k(entry))
                         + f" | {entry['accuracy']:.2f}% | {c['auc']:.2f} | {r['auc']:.2f} | {_trainer_acc(entry)} |")
        lines.append("")
    if any(key in entry["curves"][m] for entry in models.values() for m in methods for key in LOCALIZATION):
        lines += ["## Localisation against the ground-truth region (mean over images)", "",
                  "Precision: share of the region-sized top of the map inside the region (chance = "
                  "region share). AUROC: saliency as a detector of region pixels (chance = 0.5).", "",
                  "| Model | Saliency | Precision@region | AUROC |", "|---|---|---|---|"]
        for name, entry in models.items():
            for m in methods:
                c = entry["curves"][m]
                lines.append(f"| {name} | {m} | {c['precision_at_region']:.3f} | {c['auroc']:.3f} |")
        lines.append("")
    paper = PAPER_TABLES.get(dataset)
    if paper:
        lines += [f"## The paper's table for {dataset} (100 epochs, full test set), for comparison", "",
                  "| Method | # Test | Min(K) | Median(K) | Max(K) | Accuracy | AUC |", "|---|---|---|---|---|---|---|"]
        for name, (n, kmin, kmed, kmax, acc, a) in paper.items():
            lines.append(f"| {name} | {n} | {kmin} | {kmed} | {kmax} | {acc:.2f}% | {a:.2f} |")
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(p).stem}]({p})" for p in figures] + [""]
    return "\n".join(lines)


def _k(entry: dict) -> list[str]:
    info = entry.get("info", {})
    return [str(info[key]) if info.get(key) is not None else "-" for key in ("k_min", "k_median", "k_max")]


def _trainer_acc(entry: dict) -> str:
    """The training run's last test accuracy (full test set unless it ran on a subset)."""
    info = entry.get("info", {})
    if info.get("train_test_acc") is None:
        return "-"
    sub = info.get("train_test_subset")
    return f"{info['train_test_acc']:.2f}% ({sub or 'full'} test)"
