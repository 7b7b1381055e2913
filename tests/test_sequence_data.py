"""smoot_ext.data's sequences: the time-series boxes and the text rationales hold the signal
where the truth says (a linear model given only the truth learns the task; one given all but
the truth stays at chance), padding and lengths agree, generation is fixed by its seed."""
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from smoot_ext.data import DATASET_KINDS, load_dataset
from smoot_ext.data.series import SERIES, SERIES_DATASETS, make_series
from smoot_ext.data.text import PAD, SIGNAL_PER_CLASS, SIGNALS, VOCAB_SIZE, make_text

CHANCE_AT_MOST = 0.62  # 300 balanced test samples: chance is 0.5 +- 0.03


def _accuracy(train_x, train_y, test_x, test_y) -> float:
    clf = LogisticRegression(max_iter=300).fit(train_x.numpy(), train_y.numpy())
    return clf.score(test_x.numpy(), test_y.numpy())


@pytest.mark.parametrize("name", SERIES_DATASETS)
def test_series_signal_lies_in_the_box_only(name):
    g = torch.Generator().manual_seed(1)
    train, test = make_series(name, 400, g), make_series(name, 300, g)
    steps, feats, t0, f0 = SERIES[name]
    assert torch.equal(train.masks.sum((1, 2)), torch.full((400,), steps * feats))
    boxes = train.masks.flatten(1)
    assert (t0 is None) == (not (boxes == boxes[0]).all()), "a fixed box moved, or a moving one did not"

    def flat(d, inside):
        return (d.inputs * (d.masks if inside else ~d.masks)).flatten(1)

    assert _accuracy(flat(train, True), train.labels, flat(test, True), test.labels) >= 0.95
    assert _accuracy(flat(train, False), train.labels, flat(test, False), test.labels) <= CHANCE_AT_MOST


def _bag_of_words(d, inside: bool) -> torch.Tensor:
    """Token counts (N, vocab) of the rationale (inside) or of every other real token."""
    real = torch.arange(d.inputs.shape[1]) < d.lengths[:, None]
    keep = real & (d.masks if inside else ~d.masks)
    counts = torch.zeros(d.inputs.shape[0], VOCAB_SIZE)
    return counts.scatter_add_(1, d.inputs, keep.float())


def test_text_label_is_set_by_the_rationale_only():
    g = torch.Generator().manual_seed(1)
    train, test = make_text(600, g), make_text(300, g)
    assert _accuracy(_bag_of_words(train, True), train.labels, _bag_of_words(test, True), test.labels) == 1.0
    assert _accuracy(_bag_of_words(train, False), train.labels, _bag_of_words(test, False),
                     test.labels) <= CHANCE_AT_MOST


def test_text_padding_lengths_and_rationale_agree():
    d = make_text(500, torch.Generator().manual_seed(2))
    T = d.inputs.shape[1]
    real = torch.arange(T) < d.lengths[:, None]
    assert d.lengths.min() >= SIGNALS and d.lengths.max() <= T and len(set(d.lengths.tolist())) > 10
    assert ((d.inputs == PAD) == ~real).all(), "PAD exactly beyond each length"
    assert not (d.masks & ~real).any() and (d.masks.sum(1) == SIGNALS).all()
    signal_class = (d.inputs - 1) // SIGNAL_PER_CLASS
    assert (signal_class[d.masks] == d.labels[:, None].expand_as(d.masks)[d.masks]).all()
    assert ((d.inputs[~d.masks & real] - 1) // SIGNAL_PER_CLASS >= 2).all(), "a distractor is a signal"


@pytest.mark.parametrize("name", ["ts-moving-rare-time", "text-rationale"])
def test_bundles_are_fixed_and_subsets_keep_truth_and_lengths(name):
    a, b = load_dataset(name), load_dataset(name, subset=50, seed=3)
    assert a.kind == DATASET_KINDS[name]
    assert torch.equal(a.train.inputs, load_dataset(name).train.inputs)
    assert len(b.train) == 50 and b.train.masks.shape[0] == 50
    # a subset's samples are the full set's, with their truth (and lengths)
    row = b.train.inputs[0]
    i = int((a.train.inputs == row).flatten(1).all(1).nonzero()[0, 0])
    assert torch.equal(a.train.masks[i], b.train.masks[0])
    if a.kind == "text":
        assert a.vocab_size == VOCAB_SIZE and a.in_channels == 1 and a.image_size == 40
        assert a.train.lengths[i] == b.train.lengths[0]
    else:
        assert (a.in_channels, a.image_size, a.vocab_size) == (50, 50, None)
