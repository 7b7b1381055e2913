"""Datasets for saliency-guided training, held in memory as float tensors.

Public API (stable):

    load_dataset(name, data_dir=None, *, download=False, subset=None, test_subset=None,
                 seed=0) -> DataBundle

``name`` is one of ``DATASETS``:

- ``"digits"``: scikit-learn's real 8x8 handwritten digits (1797 images, shipped with the package,
  no network): a fixed stratified 80/20 split (1437 train / 360 test), pixels scaled to [0, 1].
- ``"mnist"``, ``"fashion-mnist"``: 28x28 grey, [0, 1]; ``"cifar10"``, ``"cifar100"``: 32x32 RGB,
  normalised with the ImageNet mean/std (what pretrained DeiT expects). Read through torchvision
  from ``data_dir`` (default: ``default_data_dir()``, the ``SMOOT_DATA_DIR`` environment variable,
  else ``./data``) in its usual layout (``data_dir/MNIST/raw/...``, ``data_dir/cifar-10-batches-py``);
  a missing dataset is an error unless ``download=True``.
- ``"synthetic"``: 16x16 grey images of Gaussian noise in which one 6x6 square, at a random place,
  carries a class template (10 classes); nothing outside the square depends on the class. The
  square is the ground-truth region: ``bundle.test.masks`` is a ``(N, H, W)`` bool tensor, True
  inside it (``masks`` is None for the real datasets). One fixed set (``SYNTHETIC_SEED``), as a
  real dataset is: ``seed`` chooses subsets only, so models trained with different seeds learn,
  and are scored on, the same task.

- ``"ts-<shape>"`` and ``"ts-<shape>-<process>"``: the time-series benchmark of Ismail et al.
  2020 (:mod:`.series`), (N, 50 steps, 50 features) float, 2 classes, the box as ``masks``
  (N, T, F). Shapes: middle, small-middle, rare-time, rare-feature, their moving-* variants,
  positional-time, positional-feature; ``ts-<shape>`` is on i.i.d. Gaussian noise (their "Box"),
  ``-<process>`` on harmonic, gp, pseudo-periodic, ar, car or narma (:mod:`.processes`, their
  timesynth settings). Generated in process, each variant from its own fixed seed; 1000 training
  and 500 test samples, every element min-max scaled by the training set's range.
- ``"text-rationale"``, ``"text-majority"``: synthetic text whose label is set by a few signal
  tokens among distractors (:mod:`.text`; in text-rationale any one signal token decides, in
  text-majority the label needs every one of its tokens), token ids (N, 40) padded with 0,
  ``lengths`` (N,) the real token counts, the rationale's positions as ``masks`` (N, T).

``DataBundle`` holds ``train`` and ``test`` (``IndexedImages``; ``IndexedSamples`` for
sequences), ``in_channels``, ``num_classes``, ``image_size`` (for sequences: features per step
and steps), ``mean``/``std`` (per channel, already applied), ``alpha`` (the paper's SMOOT
alpha for this kind of data: 0.95 MNIST-like, 0.8 CIFAR), ``kind`` ("image", "series" or
"text") and ``vocab_size`` (text only).

``IndexedImages[i]`` is ``(image (C,H,W) float32, label int64, i)`` (a sequence's
``IndexedSamples[i]`` likewise, with the series or token ids): the sample index reaches the
trainer (SMOOT keeps one k per training sample). ``subset=n`` keeps n training samples (a seeded
random choice, re-indexed 0..n-1); ``test_subset`` likewise for the test split.

``make_loader(dataset, batch_size, *, shuffle, seed=0, epoch=0, rank=0, world_size=1,
num_workers=0)`` yields ``(x, y, index)`` batches. The order is a pure function of (seed, epoch),
so a resumed run sees exactly the batches it would have seen; with ``world_size > 1`` each rank
takes a disjoint share of the shuffled indices (the tail that does not divide evenly is dropped,
as ``DistributedSampler(drop_last=True)`` does), so no sample's k is updated on two ranks.
"""
from __future__ import annotations

import os

from .._extras import require

require("train", "torchvision", "sklearn")

import torch  # noqa: E402

from .images import IMAGE_DATASETS, IMAGENET_MEAN, IMAGENET_STD, SYNTHETIC_SEED, load_images  # noqa: E402
from .samples import (  # noqa: E402, F401  (the package's public names)
    DataBundle,
    EpochBatchSampler,
    IndexedImages,
    IndexedSamples,
    make_loader,
)
from .series import SERIES_DATASETS, load_series  # noqa: E402
from .text import TEXT_DATASETS, VOCAB_SIZE, load_text  # noqa: E402

DATASETS = IMAGE_DATASETS + SERIES_DATASETS + TEXT_DATASETS
DATASET_KINDS = {**dict.fromkeys(IMAGE_DATASETS, "image"), **dict.fromkeys(SERIES_DATASETS, "series"),
                 **dict.fromkeys(TEXT_DATASETS, "text")}
__all__ = ["DATASETS", "DATASET_KINDS", "DataBundle", "EpochBatchSampler", "IMAGENET_MEAN",
           "IMAGENET_STD", "IndexedImages", "IndexedSamples", "SYNTHETIC_SEED", "default_data_dir",
           "load_dataset", "make_loader"]


def default_data_dir() -> str:
    """Where torchvision datasets are looked for: ``$SMOOT_DATA_DIR``, else ``./data``."""
    return os.environ.get("SMOOT_DATA_DIR") or "data"


def _check_finite(samples, name: str, split: str) -> None:
    """NaN or inf in the inputs would end training in a non-finite loss far from its cause."""
    x = samples.inputs
    if x.is_floating_point() and not torch.isfinite(x).all():
        first = int((~torch.isfinite(x.reshape(len(x), -1))).any(1).nonzero()[0])
        raise ValueError(f"dataset: {name}'s {split} inputs hold NaN or inf (first in sample {first}); "
                         "fix or drop those samples")


def load_dataset(name: str, data_dir: str | None = None, *, download: bool = False,
                 subset: int | None = None, test_subset: int | None = None,
                 seed: int = 0) -> DataBundle:
    """Loads dataset ``name`` (one of ``DATASETS``) into memory; see the module docstring."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    kind = DATASET_KINDS[name]
    mean, std, alpha, vocab = (0.0,), (1.0,), 0.95, None
    if kind == "image":
        train, test, classes, mean, std, alpha = load_images(name, data_dir or default_data_dir(), download)
    elif kind == "series":
        train, test, classes = load_series(name)
    else:
        (train, test, classes), vocab = load_text(name), VOCAB_SIZE
    for split, samples in (("training", train), ("test", test)):
        _check_finite(samples, name, split)
    if subset is not None:
        train = train.subset(subset, seed)
    if test_subset is not None:
        test = test.subset(test_subset, seed)
    shape = train.inputs.shape[1:]
    if kind == "image":
        channels, size = shape[0], shape[1]
    else:  # (T, D) series, (T,) token ids
        channels, size = (shape[1] if len(shape) == 2 else 1), shape[0]
    return DataBundle(name, train, test, channels, classes, size, mean, std, alpha, kind, vocab)
