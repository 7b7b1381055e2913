"""How SMOOT's per-sample k spreads over epochs: per run, k min / median / max per epoch (mean over
seeds), the power of the epochs the spread grows with (a random walk's is 0.5), and where power
laws put min and max at a later epoch, and a straight line the median, within SMOOT's bounds
(the paper reports 234 / 388 / 544 of 784 after 100 epochs). Writes <out>.json, <out>.csv and
<out>.png (the spread per epoch, log-log).

    python scripts/k_spread.py floor=docs/results/mnist-99/summary.json:smoot \\
        trunc=docs/results/mnist-99/summary.json:smoot-trunc \\
        percent-30=docs/results/mnist-percent-k/seed0-metrics.csv --at 100 --out docs/results/mnist-99/k_spread

A source is a summary.json and a run name (its k_trajectories, every seed) or one run's
metrics.csv (one seed).
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

KEYS = ("k_min", "k_median", "k_max")


def load(source: str) -> dict[int, list[dict]]:
    """{seed: [{"epoch", "k_min", "k_median", "k_max"}, ...]} from a summary.json:run or a metrics.csv."""
    path, _, run = source.partition(":")
    if path.endswith(".csv"):
        with open(path) as f:
            return {0: [{"epoch": int(r["epoch"]), **{k: float(r[k]) for k in KEYS}} for r in csv.DictReader(f)]}
    trajectories = json.loads(Path(path).read_text())["k_trajectories"]
    if run not in trajectories:
        raise SystemExit(f"{source}: no run {run!r} in {path} (it has {sorted(trajectories)})")
    return {int(s): rows for s, rows in trajectories[run].items()}


def per_epoch(seeds: dict[int, list[dict]]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, (E, 3) mean over seeds of min / median / max) over the epochs every seed has."""
    last = min(len(rows) for rows in seeds.values())
    values = np.array([[[row[k] for k in KEYS] for row in rows[:last]] for rows in seeds.values()])
    return np.arange(1, last + 1), values.mean(axis=0)


def power_fit(epochs: np.ndarray, y: np.ndarray, first: int = 2) -> tuple[float, float]:
    """(power, scale) of y = scale * epoch^power, least squares in log-log over epochs >= first
    where y > 0."""
    keep = (epochs >= first) & (y > 0)
    if keep.sum() < 2:
        return float("nan"), float("nan")
    power, log_scale = np.polyfit(np.log(epochs[keep]), np.log(y[keep]), 1)
    return float(power), float(np.exp(log_scale))


def summarise(name: str, seeds: dict, start: float, at: int, bounds: tuple[float, float]) -> dict:
    """The per-epoch means, the fitted powers, and min / median / max at epoch ``at``: min and
    max by their own power laws away from ``start``, the median by a straight line (a drift),
    each clamped to ``bounds`` (SMOOT's kmin and kmax)."""
    epochs, k = per_epoch(seeds)
    spread_power, _ = power_fit(epochs, k[:, 2] - k[:, 0])
    down_power, down_scale = power_fit(epochs, start - k[:, 0])
    up_power, up_scale = power_fit(epochs, k[:, 2] - start)
    drift, intercept = np.polyfit(epochs[epochs >= 2], k[epochs >= 2, 1], 1) if len(epochs) > 2 else (0.0, k[-1, 1])
    later = [start - down_scale * at ** down_power, intercept + drift * at, start + up_scale * at ** up_power]
    return {"run": name, "seeds": sorted(seeds), "epochs": int(epochs[-1]), "start": start,
            "per_epoch": [{"epoch": int(e), **dict(zip(KEYS, map(float, row)))} for e, row in zip(epochs, k)],
            "spread_power": spread_power, "min_power": down_power, "max_power": up_power,
            "median_drift_per_epoch": float(drift),
            "at": at, "extrapolated": dict(zip(KEYS, (float(np.clip(v, *bounds)) for v in later)))}


def plot(results: list[dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in results:
        e = np.array([p["epoch"] for p in r["per_epoch"]])
        spread = np.array([p["k_max"] - p["k_min"] for p in r["per_epoch"]])
        ax.loglog(e, spread, "o-", label=f"{r['run']} (power {r['spread_power']:.2f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("k max - k min (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="NAME=SOURCE")
    p.add_argument("--start", type=float, default=392.0, help="every sample's k at the start (default: %(default)s)")
    p.add_argument("--at", type=int, default=100, help="the epoch to extrapolate to (default: %(default)s)")
    p.add_argument("--bounds", type=float, nargs=2, default=(156.8, 627.2), metavar=("KMIN", "KMAX"),
                   help="SMOOT's bounds on k, where extrapolations stop (default: 20%% and 80%% of 784)")
    p.add_argument("--out", type=Path, required=True, help="writes <out>.json, <out>.csv and <out>.png")
    args = p.parse_args(argv)
    results = []
    for item in args.sources:
        name, sep, source = item.partition("=")
        if not sep:
            raise SystemExit(f"sources: expected NAME=SOURCE, got {item!r}")
        results.append(summarise(name, load(source), args.start, args.at, tuple(args.bounds)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, separators=(",", ":")))
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "epoch", *KEYS])
        for r in results:
            w.writerows([r["run"], q["epoch"], *(q[k] for k in KEYS)] for q in r["per_epoch"])
    plot(results, args.out)
    for r in results:
        last = "/".join(f"{r['per_epoch'][-1][k]:.0f}" for k in KEYS)
        later = "/".join(f"{r['extrapolated'][k]:.0f}" for k in KEYS)
        print(f"{r['run']}: {len(r['seeds'])} seed(s), {r['epochs']} epochs, last min/median/max {last}; "
              f"spread ~ epoch^{r['spread_power']:.2f}, median drift {r['median_drift_per_epoch']:+.2f}/epoch; "
              f"at epoch {args.at}: {later}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
