"""The image datasets: scikit-learn's digits, torchvision's (MNIST, CIFAR, ...) and the
synthetic squares (see smoot_ext.data's docstring)."""
from __future__ import annotations

import importlib.util
import os
import struct

import numpy as np
import torch

from .._extras import require
from .samples import IndexedImages

IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _digits():
    x, y = _digits_arrays()
    # A fixed split (not --seed): the test set must be the same for every run compared.
    tr, te = stratified_split(y, test_fraction=0.2, seed=0)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y, dtype=torch.long)
    tr, te = torch.as_tensor(np.sort(tr)), torch.as_tensor(np.sort(te))
    return IndexedImages(x[tr], y[tr]), IndexedImages(x[te], y[te]), 10


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 x 64 values in 0..16, labels), read from the file it ships as
    its ``load_digits`` reads it, without importing scikit-learn (about a second of imports)."""
    require("train", "sklearn")  # the file ships with it
    folder = importlib.util.find_spec("sklearn").submodule_search_locations[0]
    path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions as scikit-learn's ``train_test_split(stratify=y, test_size=...,
    random_state=seed)`` draws them (StratifiedShuffleSplit, one split; tests/test_data.py
    checks they are equal), without importing scikit-learn."""
    n_test = int(np.ceil(test_fraction * len(y)))
    _, y_indices = np.unique(y, return_inverse=True)
    class_counts = np.bincount(y_indices)
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, len(y) - n_test, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i, members in enumerate(class_indices):
        perm = members.take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(perm[:n_i[i]])
        test.extend(perm[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """scikit-learn's ``utils.extmath._approximate_mode``: per-class draws proportional to the
    counts, floored, the rest given by largest remainder with random tie breaks."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    remainder = continuous - floored
    for value in np.sort(np.unique(remainder))[::-1]:
        if need_to_add <= 0:
            break
        (inds,) = np.where(remainder == value)
        add_now = min(len(inds), need_to_add)
        floored[rng.choice(inds, size=add_now, replace=False)] += 1
        need_to_add -= add_now
    return floored.astype(int)


def _torchvision(name: str, data_dir: str, download: bool):
    if not download and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data_dir: {data_dir!r} does not exist: point it at a folder "
                                f"holding {name} in torchvision's layout, or download it")
    found = None if download or name not in IDX_FOLDERS else _idx_splits(name, data_dir)
    if found is not None:
        return found
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST,
           "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    splits = []
    for train in (True, False):
        try:
            ds = cls(data_dir, train=train, download=download)
        except RuntimeError as e:
            if "not found" not in str(e):
                raise _unreadable(name, data_dir, e) from e
            raise FileNotFoundError(f"data_dir: {name} not found in {data_dir!r} ({e}); "
                                    f"download it") from e
        except (AssertionError, ValueError, OSError, EOFError) as e:  # torchvision's reader on a bad file
            raise _unreadable(name, data_dir, e) from e
        splits.append(_split(ds.data, ds.targets))
    return splits, len(ds.classes)


def _split(data, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """(x in [0, 1] NCHW, y long) from uint8 images, grey NHW or RGB NHWC, and their labels."""
    x = torch.as_tensor(np.asarray(data))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return x.float() / 255.0, torch.as_tensor(np.asarray(targets), dtype=torch.long)


# torchvision's folders and files of the MNIST-format datasets (their raw/ idx files).
IDX_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_splits(name: str, data_dir: str):
    """What ``_torchvision`` returns for an MNIST-format dataset, read from the idx files of its
    raw/ folder as torchvision reads them, without importing torchvision (about 1.3 s); None
    where a file is missing (torchvision then says what)."""
    paths = [os.path.join(data_dir, IDX_FOLDERS[name], "raw", f) for f in IDX_FILES]
    if not all(os.path.isfile(p) for p in paths):
        return None
    try:
        arrays = [read_idx(p) for p in paths]
    except ValueError as e:
        raise _unreadable(name, data_dir, e) from e
    return [_split(arrays[i], arrays[i + 1]) for i in (0, 2)], 10


def read_idx(path: str) -> np.ndarray:
    """An idx file of unsigned bytes (LeCun's MNIST format: zero, zero, type 0x08, the number of
    dimensions, each dimension as a big-endian uint32, the values)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())  # writable, so torch can take the values without a copy
    if len(data) < 4 or data[:3] != b"\0\0\x08":
        raise ValueError(f"{path}: not an idx file of unsigned bytes (header {data[:4]!r})")
    head = 4 + 4 * data[3]
    if len(data) < head:
        raise ValueError(f"{path}: truncated in its header")
    dims = struct.unpack(f">{data[3]}I", data[4:head])
    values = np.frombuffer(data, dtype=np.uint8, offset=head)
    if values.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {values.size} values for the shape {dims} (truncated or padded)")
    return values.reshape(dims)


def _unreadable(name: str, data_dir: str, e: BaseException) -> ValueError:
    return ValueError(f"data_dir: {name}'s files in {data_dir!r} cannot be read, truncated or not in "
                      f"torchvision's format ({type(e).__name__}: {e}); replace them (download them again)")


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



def load_images(name: str, data_dir: str, download: bool):
    """(train, test, classes, mean, std, alpha) of image dataset ``name``."""
    mean, std, alpha = (0.0,), (1.0,), 0.95
    if name == "digits":
        train, test, classes = _digits()
    elif name == "synthetic":
        train, test, classes = _synthetic()
    else:
        ((xtr, ytr), (xte, yte)), classes = _torchvision(name, data_dir, download)
        if name.startswith("cifar"):
            mean, std, alpha = IMAGENET_MEAN, IMAGENET_STD, 0.8
            m = torch.tensor(mean).view(1, 3, 1, 1)
            s = torch.tensor(std).view(1, 3, 1, 1)
            xtr, xte = (xtr - m) / s, (xte - m) / s
        train, test = IndexedImages(xtr, ytr), IndexedImages(xte, yte)
    return train, test, classes, mean, std, alpha
