"""Write the evaluation: JSON, CSV tables, the per-image results (NPZ and CSV) and report.md.

Files (all in one folder):

- results.json: the summary (``summary.summarise``) plus the run's configuration and timing;
- summary.csv: one row per model x saliency method x metric, every statistic with its interval;
- differences.csv: one row per pair of models x method x metric x statistic (paired bootstrap);
- curves.csv: one row per model x method x order x metric x level (mean curve and its band);
- per_image.npz: every per-image curve (``key(model, checkpoint, method, order, metric)``),
  with the levels, labels and test-set positions, so any statistic can be recomputed;
- per_image.csv: one row per model x checkpoint x method x image: its AUCs and SRG;
- eraser.csv (text with a rationale): one row per model x method, ERASER's AOPC comprehensiveness
  and sufficiency (tokens deleted, tokens replaced) and agreement (token F1, IOU F1, AUPRC);
- report.md: the tables, with intervals, and the figures.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from . import eraser
from .imputation import IMPUTATIONS
from .localization import heading, table_keys
from .results import METRIC_NAMES, METRICS, ORDER_WORDS, RANDOM, SALIENCY_STATISTICS, STATISTICS, PerImage
from .statistics import format_interval

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


def npz_key(model: str, checkpoint: int, method: str, order: str, metric: str) -> str:
    """The per_image.npz array of one curve; "clean" as method and order for the unmasked scores."""
    return f"{model}/{checkpoint}/{method}/{order}/{metric}"


def write_report(results: dict, per_image: PerImage, out_dir: str | Path, figures=()) -> dict[str, Path]:
    """Writes every file of the module docstring into ``out_dir``; returns their paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "summary_csv": out_dir / "summary.csv",
             "differences_csv": out_dir / "differences.csv", "curves_csv": out_dir / "curves.csv",
             "per_image_npz": out_dir / "per_image.npz", "per_image_csv": out_dir / "per_image.csv",
             "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    _write_csv(paths["summary_csv"], *_summary_rows(results))
    _write_csv(paths["differences_csv"], ["a", "b", "method", "metric", "statistic", "mean", "lo", "hi",
                                          "seeds_lo", "seeds_hi"],
               [[d["a"], d["b"], d["method"], d["metric"], d["statistic"], *_fmt(d), *_seed_fmt(d)]
                for d in results["differences"]])
    _write_csv(paths["curves_csv"], ["model", "method", "order", "metric", "level", "mean", "lo", "hi"],
               [[name, m, o, metric, f"{lv:g}", *(f"{c[k][i]:.4f}" for k in ("mean", "lo", "hi"))]
                for name, entry in results["models"].items() for m, per in entry["methods"].items()
                for metric, block in per.items() for o, c in block["curves"].items()
                for i, lv in enumerate(results["levels"])])
    _write_per_image(per_image, paths["per_image_npz"], paths["per_image_csv"])
    if per_image.eraser:
        paths["eraser_csv"] = out_dir / "eraser.csv"
        _write_csv(paths["eraser_csv"], *eraser.csv_rows(results))
    rel = [Path(p).relative_to(out_dir) if Path(p).is_relative_to(out_dir) else Path(p) for p in figures]
    paths["markdown"].write_text(markdown(results, rel))
    return paths


def _write_csv(path: Path, header, rows) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _fmt(stat: dict) -> list[str]:
    return [f"{stat[k]:.4f}" for k in ("mean", "lo", "hi")]


def _seed_fmt(stat: dict) -> list[str]:
    s = stat.get("seeds")
    return [f"{s['lo']:.4f}", f"{s['hi']:.4f}"] if s else ["", ""]


def _localisation_keys(models: dict) -> list[str]:
    return table_keys(k for e in models.values() for per in e.get("localisation", {}).values() for k in per)


