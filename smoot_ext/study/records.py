"""The score record: one small JSON file per training run and seed, ``<results>/<run>/seed<S>.json``,
with the run's per-epoch history (test accuracy, k min/median/max, seconds) and, per evaluation
fill and saliency method, its AUCs and SRG from ``run_evaluation`` (with their bootstrap
intervals over test images). Files are small, so they can be committed as each run finishes;
``comparison`` recomputes the summary from whatever files exist.
"""
from __future__ import annotations

import json
from pathlib import Path

TRUTH_KEYS = ("localisation", "eraser")  # scores against a ground truth, per saliency method and the random map


def run_name(method: str, k_rounding: str, k_update: str = "units") -> str:
    """A run's name: the training method, with ``-trunc`` for SMOOT with truncated k steps and
    ``-percent`` for SMOOT's real-valued percent K."""
    if method != "smoot" or (k_rounding, k_update) == ("floor", "units"):
        return method
    return f"{method}-percent" if k_update == "percent" else f"{method}-trunc"


def score_path(results: str | Path, run: str, seed: int) -> Path:
    return Path(results) / run / f"seed{seed}.json"


def new_record(*, run: str, method: str, k_rounding: str, seed: int, epochs: int, settings: dict,
               history: list[dict], scores: dict, machine: dict, scoring: dict, k_update: str = "units",
               k_init: float | None = None) -> dict:
    """A score record: the run, its training (method, k rounding, seed, epochs, per-epoch history
    with each epoch's wall and CPU seconds), the settings it was scored with, per fill its scores
    (``add_scores``), the machine it was scored on (``provenance.machine`` and the torch threads)
    and the scoring's wall and CPU seconds."""
    return {"run": run, "method": method, "k_rounding": k_rounding, "k_update": k_update, "k_init": k_init,
            "seed": seed, "epochs": epochs,
            "settings": settings, "history": history, "scores": scores, "machine": machine, "scoring": scoring}


def add_scores(scores: dict, fill: str, evaluation: dict) -> dict:
    """Adds one model's part of a ``run_evaluation`` results dict to ``scores[fill]`` and returns
    that part: "methods" ({method: {metric: {statistic or "curves": ...}}}), "num_test" per
    method, the levels, the clean accuracy on the part's images, "localisation" where the data
    has ground-truth regions and "eraser" for text with a rationale. A later pass of the same
    fill adds its methods."""
    (name, model), = evaluation["models"].items()
    part = {"num_test": {m: evaluation["num_test"] for m in model["methods"]}, "levels": evaluation["levels"],
            "accuracy": model["accuracy"], "methods": model["methods"]}
    for key in TRUTH_KEYS:
        if key in model:
            part[key] = model[key]
    if fill not in scores:
        scores[fill] = part
    else:
        for key in ("methods", "num_test"):
            scores[fill][key].update(part[key])
        for key in TRUTH_KEYS:
            scores[fill].setdefault(key, {}).update(part.get(key, {}))
    return part


def compact_json(obj) -> str:
    """Committed result files: one line, no spaces (a sweep's records add up), keys sorted."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"


def write_score_file(path: Path, record: dict) -> None:
    """Atomically: a half-written file must not look like a finished run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(compact_json(record))
    tmp.replace(path)


def read_score_files(results: str | Path) -> dict[str, dict[int, dict]]:
    """{run: {seed: record}} of every score file under `results`."""
    found: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(results).glob("*/seed*.json")):
        record = json.loads(path.read_text())
        found.setdefault(record["run"], {})[int(record["seed"])] = record
    return found
