"""Runs of one smoot-reproduce summary side by side, against one of them: per quantity, each run's
mean over seeds [t interval], and each run's paired (same seed) difference to the reference
(bold where the interval leaves out 0); then how many of all the score differences leave out 0,
beside the count chance alone gives at the intervals' level.

    python scripts/paired_table.py docs/results/mnist-99 --reference sgt \
        --runs sgt-k0.2985 sgt sgt-k0.6939
"""
import argparse
import json
from pathlib import Path

from smoot_ext.evaluation.statistics import format_interval
from smoot_ext.study.comparison import find_quantity

FIELDS = ("kind", "fill", "method", "metric", "statistic")  # what names a quantity in summary.json

# (label, kind, fill, method, metric, statistic): the rows printed unless --all
NAMES = {"saliency": "Saliency", "integrated_gradients": "IG", "auc_morf": "MoRF", "auc_lerf": "LeRF", "srg": "SRG"}
HEADLINE = (("test accuracy", "accuracy", "", "", "", "test_acc"),
            ("k median", "k", "", "", "", "k_median"),
            *((f"{NAMES[m]}, {f}: {NAMES[s]}", "score", f, m, "accuracy", s)
              for m in ("saliency", "integrated_gradients") for f in ("uniform", "road")
              for s in ("auc_morf", "auc_lerf", "srg")))


def _difference(summary: dict, ref: str, run: str, key: tuple) -> dict | None:
    """The paired interval of run - ref (the summary stores each pair once, in either order)."""
    for d in summary["differences"]:
        if tuple(d[f] for f in FIELDS) != key or "paired" not in d:
            continue
        p = d["paired"]
        if (d["a"], d["b"]) == (ref, run):
            return p
        if (d["a"], d["b"]) == (run, ref):
            return {"mean": -p["mean"], "lo": -p["hi"], "hi": -p["lo"]}
    return None


def _cell(q: dict | None, sign: bool = False) -> str:
    if q is None or "lo" not in q:
        return "-"
    text = format_interval(q["mean"], q["lo"], q["hi"], ".2f", sign)
    return f"**{text}**" if sign and (q["lo"] > 0 or q["hi"] < 0) else text


def table(summary: dict, runs: list[str], ref: str) -> list[str]:
    others = [r for r in runs if r != ref]
    lines = ["| quantity | " + " | ".join(runs) + " | " + " | ".join(f"{r} - {ref}" for r in others) + " |",
             "|---" * (1 + len(runs) + len(others)) + "|"]
    for label, *key in HEADLINE:
        key = tuple(key)
        cells = [_cell(find_quantity(summary["runs"][r]["quantities"], **dict(zip(FIELDS, key)))) for r in runs]
        cells += [_cell(_difference(summary, ref, r, key), sign=True) for r in others]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def resolved_counts(summary: dict, runs: list[str], ref: str) -> list[str]:
    """Per run, how many of its score differences to ref leave out 0, of how many."""
    out = []
    for run in (r for r in runs if r != ref):
        keys = [tuple(q[f] for f in FIELDS) for q in summary["runs"][run]["quantities"] if q["kind"] == "score"]
        diffs = [p for p in (_difference(summary, ref, run, k) for k in keys) if p is not None]
        hits = sum(p["lo"] > 0 or p["hi"] < 0 for p in diffs)
        chance = (1 - summary["confidence"]) * len(diffs)
        out.append(f"- {run} - {ref}: {hits} of {len(diffs)} score differences leave out 0 "
                   f"(chance alone: about {chance:.1f})")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="a smoot-reproduce --results folder (its summary.json)")
    p.add_argument("--runs", nargs="+", required=True, help="the runs, in the columns' order")
    p.add_argument("--reference", required=True, help="the run the differences are taken to")
    args = p.parse_args(argv)
    summary = json.loads((args.folder / "summary.json").read_text())
    missing = [r for r in [*args.runs, args.reference] if r not in summary["runs"]]
    if missing:
        raise SystemExit(f"--runs/--reference: {missing} not in {args.folder / 'summary.json'} "
                         f"(it has {sorted(summary['runs'])})")
    print("\n".join(table(summary, args.runs, args.reference) + [""] +
                    resolved_counts(summary, args.runs, args.reference)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