def _summary_rows(results: dict):
    header = ["model", "checkpoints", "method", "metric", "num_test", "accuracy", "accuracy_lo", "accuracy_hi"]
    for s in STATISTICS:
        header += [s.name, f"{s.name}_lo", f"{s.name}_hi", f"{s.name}_seeds_lo", f"{s.name}_seeds_hi"]
    keys = _localisation_keys(results["models"])
    header += keys
    rows = []
    for name, entry in results["models"].items():
        loc = entry.get("localisation", {})
        start = [name, entry["checkpoints"]]
        for m, per in entry["methods"].items():
            for metric, block in per.items():
                row = [*start, m, metric, results["num_test"], *_fmt(entry["accuracy"])]
                for s in STATISTICS:
                    row += _fmt(block[s.name]) + _seed_fmt(block[s.name]) if s.name in block else [""] * 5
                rows.append(row + [f"{loc[m][k]:.4f}" if k in loc.get(m, {}) else "" for k in keys])
        if RANDOM in loc and RANDOM not in entry["methods"]:  # the random map's chance row, without curves
            rows.append([*start, RANDOM, "", results["num_test"], *_fmt(entry["accuracy"]),
                         *[""] * (5 * len(STATISTICS)), *(f"{loc[RANDOM][k]:.4f}" for k in keys)])
    return header, rows


def _write_per_image(per_image: PerImage, npz_path: Path, csv_path: Path) -> None:
    arrays = {"levels": np.asarray(per_image.levels), "labels": per_image.labels, "index": per_image.index}
    header = ["model", "checkpoint", "method", "image", "label", "clean_correct", "clean_probability"]
    header += [f"{s.name}_{METRIC_NAMES[metric]}" for metric in METRICS for s in STATISTICS]
    rows = []
    for name, runs in per_image.runs.items():
        for c, run in enumerate(runs):
            for metric, v in run["clean"].items():
                arrays[npz_key(name, c, "clean", "clean", metric)] = v
            for (m, o), per in run["curves"].items():
                for metric, v in per.items():
                    arrays[npz_key(name, c, m, o, metric)] = v
            stats = per_image.statistics[name][c]
            for m in sorted(stats, key=lambda m: (m == RANDOM, m)):
                cols = [stats[m][metric].get(s.name) for metric in METRICS for s in STATISTICS]
                for i in range(per_image.num_images):
                    rows.append([name, c, m, int(per_image.index[i]), int(per_image.labels[i]),
                                 int(run["clean"]["correct"][i]), f"{run['clean']['probability'][i]:.6f}",
                                 *("" if v is None else f"{v[i]:.4f}" for v in cols)])
    np.savez_compressed(npz_path, **arrays)
    _write_csv(csv_path, header, rows)


# --- markdown ---------------------------------------------------------------------------------

