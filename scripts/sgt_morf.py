"""The official SGT code's MoRF accuracy (smoot_ext.evaluation.sgt_morf, the SMOOT paper's Table 2
protocol) of trained checkpoints, beside its chance level (a random map), with a Student-t
interval over the checkpoints of one model (seeds). Writes <out>.json and <out>.csv.

    python scripts/sgt_morf.py --checkpoints sgt=runs/a/sgt/seed0/checkpoint.pt,runs/a/sgt/seed1/checkpoint.pt \\
        smoot=... --out docs/results/synthetic-compare/sgt_morf
"""
import argparse
import csv
import json
import sys

import numpy as np
import torch
from tqdm import tqdm

from smoot_ext.data import load_dataset
from smoot_ext.evaluation.sgt_morf import SGT_DROPS, morf_accuracy, random_morf_accuracy
from smoot_ext.evaluation.statistics import t_interval
from smoot_ext.training.checkpoint import load_model


def score(paths: list[str], data_dir: str | None, num_test: int | None, test_sets: dict) -> dict:
    """Per checkpoint its MoRF and chance curves; the mean over checkpoints with its t interval.
    ``test_sets`` caches each (dataset, folder)'s test set over the calls."""
    curves, chance = [], []
    for path in tqdm(paths, desc="checkpoints", file=sys.stderr):
        model, meta = load_model(path)
        where = (meta["dataset"], data_dir or meta["config"].get("data_dir"))
        if where not in test_sets:
            test = load_dataset(*where).test
            test_sets[where] = test.subset(num_test, 0) if num_test else test
        test = test_sets[where]
        curves.append(morf_accuracy(model, test.inputs, test.labels))
        chance.append(random_morf_accuracy(model, test.inputs, test.labels))
    out = {"checkpoints": paths, "curves": curves, "chance": chance}
    for key, rows in (("mean", curves), ("chance_mean", chance)):
        rows = np.array(rows)
        out[key] = rows.mean(0).tolist()
        if len(rows) > 1:
            _, lo, hi = t_interval(rows, 0.95)
            out[key + "_interval"] = [lo.tolist(), hi.tolist()]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, metavar="NAME=PATH[,PATH...]")
    p.add_argument("--data-dir", help="(default: each run's)")
    p.add_argument("--num-test", type=int, help="a seeded subset of the test set (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="writes <out>.json and <out>.csv")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models, test_sets = {}, {}
    for spec in args.checkpoints:
        name, sep, paths = spec.partition("=")
        if not sep or not paths:
            p.error(f"--checkpoints: expected NAME=PATH[,PATH...], got {spec!r}")
        models[name] = score(paths.split(","), args.data_dir, args.num_test, test_sets)
    result = {"protocol": "saliency_guided_training maskedAcc_MNIST.py: Grad, trueMask", "drops": list(SGT_DROPS),
              "models": models}
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "curve", *(f"drop{d}" for d in SGT_DROPS)])
        for name, m in models.items():
            w.writerow([name, "saliency", *(f"{v:.2f}" for v in m["mean"])])
            w.writerow([name, "random", *(f"{v:.2f}" for v in m["chance_mean"])])
    print(f"wrote {args.out}.json and {args.out}.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
