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

``DataBundle`` holds ``train`` and ``test`` (``IndexedImages``), ``in_channels``, ``num_classes``,
``image_size``, ``mean``/``std`` (per channel, already applied) and ``alpha`` (the paper's SMOOT
alpha for this kind of data: 0.95 MNIST-like, 0.8 CIFAR).

``IndexedImages[i]`` is ``(image (C,H,W) float32, label int64, i)``: the sample index reaches the
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
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ._extras import require

require("train", "torchvision", "sklearn")

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class IndexedImages(Dataset):
    """In-memory images ``(N, C, H, W)`` float32 and labels ``(N,)`` int64; item i is (x, y, i)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None):
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(f"images must be (N, C, H, W) and labels (N,), got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        self.images = images.float().contiguous()
        self.labels = labels.long()
        self.masks = masks

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i], self.labels[i], i

    def __getitems__(self, idx):
        # Whole batch by fancy indexing: no per-item collate (DataLoader calls this when present).
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.images[idx], self.labels[idx], idx

    def subset(self, n: int, seed: int) -> IndexedImages:
        if not 1 <= n <= len(self):
            raise ValueError(f"subset must be in [1, {len(self)}], got {n}")
        keep = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        keep = keep.sort().values
        return IndexedImages(self.images[keep], self.labels[keep],
                             None if self.masks is None else self.masks[keep])


@dataclass
class DataBundle:
    name: str
    train: IndexedImages
    test: IndexedImages
    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple
    std: tuple
    alpha: float


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    # A fixed split (not --seed): the test set must be the same for every run compared.
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=d.target, random_state=0)
    tr, te = torch.as_tensor(np.sort(tr)), torch.as_tensor(np.sort(te))
    return IndexedImages(x[tr], y[tr]), IndexedImages(x[te], y[te]), 10


def _torchvision(name: str, data_dir: str, download: bool):
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST,
           "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    if not download and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data-dir {data_dir!r} does not exist: point it at a folder "
                                f"holding {name} in torchvision's layout, or pass --download")
    splits = []
    for train in (True, False):
        try:
            ds = cls(data_dir, train=train, download=download)
        except RuntimeError as e:
            raise FileNotFoundError(f"--data-dir {data_dir!r}: {name} not found there ({e}); "
                                    f"pass --download to fetch it") from e
        x = torch.as_tensor(np.asarray(ds.data))
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # grey NHW / RGB NHWC -> NCHW
        splits.append((x.float() / 255.0, y))
    return splits, len(ds.classes)


SYNTHETIC_SEED = 0  # generates the synthetic set's templates, images and squares


def _synthetic(seed: int = SYNTHETIC_SEED, n_train=4000, n_test=1000, size=16, patch=6, classes=10, noise=0.6):
    g = torch.Generator().manual_seed(seed)
    templates = torch.randint(0, 2, (classes, patch, patch), generator=g).float() * 2 - 1

    def make(n):
        y = torch.randint(0, classes, (n,), generator=g)
        x = torch.randn(n, 1, size, size, generator=g) * noise
        masks = torch.zeros(n, size, size, dtype=torch.bool)
        r = torch.randint(0, size - patch + 1, (n, 2), generator=g)
        for i in range(n):
            a, b = int(r[i, 0]), int(r[i, 1])
            x[i, 0, a:a + patch, b:b + patch] += templates[y[i]]
            masks[i, a:a + patch, b:b + patch] = True
        return IndexedImages(x, y, masks)

    return make(n_train), make(n_test), classes


def default_data_dir() -> str:
    """Where torchvision datasets are looked for: ``$SMOOT_DATA_DIR``, else ``./data``."""
    return os.environ.get("SMOOT_DATA_DIR") or "data"


def load_dataset(name: str, data_dir: str | None = None, *, download: bool = False,
                 subset: int | None = None, test_subset: int | None = None,
                 seed: int = 0) -> DataBundle:
    """Loads dataset ``name`` (one of ``DATASETS``) into memory; see the module docstring."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    mean, std, alpha = (0.0,), (1.0,), 0.95
    if name == "digits":
        train, test, classes = _digits()
    elif name == "synthetic":
        train, test, classes = _synthetic()
    else:
        ((xtr, ytr), (xte, yte)), classes = _torchvision(name, data_dir or default_data_dir(), download)
        if name.startswith("cifar"):
            mean, std, alpha = IMAGENET_MEAN, IMAGENET_STD, 0.8
            m = torch.tensor(mean).view(1, 3, 1, 1)
            s = torch.tensor(std).view(1, 3, 1, 1)
            xtr, xte = (xtr - m) / s, (xte - m) / s
        train, test = IndexedImages(xtr, ytr), IndexedImages(xte, yte)
    if subset is not None:
        train = train.subset(subset, seed)
    if test_subset is not None:
        test = test.subset(test_subset, seed)
    c, h, w = train.images.shape[1:]
    return DataBundle(name, train, test, c, classes, h, mean, std, alpha)


class EpochBatchSampler(Sampler):
    """Batches of indices in an order fixed by (seed, epoch); disjoint shares per rank."""

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                 rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        per_rank = self.n // self.world_size if self.world_size > 1 else self.n
        return order[self.rank:per_rank * self.world_size:self.world_size]

    def __iter__(self):
        yield from (b.tolist() for b in self.indices().split(self.batch_size))

    def __len__(self):
        per_rank = self.n // self.world_size if self.world_size > 1 else self.n
        return -(-per_rank // self.batch_size)


def make_loader(dataset: IndexedImages, batch_size: int, *, shuffle: bool, seed: int = 0,
                epoch: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader of (x, y, index) batches; see the module docstring."""
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                rank=rank, world_size=world_size)
    # __getitems__ already returns the collated batch: the collate step must pass it through.
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=_identity,
                      num_workers=num_workers, pin_memory=pin_memory)


def _identity(batch):
    return batch
