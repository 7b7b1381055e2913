"""Each sample's index for any map-style dataset, so SMOOT can keep one k per training sample.

    train_set = WithIndex(torchvision.datasets.MNIST(...))   # items (x, y) -> (x, y, i)
    train_set = WithIndex(hf_dataset)                        # items {...} -> {..., "index": i}

The index is the one the sampler asked for, so it is right under shuffling, ``DistributedSampler``
and the samplers Lightning and the Hugging Face Trainer install: every sampler hands a map-style
dataset the positions it wants, and ``WithIndex`` passes each position on with the sample.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping

from torch.utils.data import Dataset


class WithIndex(Dataset):
    """``dataset`` whose item i also carries i: a tuple gets it appended, a dict under ``key``."""

    def __init__(self, dataset, key: str = "index"):
        if not (callable(getattr(dataset, "__getitem__", None)) and callable(getattr(dataset, "__len__", None))):
            raise TypeError(f"dataset: expected a map-style dataset (with __getitem__ and __len__), "
                            f"got {type(dataset).__name__}")
        self.dataset, self.key = dataset, key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        i = operator.index(i)  # a plain int: collates to an int64 tensor, keys a dict
        item = self.dataset[i]
        if isinstance(item, Mapping):
            if self.key in item:
                raise ValueError(f"key: the dataset's items already hold {self.key!r}; pass "
                                 f"WithIndex(dataset, key=...) another name")
            return {**item, self.key: i}
        if isinstance(item, (tuple, list)):
            return (*item, i)
        raise TypeError(f"dataset: expected items that are tuples (x, y) or dicts, got "
                        f"{type(item).__name__} at index {i}")
