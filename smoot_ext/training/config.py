"""The trainer's options: ``TrainConfig`` holds the step's options (a ``GuidedConfig``) and the
run's (data, model, optimiser, epochs, device, output), with the defaults that depend on the data."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace

import torch

from ..data import DATASET_KINDS, DATASETS, default_data_dir
from ..models import IMAGE_MODELS, MODELS
from ..ops import BACKENDS
from .guided import GuidedConfig
from .selection import MONITORS

OPTIMIZERS = ("adadelta", "sgd", "adam", "adamw")
# The training step's arithmetic: float32, or torch.autocast to bfloat16 / float16 (fp16 needs a
# GradScaler against underflowing gradients, and CUDA: CPU autocast's float16 is not what users run).
PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# The paper trains 100 epochs; digits, synthetic and the sequence sets need far fewer.
_SEQUENCES = [name for name, kind in DATASET_KINDS.items() if kind != "image"]
DEFAULT_EPOCHS = {"digits": 30, "synthetic": 20, **dict.fromkeys(_SEQUENCES, 20)}
DEFAULT_BATCH = {"digits": 64, "synthetic": 64, **dict.fromkeys(_SEQUENCES, 64)}
# The model when ``model`` is not given, per kind of data.
DEFAULT_MODEL = {"image": "cnn", "series": "lstm", "text": "bilstm"}
# 8x8 images leave too little work per op to share between threads; elsewhere torch's default.
DEFAULT_THREADS = {"digits": 1}
# Adadelta, as in the paper; the transformer takes a gentler step.
DEFAULT_LR = {"cnn": 1.0, "resnet": 1.0, "deit_tiny": 0.001, "lstm": 1.0, "bilstm": 1.0,
              "transformer": 0.3, "tcn": 1.0, "hf-bert": 0.3}
# Options a resumed run may change: the rest come from the checkpoint.
RESUME_OVERRIDES = ("epochs", "device", "num_workers", "out", "resume", "progress", "threads",
                    "compile")


@dataclass
class TrainConfig:
    """The trainer's options: the step's (``guided``; its ``alpha`` None takes the dataset's),
    then the run's. Errors name these fields (``epochs``, ``lam``), not command-line flags."""
    guided: GuidedConfig = field(default_factory=GuidedConfig)
    dataset: str = "digits"
    data_dir: str = field(default_factory=default_data_dir)
    download: bool = False
    subset: int | None = None        # train on this many samples (a seeded random choice)
    test_subset: int | None = None
    model: str | None = None         # None: DEFAULT_MODEL for the dataset's kind
    pretrained: str = "auto"         # DeiT only: "auto" | "yes" | "no"
    epochs: int | None = None        # None: DEFAULT_EPOCHS[dataset] or 100 (the paper)
    batch_size: int | None = None    # None: DEFAULT_BATCH[dataset] or 256 (the paper)
    optimizer: str = "adadelta"
    lr: float | None = None          # None: DEFAULT_LR[model]
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    compile: bool = False
    precision: str = "32"            # PRECISIONS: "32", "bf16" (autocast), "fp16" (autocast + GradScaler)
    threads: int | None = None       # torch CPU threads; 0: torch's; None: DEFAULT_THREADS or 0
    progress: bool = True
    out: str | None = None           # None: runs/<dataset>-<method>[-<model> if not the default]
    resume: bool = False
    # Model selection (.selection): None, none of it, as before these options existed.
    val_fraction: float | None = None  # held out of the training set; the best epoch on it is kept
    patience: int | None = None      # stop after this many epochs without a better validation score
    monitor: str = "accuracy"        # MONITORS: what "better" means

    @classmethod
    def from_options(cls, options: dict) -> TrainConfig:
        """From one flat dict of options (the command line's, a checkpoint's ``config``):
        GuidedConfig's fields make ``guided``, the rest are the run's."""
        step = {f.name for f in fields(GuidedConfig)}
        return cls(guided=GuidedConfig(**{k: v for k, v in options.items() if k in step}),
                   **{k: v for k, v in options.items() if k not in step})

    def options(self) -> dict:
        """The flat dict ``from_options`` takes: the step's options, then the run's."""
        run = asdict(self)
        return {**run.pop("guided"), **run}

    @property
    def method(self) -> str:
        return self.guided.method

    def guided_for(self, bundle) -> GuidedConfig:
        """The step's options for this data (a DataBundle): ``guided``, its alpha None the data's."""
        return self.guided if self.guided.alpha is not None else replace(self.guided, alpha=bundle.alpha)

    def resolved(self) -> TrainConfig:
        """A copy with every None default filled in (but ``guided.alpha``: the data's, known once
        loaded) and every option checked."""
        c = replace(self)
        if c.dataset in DATASET_KINDS and c.model is None:
            c.model = DEFAULT_MODEL[DATASET_KINDS[c.dataset]]
        _check_choices(c)
        c.epochs = DEFAULT_EPOCHS.get(c.dataset, 100) if c.epochs is None else c.epochs
        c.batch_size = DEFAULT_BATCH.get(c.dataset, 256) if c.batch_size is None else c.batch_size
        c.lr = DEFAULT_LR[c.model] if c.lr is None else c.lr
        c.threads = DEFAULT_THREADS.get(c.dataset, 0) if c.threads is None else c.threads
        default_model = DEFAULT_MODEL[DATASET_KINDS[c.dataset]]
        c.out = c.out or os.path.join(
            "runs", f"{c.dataset}-{c.method}" + ("" if c.model == default_model else f"-{c.model}"))
        _check_counts(c)
        c.guided.validate()
        return c

    def validate(self) -> None:
        self.resolved()


def check_resume_options(config: TrainConfig, saved: dict, given: Iterable[str] | None) -> None:
    """Raises ValueError naming each option of ``given`` (None: those of ``config`` that differ
    from TrainConfig's defaults) whose value differs from the checkpoint's ``saved`` options,
    but for RESUME_OVERRIDES, which a resume may change."""
    chosen = config.options()
    if given is None:
        default = TrainConfig().options()
        given = [name for name, v in chosen.items() if v != default[name]]
    checked = set(given) - set(RESUME_OVERRIDES)
    differ = [f"{name} ({v!r} given, {saved.get(name)!r} in the checkpoint)" for name, v in chosen.items()
              if name in checked and v is not None and v != saved.get(name)]
    if differ:
        raise ValueError(f"resume: options differ from the checkpoint's: {'; '.join(differ)}. A resumed run "
                         f"takes its options from its checkpoint (it may change only {', '.join(RESUME_OVERRIDES)}): "
                         "drop them, or train into another out folder")


def _check_choices(c: TrainConfig) -> None:
    for name, valid in (("dataset", DATASETS), ("model", MODELS), ("optimizer", OPTIMIZERS),
                        ("pretrained", ("auto", "yes", "no")), ("precision", tuple(PRECISIONS)),
                        ("monitor", MONITORS)):
        if getattr(c, name) not in valid:
            raise ValueError(f"{name}: expected one of {', '.join(valid)}, got {getattr(c, name)!r}")
    if c.guided.backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {c.guided.backend!r}")
    kind = DATASET_KINDS[c.dataset]
    if (kind == "image") != (c.model in IMAGE_MODELS):
        fits = [m for m in MODELS if (m in IMAGE_MODELS) == (kind == "image")]
        raise ValueError(f"model: dataset {c.dataset!r} holds {kind} data: expected one of "
                         f"{', '.join(fits)}, got {c.model!r}")


def _check_counts(c: TrainConfig) -> None:
    for name, low in (("epochs", 1), ("batch_size", 1), ("num_workers", 0), ("threads", 0),
                      ("subset", 1), ("test_subset", 1), ("patience", 1)):
        v = getattr(c, name)
        if v is not None and v < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {v}")
    if not c.lr > 0:
        raise ValueError(f"lr: expected a learning rate > 0, got {c.lr}")
    if c.val_fraction is not None and not 0 < c.val_fraction < 1:
        raise ValueError(f"val_fraction: expected a fraction of the training set in (0, 1), got {c.val_fraction}")
    if c.patience is not None and c.val_fraction is None and not c.resume:  # a resume's: the checkpoint's
        raise ValueError(f"patience: stopping needs a validation split to watch (val_fraction), got patience "
                         f"{c.patience} without one")
