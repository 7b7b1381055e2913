"""One markdown table over several smoot-reproduce result folders (their summary.json): per folder
and saliency method, the scored seeds of each run, the baseline's test accuracy, and for each
quantity (by default the time-series benchmark's AUP and AUR, getPrecisionRecall.py, and SRG of
the accuracy curve; for text, ERASER's comprehensiveness, sufficiency and token F1 with
--columns): the chance level (a seeded random map; SRG's is 0 by construction), the baseline's
value and the paired (same seed) differences SGT - baseline, SMOOT - SGT and SMOOT (trunc) -
SGT with their intervals over seeds. A one-seed summary has no interval: its cells are the
plain values. The per-run tables are in each folder's summary.md.

    python scripts/results_overview.py docs/results/seq/*/ > docs/results/seq/overview.md
    python scripts/results_overview.py docs/results/seq/text-*/ --columns Comprehensiveness Token-F1 --counts
"""
import argparse
import json
from pathlib import Path

from smoot_ext.evaluation.statistics import format_interval

RUNS = ("baseline", "sgt", "smoot", "smoot-trunc")
PAIRS = (("baseline", "sgt"), ("sgt", "smoot"), ("sgt", "smoot-trunc"))
CHANCE = "random"
# (heading, kind, metric, statistic, digits, has a chance column)
COLUMNS = (("AUP", "localisation", "", "aup", 3, True), ("AUR", "localisation", "", "aur", 3, True),
           ("SRG", "score", "accuracy", "srg", 2, False),
           # text: ERASER's AOPC with deletion, and token F1 against the rationale
           ("Comprehensiveness", "eraser", "", "comprehensiveness_delete", 3, True),
           ("Sufficiency", "eraser", "", "sufficiency_delete", 3, True),
           ("Token-F1", "eraser", "", "token_f1", 3, True))
DEFAULT_COLUMNS = ("AUP", "AUR", "SRG")


def _pick(rows: list[dict], kind: str, metric: str, statistic: str, method: str) -> dict | None:
    for q in rows:
        if (q["kind"], q["metric"], q["statistic"]) == (kind, metric, statistic) and q["method"] in ("", method):
            return q
    return None


def _fmt(q: dict | None, digits: int, sign: bool = False) -> str:
    if q is None:
        return "-"
    estimate = q.get("paired", q)
    if "lo" not in estimate:  # one seed: no interval
        return f"{estimate['mean']:{'+' if sign else ''}.{digits}f}"
    mean, lo, hi = estimate["mean"], estimate["lo"], estimate["hi"]
    resolved = "**" if sign and (lo > 0 or hi < 0) else ""
    # A resolved difference too small for the column's digits would print as a bold 0.000.
    spec = ".1e" if resolved and max(abs(lo), abs(hi)) < 0.5 * 10 ** -digits else f".{digits}f"
    return f"{resolved}{format_interval(mean, lo, hi, spec, sign)}{resolved}"


def _seeds(summary: dict) -> str:
    """Scored seeds per run, and the not-scored ones (below the accuracy gate) in brackets."""
    below = {}
    for row in summary.get("not_scored", {}).get("runs", []):
        below[row["run"]] = below.get(row["run"], 0) + 1
    counts = [f"{len(summary['runs'].get(r, {}).get('seeds', []))}" + (f" (+{below[r]})" if r in below else "")
              for r in RUNS]
    return "/".join(counts)


def rows(folder: Path, columns=COLUMNS) -> list[str]:
    summary = json.loads((folder / "summary.json").read_text())
    runs = summary["runs"]
    base = runs.get("baseline", {}).get("quantities", [])
    methods = sorted({q["method"] for r in runs.values() for q in r["quantities"]} - {"", CHANCE})
    out = []
    for method in methods:
        name = method.replace("integrated_gradients", "IG")
        cells = [f"{folder.name}, {name}", _seeds(summary), _fmt(_pick(base, "accuracy", "", "test_acc", method), 2)]
        for _, kind, metric, statistic, digits, chance in columns:
            if chance:
                cells.append(_fmt(_pick(base, kind, metric, statistic, CHANCE), digits))
            cells.append(_fmt(_pick(base, kind, metric, statistic, method), digits))
            for a, b in PAIRS:
                diffs = [d for d in summary["differences"] if (d["a"], d["b"]) == (a, b)]
                cells.append(_fmt(_pick(diffs, kind, metric, statistic, method), digits, sign=True))
        out.append("| " + " | ".join(cells) + " |")
    return out


def _side(q: dict | None, against: float = 0.0) -> str | None:
    """"up" or "down" where q's interval (paired, for a difference) leaves out ``against``."""
    estimate = None if q is None else q.get("paired", q)
    if estimate is None or "lo" not in estimate:
        return None
    return "up" if estimate["lo"] > against else "down" if estimate["hi"] < against else None


def counts(folders: list[Path], columns=COLUMNS) -> list[str]:
    """Per quantity, over every folder and saliency method: the cells whose interval is above or
    below the reference (baseline against chance, each pair against 0), of all cells."""
    tally = {}
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        runs = summary["runs"]
        methods = sorted({q["method"] for r in runs.values() for q in r["quantities"]} - {"", CHANCE})
        for name, kind, metric, statistic, _, chance in columns:
            for method in methods:
                for run in ("baseline", "sgt") if chance else ():
                    quantities = runs.get(run, {}).get("quantities", [])
                    ref = _pick(quantities, kind, metric, statistic, CHANCE)
                    cell = _pick(quantities, kind, metric, statistic, method)
                    if ref is not None and cell is not None:
                        tally.setdefault((name, f"{run} - chance"), []).append(_side(cell, ref["mean"]))
                for a, b in PAIRS:
                    diffs = [d for d in summary["differences"] if (d["a"], d["b"]) == (a, b)]
                    q = _pick(diffs, kind, metric, statistic, method)
                    if q is not None:
                        tally.setdefault((name, f"{b} - {a}"), []).append(_side(q))
    lines = ["| quantity | comparison | above (resolved) | below (resolved) | cells |", "|---|---|---|---|---|"]
    for (name, comparison), sides in tally.items():
        lines.append(f"| {name} | {comparison} | {sides.count('up')} | {sides.count('down')} | {len(sides)} |")
    return lines


def header(columns=COLUMNS) -> list[str]:
    head = ["data, method", "scored seeds: " + "/".join(RUNS), "test acc.: baseline"]
    for name, *_, chance in columns:
        head += [f"{name}: chance"] * chance + [f"{name}: baseline", "SGT - base", "SMOOT - SGT", "trunc - SGT"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--columns", nargs="+", choices=[c[0] for c in COLUMNS], default=list(DEFAULT_COLUMNS),
                   help=f"the quantities shown (default: {' '.join(DEFAULT_COLUMNS)})")
    p.add_argument("--counts", action="store_true",
                   help="also count, per quantity, the cells resolved above and below their reference")
    args = p.parse_args(argv)
    columns = [c for c in COLUMNS if c[0] in args.columns]
    # sorted by name: the rows do not depend on the shell's locale-dependent glob order
    folders = sorted((f for f in args.folders if (f / "summary.json").is_file()), key=lambda f: f.name)
    lines = header(columns)
    for folder in folders:
        lines += rows(folder, columns)
    if args.counts:
        lines += [""] + counts(folders, columns)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
