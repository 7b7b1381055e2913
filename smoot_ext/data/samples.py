"""In-memory datasets that yield each sample's index, their bundle, and the seeded loaders.

``IndexedSamples[i]`` is ``(input, label, i)``: the sample index reaches the trainer (SMOOT
keeps one k per training sample). ``masks`` (the ground truth where known) and ``lengths``
(real steps of padded sequences) travel with the samples through ``subset``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class IndexedSamples(Dataset):
    """Inputs ``(N, ...)`` and labels ``(N,)`` int64; item i is (x, y, i). Float inputs are kept
    as float32, integer ones (token ids) as int64."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None,
                 lengths: torch.Tensor | None = None):
        if inputs.ndim < 2 or labels.shape != (inputs.shape[0],):
            raise ValueError(f"inputs must be (N, ...) and labels (N,), got {tuple(inputs.shape)} "
                             f"and {tuple(labels.shape)}")
        if lengths is not None and lengths.shape != labels.shape:
            raise ValueError(f"lengths must be (N,) = {tuple(labels.shape)}, got {tuple(lengths.shape)}")
        self.inputs = (inputs.float() if inputs.is_floating_point() else inputs.long()).contiguous()
        self.labels = labels.long()
        self.masks = masks
        self.lengths = None if lengths is None else lengths.long()

    def __len__(self):
        return self.inputs.shape[0]

    def __getitem__(self, i):
        return self.inputs[i], self.labels[i], i

    def __getitems__(self, idx):
        # Whole batch by fancy indexing: no per-item collate (DataLoader calls this when present).
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.inputs[idx], self.labels[idx], idx

    def subset_positions(self, n: int, seed: int) -> torch.Tensor:
        """The positions, in order, of the seeded random choice of ``n`` samples ``subset`` keeps."""
        if not 1 <= n <= len(self):
            raise ValueError(f"subset must be in [1, {len(self)}], got {n}")
        return torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values

    def subset(self, n: int, seed: int):
        keep = self.subset_positions(n, seed)
        return type(self)(self.inputs[keep], self.labels[keep],
                          *(None if t is None else t[keep] for t in (self.masks, self.lengths)))


class IndexedImages(IndexedSamples):
    """In-memory images ``(N, C, H, W)`` float32 and labels ``(N,)`` int64; item i is (x, y, i)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None,
                 lengths: None = None):
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(f"images must be (N, C, H, W) and labels (N,), got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        super().__init__(images.float(), labels, masks)

    @property
    def images(self) -> torch.Tensor:
        return self.inputs


@dataclass
class DataBundle:
    """A dataset's splits and what a model needs to know of it.

    ``kind`` is "image", "series" or "text". For images ``in_channels`` and ``image_size`` are
    C and H (= W); for sequences ``in_channels`` is the features per step (1 for text's token
    ids) and ``image_size`` the steps T; ``vocab_size`` is the token count for text, else None.
    """
    name: str
    train: IndexedSamples
    test: IndexedSamples
    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple
    std: tuple
    alpha: float
    kind: str = "image"
    vocab_size: int | None = None


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


def make_loader(dataset: IndexedSamples, batch_size: int, *, shuffle: bool, seed: int = 0,
                epoch: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader of (x, y, index) batches; see smoot_ext.data's docstring."""
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                rank=rank, world_size=world_size)
    # __getitems__ already returns the collated batch: the collate step must pass it through.
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=_identity,
                      num_workers=num_workers, pin_memory=pin_memory)


def _identity(batch):
    return batch
