"""Training runs compared across seeds: from the score records (``records``) to intervals over
seeds, the markdown, the CSV and the figures (what `smoot-reproduce` writes into ``--results``).
Needs no captum: a comparison of finished score files scores nothing.

Across seeds, each statistic gets a Student-t interval. The difference of two runs gets two
intervals: paired over seeds (a seed fixes the initial weights and the batch order for every
run, so run b minus run a on the same seed removes that shared variation) and Welch's, which
ignores the pairing.
"""
from __future__ import annotations

import csv
from itertools import combinations
from pathlib import Path

import numpy as np

from ..evaluation import eraser
from ..evaluation.localization import heading, table_keys
from ..evaluation.results import RANDOM, SALIENCY_STATISTICS, STATISTICS
from ..evaluation.statistics import DEFAULT_CONFIDENCE, format_interval, t_interval, welch_interval
from ..training.selection import scored_row
from .plots import plot_k_trajectories, plot_removal_curves_over_seeds
from .records import TRUTH_KEYS, compact_json

HISTORY_KEYS = ("epoch", "test_acc", "train_loss", "k_min", "k_median", "k_max", "k_mean", "time_s")
HEADLINE = {s.name for s in STATISTICS if s.headline}  # the statistics of the markdown's differences


def _values(records: dict[int, dict], get) -> np.ndarray:
    """One quantity of every seed, in seed order."""
    return np.array([get(records[s]) for s in sorted(records)], dtype=np.float64)


def _interval(values: np.ndarray, confidence: float) -> dict:
    out = {"mean": float(values.mean()), "n": int(len(values)), "values": [float(v) for v in values]}
    if len(values) > 1:
        _, lo, hi = t_interval(values[:, None], confidence)
        out.update(lo=float(lo[0]), hi=float(hi[0]))
    return out


def _quantities(records: dict[int, dict]) -> dict[tuple, callable]:
    """(kind, fill, method, metric, statistic) -> getter, for everything every seed has."""
    first = next(iter(records.values()))
    # The served model's accuracy: with a validation split, the best epoch's, not the last's.
    out = {("accuracy", "", "", "", "test_acc"):
           lambda r: 100.0 * scored_row(r["history"], r.get("selection"))["test_acc"]}
    if first["method"] != "baseline":
        for k in ("k_min", "k_median", "k_max"):
            out[("k", "", "", "", k)] = lambda r, k=k: r["history"][-1][k]
    for fill, scores in first["scores"].items():
        for method, metrics in scores["methods"].items():
            for metric, block in metrics.items():
                for stat in (s.name for s in SALIENCY_STATISTICS):
                    if stat in block:
                        out[("score", fill, method, metric, stat)] = (
                            lambda r, f=fill, m=method, mt=metric, st=stat:
                            r["scores"][f]["methods"][m][mt][st]["mean"])
        for kind in TRUTH_KEYS:
            for method, values in scores.get(kind, {}).items():
                for stat in values:
                    out[(kind, fill, method, "", stat)] = (
                        lambda r, f=fill, kd=kind, m=method, st=stat: _mean(r["scores"][f][kd][m][st]))
    ok = {}
    for key, get in out.items():
        try:
            [get(r) for r in records.values()]
        except (KeyError, IndexError):
            continue
        ok[key] = get
    return ok


def _mean(value) -> float:
    """A stored score: a number, or an estimate with its interval (ERASER's AOPC)."""
    return value["mean"] if isinstance(value, dict) else value