def markdown(results: dict, figures=()) -> str:
    cfg = results["config"]
    models = results["models"]
    dataset = results.get("dataset", "")
    boot = results["bootstrap"]
    conf = f"{100 * boot['confidence']:g}%"
    lines = [
        "# Saliency faithfulness evaluation",
        "",
        f"- test images: {results['num_test']}" + (f" of `{dataset}`" if dataset else ""),
        f"- saliency methods: {', '.join(results['methods'])}; units ranked by "
        f"{'|attribution|' if cfg['abs'] else 'signed attribution'} per {cfg['unit']}",
        f"- orders: {'; '.join(ORDER_WORDS[o] for o in results['orders'])}",
        f"- levels (fraction of the {cfg['unit']}s removed): {', '.join(f'{v:g}' for v in results['levels'])}",
        f"- fill of removed units: {IMPUTATIONS[cfg['fill']].words(cfg)}",
        f"- AUC: {results['auc_convention']}",
        "- SRG (symmetric relevance gain) = AUC(LeRF) - AUC(MoRF): larger = more faithful saliency",
        f"- intervals: {conf} percentile bootstrap over the test images ({boot['resamples']} resamples, "
        f"seed {boot['seed']}); every model sees the same images, random order and fill draws, so "
        "differences are paired. With several checkpoints per model, a model's value is the mean over "
        f"its checkpoints, and `seeds` is the {conf} Student-t interval over the checkpoints",
        "",
    ]
    lines += _models_table(results, conf)
    for metric, title in (("accuracy", "Accuracy (%)"), ("probability", "True-class probability (%)")):
        lines += _statistics_table(results, metric, title, conf)
    lines += _seeds_table(results, conf)
    lines += _differences_table(results, conf)
    lines += eraser.markdown_table(results)
    lines += _localisation_table(models)
    paper = PAPER_TABLES.get(dataset)
    if paper:
        lines += [f"## The paper's table for {dataset} (100 epochs, full test set), for comparison", "",
                  "Its AUC is a MoRF accuracy AUC; its exact convention is not stated.", "",
                  "| Method | # Test | Min(K) | Median(K) | Max(K) | Accuracy | AUC |", "|---|---|---|---|---|---|---|"]
        for name, (n, kmin, kmed, kmax, acc, a) in paper.items():
            lines.append(f"| {name} | {n} | {kmin} | {kmed} | {kmax} | {acc:.2f}% | {a:.2f} |")
        lines.append("")
    if figures:
        lines += ["## Figures", "", "Lines: the mean curve; bands: its per-level bootstrap interval.", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in figures] + [""]
    return "\n".join(lines)


def _localisation_table(models: dict) -> list[str]:
    """Each model's and method's localisation, then the chance row: a seeded uniform random map
    scored the same way (the same for every model)."""
    keys = _localisation_keys(models)
    if not keys:
        return []
    lines = ["## Localisation against the ground-truth region (mean over images)", "",
             "Precision@region: share of the region-sized top of the map inside the region. AUROC: the map "
             "as a detector of the region's units. AUP, AUR: the time-series benchmark's (Ismail et al. 2020) "
             "saliency-weighted precision and recall, integrated over its levels 0.1-0.9 (at most 0.8); "
             "time and feature: of the steps and features holding selected units. A series is scored per "
             "element; \"(steps)\" per time step, only where the truth covers at most half of the steps. "
             "Chance: a seeded uniform random map.", "",
             "| Model | Saliency | " + " | ".join(heading(k) for k in keys) + " |", "|---|---|" + "---|" * len(keys)]

    def row(who: str, what: str, c: dict) -> str:
        return f"| {who} | {what} | " + " | ".join(f"{c[k]:.3f}" if k in c else "-" for k in keys) + " |"

    for name, entry in models.items():
        lines += [row(name, m, c) for m, c in entry.get("localisation", {}).items() if m != RANDOM]
    chance = next((e["localisation"][RANDOM] for e in models.values() if RANDOM in e.get("localisation", {})), None)
    return lines + ([row("chance", "random map (seeded uniform)", chance)] if chance else []) + [""]


def _interval(stat: dict, digits: int = 2) -> str:
    return format_interval(stat["mean"], stat["lo"], stat["hi"], f".{digits}f")


def _models_table(results: dict, conf: str) -> list[str]:
    lines = ["## Models", "",
             f"| Model | # Test | Min(K) | Median(K) | Max(K) | Accuracy [{conf}] | Trainer's test accuracy "
             "| Checkpoints |", "|---|---|---|---|---|---|---|---|"]
    for name, entry in results["models"].items():
        infos = entry.get("info", [])
        k = [("/".join(str(i[key]) for i in infos if i.get(key) is not None) or "-")
             for key in ("k_min", "k_median", "k_max")]
        lines.append(f"| {name} | {results['num_test']} | " + " | ".join(k)
                     + f" | {_interval(entry['accuracy'])}% | {_trainer_acc(infos)} | {entry['checkpoints']} |")
    return lines + [""]


