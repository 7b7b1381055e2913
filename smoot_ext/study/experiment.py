"""The reproduction experiment behind `smoot-reproduce`: train every method (and each SMOOT k
rounding) for each seed, score every final checkpoint with every fill, keep one score record per
run and seed (``records``), and compare the runs over seeds.

A run whose record already holds this many epochs and these settings is done and skipped, so an
interrupted experiment continues where it stopped and ``compare_only`` compares what is done
(without captum: nothing is scored then).

With ``min_accuracy`` (percent), as the time-series benchmark scores only models at >= 90% test
accuracy, a run below it is not scored: its record keeps the training and says "not_scored" with
the accuracy, and the summary lists it apart. The accuracy is the served model's: with
``val_fraction`` the best epoch's on the validation split (.training.selection), else the last.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from ..checks import ROUNDINGS
from ..evaluation.attribution import AttributionConfig, check_methods
from ..evaluation.choices import check_choices, check_count
from ..evaluation.config import EvalConfig
from ..evaluation.imputation import IMPUTATIONS
from ..evaluation.perturbation import DEFAULT_PERCENTAGES, levels_from_percentages
from ..evaluation.pipeline import run_evaluation
from ..evaluation.results import ORDERS, RANDOM
from ..provenance import machine
from ..training.config import TrainConfig
from ..training.guided import K_UPDATES, TRAINING_METHODS, GuidedConfig
from ..training.loop import train
from ..training.selection import scored_row
from .comparison import compare
from .records import add_scores, compact_json, new_record, read_score_files, run_name, score_path, write_score_file

IG = "integrated_gradients"  # the slow method, which may be scored on fewer images


class Run(NamedTuple):
    """One trained variant: its name (the score files' folder) and its step options."""
    name: str
    method: str
    k_rounding: str = "floor"
    k_update: str = "units"
    k_init: float | None = None  # SGT at another fixed k (a fraction of M); None: GuidedConfig's

    def guided(self, unit: str | None) -> GuidedConfig:
        step = {"k_init": self.k_init} if self.k_init is not None else {}
        return GuidedConfig(method=self.method, k_rounding=self.k_rounding, k_update=self.k_update, **step,
                            **{"unit": unit} if unit else {})


@dataclass
class ReproduceConfig:
    """The experiment's options (smoot-reproduce's, which documents each)."""

    dataset: str = "mnist"
    data_dir: str | None = None
    model: str | None = None  # None: the trainer's default for the dataset's kind
    unit: str | None = None  # masked and removed: None: the trainer's (pixels, time steps, tokens)
    training: list[str] = field(default_factory=lambda: list(TRAINING_METHODS))
    k_rounding: list[str] = field(default_factory=lambda: ["floor"])
    k_update: list[str] = field(default_factory=lambda: ["units"])
    sgt_k: list[float] = field(default_factory=list)  # more SGT runs, each at this fixed k (fraction of M)
    epochs: int = 1
    seeds: list[int] = field(default_factory=lambda: [0])
    subset: int | None = None
    batch_size: int | None = None
    methods: list[str] = field(default_factory=lambda: ["saliency", IG])
    percentages: list[float] = field(default_factory=lambda: list(DEFAULT_PERCENTAGES))
    fills: list[str] = field(default_factory=lambda: ["uniform"])
    num_test: int = 1000  # 0 = all
    ig_num_test: int | None = None  # None: num_test
    eval_seed: int = 0
    ig_steps: int = AttributionConfig.ig_steps
    device: str = "cpu"
    threads: int = 0
    progress: bool = True
    compare_only: bool = False
    out: str = "runs/reproduce"
    results: str | None = None  # None: <out>/results
    optimizer: str | None = None  # None: the trainer's (Adadelta, as in the paper)
    lr: float | None = None  # None: the trainer's for the model
    val_fraction: float | None = None  # the trainer's model selection (TrainConfig): None, none
    patience: int | None = None
    monitor: str = "accuracy"
    min_accuracy: float | None = None  # percent: runs below it are not scored; None: every run is

    def __post_init__(self):
        check_choices(self.training, TRAINING_METHODS, "training", "training method")
        check_choices(self.k_rounding, ROUNDINGS, "k_rounding", "rounding")
        check_choices(self.k_update, K_UPDATES, "k_update", "k update")
        if len(set(self.sgt_k)) != len(self.sgt_k) or not all(0 <= f <= 1 for f in self.sgt_k):
            raise ValueError(f"sgt_k: expected distinct fractions of the units in [0, 1], got {self.sgt_k}")
        check_methods(self.methods)
        check_choices(self.fills, IMPUTATIONS, "fills", "fill")
        levels_from_percentages(self.percentages)
        AttributionConfig(ig_steps=self.ig_steps)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: each seed at most once, got {self.seeds}")
        check_count("epochs", self.epochs)
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 100:
            raise ValueError(f"min_accuracy: expected a test accuracy in percent, in [0, 100], got {self.min_accuracy}")
        self.train_config().resolved()  # dataset, model, unit and model selection fit, before any run
        for option, v, least in (("num_test", self.num_test, 0), ("ig_num_test", self.ig_num_test, 0),
                                 ("subset", self.subset, 1), ("batch_size", self.batch_size, 1),
                                 ("eval_seed", self.eval_seed, 0), ("threads", self.threads, 0)):
            if v is not None:  # None: the default (all images, the trainer's batch, ...)
                check_count(option, v, least)
        self.results = self.results or os.path.join(self.out, "results")

    def chosen(self) -> dict:
        """The options given where the trainer and evaluation have defaults of their own."""
        return {name: v for name, v in (("model", self.model), ("unit", self.unit), ("optimizer", self.optimizer),
                                        ("lr", self.lr)) if v}

    def train_config(self, run: Run | None = None, **options) -> TrainConfig:
        """The trainer's options for one run (default: SMOOT's; ``options``: seed, out, resume)."""
        run = run or Run("smoot", "smoot")
        step = {"optimizer": self.optimizer} if self.optimizer else {}
        return TrainConfig(guided=run.guided(self.unit), dataset=self.dataset, data_dir=self.data_dir,
                           model=self.model, **step, lr=self.lr, epochs=self.epochs, subset=self.subset,
                           batch_size=self.batch_size, device=self.device, threads=self.threads, progress=self.progress,
                           val_fraction=self.val_fraction, patience=self.patience, monitor=self.monitor, **options)

    def runs(self) -> list[Run]:
        """Every run, in ``training`` order: SMOOT once per k rounding (whole units) and once with
        the percent K; SGT at its k, then at each ``sgt_k``."""
        runs = []
        for method in self.training:
            if method == "smoot":
                if "units" in self.k_update:
                    runs += [Run(run_name(method, r), method, r) for r in self.k_rounding]
                if "percent" in self.k_update:
                    runs.append(Run(run_name(method, "floor", "percent"), method, k_update="percent"))
            else:
                runs.append(Run(method, method))
            if method == "sgt":
                runs += [Run(f"sgt-k{f:g}", method, k_init=f) for f in self.sgt_k]
        return runs

    def passes(self) -> list[tuple[list[str], int | None]]:
        """(methods, number of test images or None for all): IG may get its own subset."""
        ig_num = self.num_test if self.ig_num_test is None else self.ig_num_test
        rest = [m for m in self.methods if m != IG]
        passes = [(rest, self.num_test or None)] if rest else []
        if IG in self.methods:
            if passes and ig_num == self.num_test:
                passes[0] = (self.methods, self.num_test or None)
            else:
                passes.append(([IG], ig_num or None))
        return passes

    def orders(self, fill: str, pass_index: int) -> list[str]:
        """The random order (the same for every saliency method) once: in the first pass of the
        first fill; elsewhere MoRF and LeRF, which are all SRG needs."""
        first = fill == self.fills[0] and pass_index == 0
        return [o for o in ORDERS if first or o != RANDOM]

    def settings(self) -> dict:
        """What a score record must match to count as done (besides its epochs)."""
        # The model, unit, optimizer, lr and model selection only where chosen: records written
        # before those options match as they did.
        selection = {} if self.val_fraction is None else {
            "val_fraction": self.val_fraction, "patience": self.patience, "monitor": self.monitor}
        return {"dataset": self.dataset, **self.chosen(), **selection,
                "subset": self.subset, "batch_size": self.batch_size,
                "methods": sorted(self.methods), "fills": sorted(self.fills), "percentages": list(self.percentages),
                "num_test": self.num_test, "ig_num_test": self.ig_num_test, "eval_seed": self.eval_seed,
                "ig_steps": self.ig_steps,
                "orders": {f: [self.orders(f, i) for i in range(len(self.passes()))] for f in self.fills}}

    def matches(self, record: dict) -> bool:
        """A score record is done for this experiment: the same epochs and settings, and scored
        unless it is below ``min_accuracy`` (a gate lowered since scores the runs it left out)."""
        return (record.get("epochs") == self.epochs and record.get("settings") == self.settings()
                and ("not_scored" not in record or self.below_gate(record)))

    def below_gate(self, record: dict) -> bool:
        """The record's model is below ``min_accuracy``: it is not scored."""
        return self.min_accuracy is not None and record_accuracy(record) < self.min_accuracy

    def is_done(self, path: Path) -> bool:
        return path.is_file() and self.matches(json.loads(path.read_text()))

    def evaluation(self, fill: str, pass_index: int) -> EvalConfig:
        methods, num_test = self.passes()[pass_index]
        return EvalConfig(methods=methods, levels=levels_from_percentages(self.percentages), fill=fill,
                          **{"unit": self.unit} if self.unit else {},
                          orders=self.orders(fill, pass_index), num_test=num_test, seed=self.eval_seed,
                          progress=self.progress, attribution=AttributionConfig(ig_steps=self.ig_steps))


def reproduce(config: ReproduceConfig) -> list[Path]:
    """Trains and scores every run and seed not done yet (none with ``compare_only``), then
    compares the finished ones; returns the comparison's files (summary.json, .csv, .md, figures),
    the runs below ``min_accuracy`` listed apart in summary.json and summary.md."""
    for seed in config.seeds:  # every run of a seed before the next seed: a partial result compares all runs
        for run in config.runs():
            path = score_path(config.results, run.name, seed)
            if config.is_done(path):
                print(f"== {run.name}, seed {seed}: done ({path})", file=sys.stderr)
            elif config.compare_only:
                print(f"== {run.name}, seed {seed}: not done, left out", file=sys.stderr)
            else:
                train_and_score(config, run, seed)
    found = read_score_files(config.results)
    found = {run: {s: rec for s, rec in sorted(found[run].items()) if s in config.seeds and config.matches(rec)}
             for run in (r.name for r in config.runs()) if run in found}
    if not any(found.values()):
        raise ValueError(f"results: no finished score file in {config.results} for these settings")
    below = [rec for records in found.values() for rec in records.values() if config.below_gate(rec)]
    scored = {run: {s: rec for s, rec in records.items() if not config.below_gate(rec)}
              for run, records in found.items()}
    scored = {run: records for run, records in scored.items() if records}
    files = compare(scored, config.results) if scored else []
    return list_not_scored(below, config.min_accuracy, Path(config.results), files)


def record_accuracy(record: dict) -> float:
    """The test accuracy (%) of a record's model: the served epoch's (.training.selection.scored_row)."""
    return 100.0 * scored_row(record["history"], record.get("selection"))["test_acc"]


def list_not_scored(records: list[dict], min_accuracy: float | None, out: Path, files: list[Path]) -> list[Path]:
    """Adds the runs not scored (``records``, below ``min_accuracy``) to summary.json
    ("not_scored") and summary.md, which have only them where no run was scored; returns
    ``files``, or these two files where they were none."""
    if not records:
        return files
    rows = [{"run": r["run"], "seed": r["seed"], "accuracy": record_accuracy(r)}
            for r in sorted(records, key=lambda r: (r["run"], r["seed"]))]
    out.mkdir(parents=True, exist_ok=True)
    paths = files or [out / "summary.json", out / "summary.csv", out / "summary.md"]
    summary = json.loads(paths[0].read_text()) if files else {"runs": {}}
    summary["not_scored"] = {"min_accuracy": min_accuracy, "runs": rows}
    paths[0].write_text(compact_json(summary))
    lines = ["", f"**Not scored**: test accuracy below {min_accuracy:g}% (the time-series benchmark scores "
             "only models at >= 90%)", "", "| run | seed | test accuracy (%) |", "|---|---|---|"]
    lines += [f"| {r['run']} | {r['seed']} | {r['accuracy']:.2f} |" for r in rows]
    md = paths[2].read_text() if files else "# Comparison\n\nNo run reached the accuracy to be scored.\n"
    paths[2].write_text(md + "\n".join(lines) + "\n")
    return files or [paths[0], paths[2]]


def check_same_test_set(part: dict, history: list[dict], num_test: int | None, ckpt: str,
                        selection: dict | None = None) -> None:
    """The evaluation's clean accuracy on the whole test set is the trainer's test accuracy of
    the model served (the last epoch's, or ``selection``'s best; to a few flipped predictions):
    otherwise the model is being scored on another task."""
    trained = 100.0 * scored_row(history, selection)["test_acc"]
    if num_test is None and abs(part["accuracy"]["mean"] - trained) > 1.0:
        raise ValueError(f"{ckpt}: accuracy {part['accuracy']['mean']:.2f}% on the evaluation's test set, but "
                         f"{trained:.2f}% when it was trained: the two test sets differ")


def train_and_score(config: ReproduceConfig, variant: Run, seed: int) -> None:
    """One run and seed: train (resuming its checkpoint), score unless below ``min_accuracy``,
    write its record."""
    run = variant.name
    run_dir = os.path.join(config.out, run, f"seed{seed}")
    ckpt = os.path.join(run_dir, "checkpoint.pt")
    print(f"== training {run}, seed {seed} -> {run_dir}", file=sys.stderr)
    result = train(config.train_config(variant, seed=seed, out=run_dir, resume=os.path.isfile(ckpt)))
    record = new_record(run=run, method=variant.method, k_rounding=variant.k_rounding, k_update=variant.k_update,
                        k_init=variant.k_init, seed=seed, epochs=config.epochs, settings=config.settings(),
                        history=result.history, scores={}, machine={**machine(), "threads": torch.get_num_threads()},
                        scoring={})
    if result.selection:
        record["selection"] = result.selection
    path = score_path(config.results, run, seed)
    if config.below_gate(record):
        record["not_scored"] = {"accuracy": record_accuracy(record), "min_accuracy": config.min_accuracy}
        print(f"== {run}, seed {seed}: not scored, test accuracy {record_accuracy(record):.2f}% < "
              f"{config.min_accuracy:g}%", file=sys.stderr)
        write_score_file(path, record)
        return
    figures = _score(config, run, seed, ckpt, record)
    write_score_file(path, record)
    if seed == min(config.seeds):  # one seed's saliency maps per run: PNGs are not small
        for name, src in figures.items():
            shutil.copyfile(src, path.parent / name)


def _score(config: ReproduceConfig, run: str, seed: int, ckpt: str, record: dict) -> dict[str, str]:
    """Scores the run's checkpoint with every fill and pass into ``record`` (its scores and the
    scoring's wall and CPU seconds); returns the saliency figures by file name."""
    figures = {}
    t0, cpu0 = time.perf_counter(), time.process_time()
    for fill in config.fills:
        for i, (methods, num_test) in enumerate(config.passes()):
            eval_dir = os.path.join(os.path.dirname(ckpt), f"eval-{fill}-{'-'.join(methods)}")
            print(f"== scoring {run}, seed {seed}: {', '.join(methods)}, {fill} fill, "
                  f"{num_test or 'all'} test images", file=sys.stderr)
            if os.path.isdir(eval_dir):
                shutil.rmtree(eval_dir)  # a stale or interrupted report of an earlier checkpoint
            results = run_evaluation([f"{run}={ckpt}"], config.evaluation(fill, i), out=eval_dir,
                                     data_dir=config.data_dir, device=config.device)
            check_same_test_set(add_scores(record["scores"], fill, results), record["history"], num_test, ckpt,
                                record.get("selection"))
            figures.update({Path(f).name: f for f in results["files"]["figures"] if "saliency_" in f})
    record["scoring"] = {"time_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}
    return figures