def summarise_runs(found: dict[str, dict[int, dict]], confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """Per run and quantity, the mean over seeds with its t interval; per pair of runs, the
    paired and the Welch interval of the difference (later run minus earlier)."""
    runs, diffs = {}, []
    getters = {run: _quantities(records) for run, records in found.items()}
    for run, records in found.items():
        rows = []
        for key, get in getters[run].items():
            values = _values(records, get)
            rows.append({"kind": key[0], "fill": key[1], "method": key[2], "metric": key[3], "statistic": key[4],
                         **_interval(values, confidence)})
        first = next(iter(records.values()))
        runs[run] = {"seeds": sorted(records), "epochs": sorted({r["epochs"] for r in records.values()}),
                     "method": first["method"], "k_rounding": first["k_rounding"], "quantities": rows}
    for a, b in combinations(found, 2):
        common = sorted(set(found[a]) & set(found[b]))
        for key in set(getters[a]) & set(getters[b]):
            if key[0] not in ("accuracy", "score", *TRUTH_KEYS) or (key[0] in TRUTH_KEYS and key[2] == RANDOM):
                continue  # the random map is the same for every run
            va, vb = _values(found[a], getters[a][key]), _values(found[b], getters[b][key])
            d = {"a": a, "b": b, "kind": key[0], "fill": key[1], "method": key[2], "metric": key[3],
                 "statistic": key[4], "mean": float(vb.mean() - va.mean())}
            if len(common) > 1:
                paired = np.array([getters[b][key](found[b][s]) - getters[a][key](found[a][s]) for s in common])
                m, lo, hi = t_interval(paired[:, None], confidence)
                d["paired"] = {"mean": float(m[0]), "lo": float(lo[0]), "hi": float(hi[0]), "seeds": common}
            if len(va) > 1 and len(vb) > 1:
                m, lo, hi = welch_interval(va[:, None], vb[:, None], confidence)
                d["welch"] = {"mean": float(m[0]), "lo": float(lo[0]), "hi": float(hi[0])}
            diffs.append(d)
    diffs.sort(key=lambda d: (d["kind"], d["fill"], d["method"], d["metric"], d["statistic"], d["a"], d["b"]))
    return {"confidence": confidence, "runs": runs, "differences": diffs,
            "k_trajectories": {run: {s: [{k: row.get(k) for k in HISTORY_KEYS} for row in r["history"]]
                                     for s, r in records.items()} for run, records in found.items()}}


def _fmt(q: dict | None, digits: int = 2) -> str:
    if q is None:
        return "-"
    if "lo" not in q:
        return f"{q['mean']:.{digits}f} (1 seed)"
    return format_interval(q["mean"], q["lo"], q["hi"], f".{digits}f")


def find_quantity(rows: list[dict], **want) -> dict | None:
    """The first summary row (a quantity or a difference) whose fields equal ``want``, or None."""
    for r in rows:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def compare(found: dict[str, dict[int, dict]], out: str | Path, confidence: float = DEFAULT_CONFIDENCE) -> list[Path]:
    """The comparison of the score records ``found`` ({run: {seed: record}}) written into
    ``out``: summary.json, summary.csv, summary.md, then the figures."""
    summary = summarise_runs(found, confidence)
    out = Path(out)
    return (write_summary(summary, out) + plot_k_trajectories(summary, out)
            + plot_removal_curves_over_seeds(curves_over_seeds(found, confidence), out, confidence))


def curves_over_seeds(found: dict[str, dict[int, dict]], confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """{(fill, method): {run: {order: {"levels", "mean", "lo", "hi"}}}}: each run's MoRF and LeRF
    accuracy curves, the mean over seeds with a t band over seeds (none for one seed)."""
    keys = sorted({(fill, method) for records in found.values() for r in records.values()
                   for fill, s in r["scores"].items() for method in s["methods"] if method != RANDOM})
    out: dict = {}
    for fill, method in keys:
        for run, records in found.items():
            for order in ("morf", "lerf"):
                try:
                    levels = next(iter(records.values()))["scores"][fill]["levels"]
                    rows = np.array([r["scores"][fill]["methods"][method]["accuracy"]["curves"][order]["mean"]
                                     for r in records.values()])
                except KeyError:
                    continue
                curve = {"levels": levels, "mean": rows.mean(0)}
                if len(rows) > 1:
                    _, curve["lo"], curve["hi"] = t_interval(rows, confidence)
                out.setdefault((fill, method), {}).setdefault(run, {})[order] = curve
    return out


def write_summary(summary: dict, out: str | Path) -> list[Path]:
    """summary.json, summary.csv (one row per run and quantity) and summary.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(compact_json(summary))
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "kind", "fill", "method", "metric", "statistic", "seeds", "mean", "lo", "hi"])
        for run, entry in summary["runs"].items():
            for q in entry["quantities"]:
                w.writerow([run, q["kind"], q["fill"], q["method"], q["metric"], q["statistic"], q["n"],
                            q["mean"], q.get("lo", ""), q.get("hi", "")])
    (out / "summary.md").write_text(markdown(summary))
    return [out / "summary.json", out / "summary.csv", out / "summary.md"]


def _reading_order(key: tuple[str, str, str]) -> tuple:
    """Saliency (what SGT and SMOOT train on) first, the paper's uniform fill first, accuracy first."""
    fill, method, metric = key
    return method != "saliency", method, fill != "uniform", fill, metric != "accuracy", metric


# ERASER's columns, as smoot-evaluate's report shows them: the AOPC curves, then macro agreement
ERASER_HEADINGS = {**eraser.HEADINGS, "token_f1": "Token F1", "iou_f1": "IOU F1", "auprc": "AUPRC"}


def _eraser_keys(keys) -> list[str]:
    present = set(keys)
    return [k for k in ERASER_HEADINGS if k in present]


# kind: (table title, the statistics shown in order, their headings)
TRUTH_TABLES = {
    "localisation": ("Localisation", table_keys, heading),
    "eraser": ("ERASER (AOPC: drop of the predicted class's probability, 0..1; agreement with the rationale)",
               _eraser_keys, ERASER_HEADINGS.get),
}


def _truth_tables(runs: dict, kind: str) -> list[str]:
    """Per fill and saliency method, each run's scores against the truth (localisation, or
    ERASER's), then the chance row: the seeded random map, scored as the runs' maps on the first
    run's models (the same for every run, except ERASER's AOPC, which depends on the model)."""
    title, order, name = TRUTH_TABLES[kind]
    lines = []
    groups = sorted({(q["fill"], q["method"]) for e in runs.values() for q in e["quantities"]
                     if q["kind"] == kind and q["method"] != RANDOM})
    for fill, method in groups:
        stats = order(q["statistic"] for e in runs.values() for q in e["quantities"]
                      if q["kind"] == kind and q["method"] == method and q["fill"] == fill)
        lines += ["", f"**{title}, {method}**", "", "| run | " + " | ".join(name(s) for s in stats) + " |",
                  "|---" * (len(stats) + 1) + "|"]
        rows = [(run, e["quantities"], method) for run, e in runs.items()]
        rows.append(("chance (random map)", next(iter(runs.values()))["quantities"], RANDOM))
        for who, quantities, m in rows:
            cells = [find_quantity(quantities, kind=kind, fill=fill, method=m, statistic=s) for s in stats]
            if m != RANDOM or any(cells):  # records scored before the chance row have none
                lines.append(f"| {who} | " + " | ".join(_fmt(c, 3) for c in cells) + " |")
    return lines


def markdown(summary: dict) -> str:
    """Tables: accuracy and final k per run; per fill and method, AUCs and SRG per run; the
    differences to the baseline and to SGT."""
    conf = round(100 * summary["confidence"])
    runs = summary["runs"]
    lines = [f"Means over seeds with {conf}% t intervals over seeds; differences with paired (same seed) "
             "and Welch intervals. Accuracies and AUCs in %.", "",
             "| run | seeds | epochs | test accuracy | k min | k median | k max |", "|---|---|---|---|---|---|---|"]
    for run, e in runs.items():
        q = e["quantities"]
        lines.append(f"| {run} | {len(e['seeds'])} | {'/'.join(map(str, e['epochs']))} | "
                     f"{_fmt(find_quantity(q, kind='accuracy'))} | "
                     + " | ".join(_fmt(find_quantity(q, kind="k", statistic=k), 1)
                                  for k in ("k_min", "k_median", "k_max"))
                     + " |")
    keys = sorted({(q["fill"], q["method"], q["metric"]) for e in runs.values() for q in e["quantities"]
                   if q["kind"] == "score"}, key=_reading_order)
    for fill, method, metric in keys:
        lines += ["", f"**{method}, {fill} fill, {metric} curve**", "",
                  "| run | " + " | ".join(s.title for s in SALIENCY_STATISTICS) + " |",
                  "|---" * (len(SALIENCY_STATISTICS) + 1) + "|"]
        for run, e in runs.items():
            cells = [_fmt(find_quantity(e["quantities"], kind="score", fill=fill, method=method, metric=metric,
                                statistic=s.name)) for s in SALIENCY_STATISTICS]
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
    lines += _truth_tables(runs, "localisation") + _truth_tables(runs, "eraser")
    diffs = [d for d in summary["differences"] if d["a"] in ("baseline", "sgt") and
             (d["kind"] in ("accuracy", *TRUTH_KEYS) or d["statistic"] in HEADLINE)]
    if diffs:
        lines += ["", "**Differences (b - a)**", "",
                  "| b - a | quantity | mean | paired interval | Welch interval |", "|---|---|---|---|---|"]
        for d in diffs:
            what = d["statistic"] if d["kind"] == "accuracy" else \
                f"{d['method']} {d['fill']} {d['metric']} {d['statistic']}".replace("  ", " ")
            lines.append(f"| {d['b']} - {d['a']} | {what} | {d['mean']:.2f} | {_fmt(d.get('paired'))} | "
                         f"{_fmt(d.get('welch'))} |")
    return "\n".join(lines) + "\n"
