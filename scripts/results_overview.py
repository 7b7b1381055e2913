"""One markdown table over several smoot-reproduce result folders (their summary.json): per folder
and saliency method, the baseline's value and the paired (same seed) differences SGT - baseline,
SMOOT - SGT and SMOOT (trunc) - SGT, with their intervals over seeds, for test accuracy, AUROC
against the truth, SRG (accuracy curve) and the time-series benchmark's AUP ("-" in folders
scored before it existed). The per-run tables are in each folder's summary.md.

    python scripts/results_overview.py docs/results/ts-* docs/results/text-*
"""
import argparse
import json
from pathlib import Path

from smoot_ext.evaluation.statistics import format_interval

PAIRS = (("baseline", "sgt"), ("sgt", "smoot"), ("sgt", "smoot-trunc"))
COLUMNS = (("test acc.", "accuracy", "", "test_acc", 2), ("AUROC", "localisation", "", "auroc", 3),
           ("SRG", "score", "accuracy", "srg", 2), ("AUP", "localisation", "", "saliency_precision", 3))


def _pick(rows: list[dict], kind: str, metric: str, statistic: str, method: str) -> dict | None:
    for q in rows:
        if (q["kind"], q["metric"], q["statistic"]) == (kind, metric, statistic) and q["method"] in ("", method):
            return q
    return None


def _fmt(q: dict | None, digits: int, sign: bool = False) -> str:
    if q is None:
        return "-"
    mean, lo, hi = (q["mean"], q["lo"], q["hi"]) if "lo" in q else (q["paired"]["mean"], q["paired"]["lo"],
                                                                     q["paired"]["hi"])
    resolved = "**" if sign and (lo > 0 or hi < 0) else ""
    # A resolved difference too small for the column's digits would print as a bold 0.000.
    spec = ".1e" if resolved and max(abs(lo), abs(hi)) < 0.5 * 10 ** -digits else f".{digits}f"
    return f"{resolved}{format_interval(mean, lo, hi, spec, sign)}{resolved}"


def rows(folder: Path) -> list[str]:
    summary = json.loads((folder / "summary.json").read_text())
    runs = summary["runs"]
    seeds = len(runs["baseline"]["quantities"][0]["values"])
    epochs = runs["baseline"]["epochs"][0]
    methods = sorted({q["method"] for q in runs["baseline"]["quantities"] if q["method"]})
    out = []
    for method in methods:
        cells = [f"{folder.name}, {method.replace('integrated_gradients', 'IG')}", f"{seeds} x {epochs}"]
        for _, kind, metric, statistic, digits in COLUMNS:
            cells.append(_fmt(_pick(runs["baseline"]["quantities"], kind, metric, statistic, method), digits))
            for a, b in PAIRS:
                diffs = [d for d in summary["differences"] if (d["a"], d["b"]) == (a, b)]
                cells.append(_fmt(_pick(diffs, kind, metric, statistic, method), digits, sign=True))
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path)
    args = p.parse_args(argv)
    head = ["data, method", "seeds x epochs"]
    for name, *_ in COLUMNS:
        head += [f"{name}: baseline", "SGT - base", "SMOOT - SGT", "trunc - SGT"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for folder in args.folders:
        if (folder / "summary.json").is_file():
            print("\n".join(rows(folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
