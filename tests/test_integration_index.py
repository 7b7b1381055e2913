"""WithIndex: any map-style dataset's items carry the index the sampler asked for."""
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from smoot_ext.integrations import WithIndex


def test_tuples_get_the_index_appended_and_dicts_an_index_key():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10) % 3
    item = WithIndex(TensorDataset(x, y))[7]
    assert len(item) == 3 and item[0].item() == 7.0 and item[1].item() == 1 and item[2] == 7
    assert WithIndex([{"pixel_values": x[i]} for i in range(10)], key="idx")[4] == {"pixel_values": x[4], "idx": 4}
    assert len(WithIndex(TensorDataset(x, y))) == 10


def test_the_index_follows_shuffling_and_a_distributed_sampler():
    x = torch.arange(20.0)
    data = WithIndex(TensorDataset(x, x.long()))
    for rank in (0, 1):
        sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        batches = list(DataLoader(data, batch_size=4, sampler=sampler))
        index = torch.cat([b[2] for b in batches])
        assert index.tolist() == list(sampler) and torch.equal(torch.cat([b[0] for b in batches]), x[index])


def test_bad_datasets_and_items_are_named():
    with pytest.raises(TypeError, match="dataset: expected a map-style dataset .* got generator"):
        WithIndex(i for i in range(3))
    with pytest.raises(ValueError, match="key: the dataset's items already hold 'index'"):
        WithIndex([{"index": 0}])[0]
    with pytest.raises(TypeError, match="expected items that are tuples \\(x, y\\) or dicts, got int at index 1"):
        WithIndex([5, 6])[1]
