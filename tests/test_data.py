"""smoot_ext.data: the datasets, their sample index, synthetic ground truth, loaders, errors."""

import re

import numpy as np
import pytest
import torch
from data_dir import MNIST_DIR, needs_mnist

from smoot_ext.data import DATASETS, EpochBatchSampler, load_dataset, make_loader
from smoot_ext.data.images import read_idx, stratified_split


def test_digits_split_range_and_index():
    b = load_dataset("digits")
    assert (len(b.train), len(b.test)) == (1437, 360)
    assert b.train.images.shape[1:] == (1, 8, 8) and (b.in_channels, b.image_size, b.num_classes) == (1, 8, 10)
    assert b.train.images.min() == 0 and b.train.images.max() == 1
    assert set(b.test.labels.tolist()) == set(range(10))
    x, y, i = b.train[5]
    assert i == 5 and torch.equal(x, b.train.images[5]) and y == b.train.labels[5]
    assert b.train.masks is None and b.alpha == 0.95
    # The split does not depend on the seed: every run is scored on the same test images.
    assert torch.equal(load_dataset("digits", seed=3).test.images, b.test.images)


def test_digits_are_scikit_learns_with_its_split():
    """Read without importing scikit-learn, the data and the split are load_digits' and
    train_test_split's (stratified, random_state=0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    tr, te = train_test_split(np.arange(len(d.target)), test_size=0.2, stratify=d.target, random_state=0)
    b = load_dataset("digits")
    assert torch.equal(b.train.inputs, torch.tensor(d.images[np.sort(tr)], dtype=torch.float32)[:, None] / 16.0)
    assert torch.equal(b.test.inputs, torch.tensor(d.images[np.sort(te)], dtype=torch.float32)[:, None] / 16.0)
    assert b.test.labels.tolist() == d.target[np.sort(te)].tolist()


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("counts, fraction", [((5, 5, 5), 0.2), ((3, 7, 11, 2), 0.25), ((10, 9, 9, 9, 3), 0.3),
                                             ((50, 2, 3), 0.5)])
def test_the_stratified_split_is_scikit_learns(seed, counts, fraction):
    """Ties among remainders (equal class counts) take scikit-learn's random draws, in its order."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    idx = np.arange(len(y))
    want_tr, want_te = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    tr, te = stratified_split(y, fraction, seed)
    assert np.array_equal(tr, want_tr) and np.array_equal(te, want_te)


def test_synthetic_ground_truth_region_carries_the_signal():
    b = load_dataset("synthetic", seed=1)
    assert b.test.masks.shape == (len(b.test), 16, 16) and b.test.masks.dtype == torch.bool
    assert (b.test.masks.sum((1, 2)) == 36).all()  # one 6x6 square per image
    x, m = b.test.images[:, 0], b.test.masks
    assert x[m].abs().mean() > 1.5 * x[~m].abs().mean()  # template +-1 over noise vs noise alone
    again = load_dataset("synthetic", seed=1)
    assert torch.equal(again.train.images, b.train.images) and torch.equal(again.train.masks, b.train.masks)
    # The same set for every seed (a training seed must not change the task it is scored on);
    # the seed chooses subsets.
    other = load_dataset("synthetic", seed=2)
    assert torch.equal(other.train.images, b.train.images) and torch.equal(other.test.labels, b.test.labels)
    assert not torch.equal(load_dataset("synthetic", seed=2, subset=50).train.images,
                           load_dataset("synthetic", seed=1, subset=50).train.images)
    sub = b.test.subset(10, seed=0)
    assert sub.masks.shape == (10, 16, 16)


@needs_mnist
def test_mnist_from_the_data_dir():
    b = load_dataset("mnist", str(MNIST_DIR), subset=100, test_subset=50)
    assert (len(b.train), len(b.test), b.image_size, b.in_channels) == (100, 50, 28, 1)
    assert 0 <= b.train.images.min() and b.train.images.max() <= 1
    assert b.train[99][2] == 99  # re-indexed 0..n-1: the k vector has one entry per kept sample


@needs_mnist
def test_mnist_is_read_as_torchvision_reads_it():
    """The idx files are read without torchvision; the tensors are those of its MNIST class."""
    import torchvision.datasets as tvd

    b = load_dataset("mnist", str(MNIST_DIR))
    for split, train in ((b.train, True), (b.test, False)):
        ds = tvd.MNIST(str(MNIST_DIR), train=train)
        assert torch.equal(split.inputs, ds.data.unsqueeze(1).float() / 255.0)
        assert torch.equal(split.labels, ds.targets)


@pytest.mark.parametrize("content, message", [(b"not an idx file", "not an idx file of unsigned bytes"),
                                              (b"\0\0\x08\x03\0\0", "truncated in its header"),
                                              (b"\0\0\x08\x01\0\0\0\x05abc", "3 values for the shape (5,)")])
def test_a_damaged_idx_file_is_named(tmp_path, content, message):
    path = tmp_path / "f-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_idx(str(path))
    path.write_bytes(b"\0\0\x08\x02\0\0\0\x02\0\0\0\x03abcdef")
    assert read_idx(str(path)).tolist() == [[97, 98, 99], [100, 101, 102]]


def test_errors_name_the_choices_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'.*" + ", ".join(DATASETS)):
        load_dataset("svhn")
    with pytest.raises(FileNotFoundError, match="data_dir.*download"):
        load_dataset("mnist", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="fashion-mnist not found.*download"):
        load_dataset("fashion-mnist", str(tmp_path))
    with pytest.raises(ValueError, match=r"subset must be in \[1, 1437\], got 0"):
        load_dataset("digits", subset=0)


def test_loader_order_is_a_function_of_seed_and_epoch():
    b = load_dataset("digits", subset=100)

    def order(**kw):
        return torch.cat([i for _, _, i in make_loader(b.train, 32, shuffle=True, **kw)])

    first = order(seed=0, epoch=0)
    assert sorted(first.tolist()) == list(range(100))
    assert torch.equal(first, order(seed=0, epoch=0))
    assert not torch.equal(first, order(seed=0, epoch=1))
    assert not torch.equal(first, order(seed=1, epoch=0))
    x, y, i = next(iter(make_loader(b.train, 32, shuffle=True, seed=0, epoch=0)))
    assert torch.equal(x, b.train.images[i]) and torch.equal(y, b.train.labels[i])


def test_ranks_get_disjoint_equal_shares():
    shares = [EpochBatchSampler(103, 10, shuffle=True, seed=0, epoch=2, rank=r, world_size=2).indices()
              for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 51
    assert not set(shares[0].tolist()) & set(shares[1].tolist())
    assert len(EpochBatchSampler(103, 10, shuffle=False, rank=1, world_size=2)) == 6
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        EpochBatchSampler(10, 0, shuffle=False)