def _statistics_table(results: dict, metric: str, title: str, conf: str) -> list[str]:
    """One row per model and saliency method; the random order's statistics, one per model,
    repeated on its rows (or alone, when only the random order was scored)."""
    models = results["models"].values()
    stats = [s for s in SALIENCY_STATISTICS
             if any(s.name in per[metric] for e in models for m, per in e["methods"].items() if m != RANDOM)]
    rnd = [s for s in STATISTICS if not s.of_saliency
           and any(s.name in e["methods"].get(RANDOM, {}).get(metric, {}) for e in models)]
    if not stats and not rnd:
        return []
    lines = [f"## {title}: {', '.join(s.heading for s in stats + rnd)}", "",
             f"Mean over test images [{conf} bootstrap interval].", "",
             "| Model | Saliency | " + " | ".join(s.title for s in stats + rnd) + " |",
             "|---|---|" + "---|" * len(stats + rnd)]
    for name, entry in results["models"].items():
        random_block = entry["methods"].get(RANDOM, {}).get(metric, {})
        for m in results["methods"] if stats else [RANDOM]:
            block = entry["methods"].get(m, {}).get(metric, {})
            cells = [_interval(block[s.name]) if s.name in block else "-" for s in stats]
            cells += [_interval(random_block[s.name]) for s in rnd]
            lines.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
    return lines + [""]


def _seeds_table(results: dict, conf: str) -> list[str]:
    rows = []
    for name, entry in results["models"].items():
        if entry["checkpoints"] < 2:
            continue
        for m, per in entry["methods"].items():
            for metric, block in per.items():
                for s in STATISTICS:
                    if s.name in block:
                        seeds = block[s.name]["seeds"]
                        rows.append(f"| {name} | {m} | {metric} | {s.name} | {_interval(seeds)} | "
                                    + ", ".join(f"{v:.2f}" for v in seeds["values"]) + " |")
    if not rows:
        return []
    return ["## Across checkpoints (seeds)", "",
            f"Each checkpoint scored on all test images; mean over checkpoints [{conf} Student-t interval "
            "over checkpoints], and each checkpoint's value.", "",
            "| Model | Saliency | Metric | Statistic | Mean [interval] | Per checkpoint |",
            "|---|---|---|---|---|---|", *rows, ""]


def _differences_table(results: dict, conf: str) -> list[str]:
    diffs = results["differences"]
    if not diffs:
        return []
    rows: dict[tuple, dict] = {}  # (B - A, method, metric) -> {statistic: difference}
    for d in diffs:
        rows.setdefault((f"{d['b']} - {d['a']}", d["method"], d["metric"]), {})[d["statistic"]] = d
    stats = [s for s in STATISTICS if any(s.name in per for per in rows.values())]
    lines = ["## Differences between models", "",
             f"B - A, mean over the same test images [{conf} paired bootstrap interval]; an interval that "
             "excludes 0 is a difference the test set resolves. `seeds`: the Welch interval over the "
             "models' checkpoints, where both have several.", "",
             "| B - A | Saliency | Metric | " + " | ".join(f"Difference in {s.heading}" for s in stats)
             + " |", "|---|---|---|" + "---|" * len(stats)]
    for (pair, m, metric), per in rows.items():
        cells = [_interval(per[s.name]) + (f"; seeds [{per[s.name]['seeds']['lo']:.2f}, "
                                           f"{per[s.name]['seeds']['hi']:.2f}]" if "seeds" in per[s.name] else "")
                 if s.name in per else "-" for s in stats]
        lines.append(f"| {pair} | {m} | {metric} | " + " | ".join(cells) + " |")
    return lines + [""]


def _trainer_acc(infos: list[dict]) -> str:
    """The training runs' last test accuracy (full test set unless they ran on a subset)."""
    accs = [i for i in infos if i.get("train_test_acc") is not None]
    if not accs:
        return "-"
    sub = accs[0].get("train_test_subset")
    return "/".join(f"{i['train_test_acc']:.2f}%" for i in accs) + f" ({sub or 'full'} test)"
