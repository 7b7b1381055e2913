"""smoot_ext.data's sequences: the time-series boxes and the text rationales hold the signal
where the truth says (a linear model given only the truth learns the task; one given all but
the truth stays at chance), padding and lengths agree, generation is fixed by its seed. The
series: every box has its shape and place (the positional ones set by the class), each variant
draws independently, min-max scaling is fitted on the training set only."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from smoot_ext.data import DATASET_KINDS, load_dataset
from smoot_ext.data.processes import PROCESSES
from smoot_ext.data.series import (
    SERIES,
    SERIES_DATASETS,
    SHAPES,
    fit_min_max,
    load_series,
    make_series,
    series_rng,
)
from smoot_ext.data.text import PAD, SIGNAL_PER_CLASS, SIGNALS, VOCAB_SIZE, make_text

CHANCE_AT_MOST = 0.62  # 300 balanced test samples: chance is 0.5 +- 0.03


def _accuracy(train_x, train_y, test_x, test_y) -> float:
    clf = LogisticRegression(max_iter=300).fit(train_x.numpy(), train_y.numpy())
    return clf.score(test_x.numpy(), test_y.numpy())


# the sign of the box says the class: every sign shape on the Gaussian background, middle on each process
SIGN_VARIANTS = [f"ts-{s}" for s, box in SHAPES.items() if not box.positional] + [
    f"ts-middle-{p}" for p in PROCESSES]


@pytest.mark.parametrize("name", SIGN_VARIANTS)
def test_series_signal_lies_in_the_box_only(name):
    rng = np.random.default_rng(1)
    train, test = make_series(name, 400, rng), make_series(name, 300, rng)

    def flat(d, inside):
        return (d.inputs * (d.masks if inside else ~d.masks)).flatten(1)

    assert _accuracy(flat(train, True), train.labels, flat(test, True), test.labels) >= 0.95
    assert _accuracy(flat(train, False), train.labels, flat(test, False), test.labels) <= CHANCE_AT_MOST


def _first(masks: torch.Tensor, dim: int) -> torch.Tensor:
    """Each sample's first step (dim 1) or feature (dim 2) inside its box."""
    return masks.any(3 - dim).int().argmax(1)


@pytest.mark.parametrize("name", SERIES_DATASETS)
def test_series_boxes_have_their_shape_and_place(name):
    shape, _ = SERIES[name]
    box = SHAPES[shape]
    d = make_series(name, 60, np.random.default_rng(2))
    assert d.inputs.shape == (60, 50, 50) and d.masks.dtype == torch.bool
    assert torch.equal(d.masks.sum((1, 2)), torch.full((60,), box.steps * box.features))
    assert d.masks.any(2).sum(1).eq(box.steps).all() and d.masks.any(1).sum(1).eq(box.features).all()
    for dim, start, size in ((1, box.first_step, box.steps), (2, box.first_feature, box.features)):
        first = _first(d.masks, dim)
        if start is None:  # drawn in [0, 50 - size), as their generator draws
            assert first.max() < 50 - size and len(first.unique()) > 5
        elif isinstance(start, tuple):  # the class sets the place
            assert torch.equal(first, torch.tensor(start)[d.labels])
        else:
            assert (first == start).all()


@pytest.mark.parametrize("shape", ["positional-time", "positional-feature"])
def test_positional_boxes_are_positive_in_both_classes(shape):
    d = make_series(f"ts-{shape}", 300, np.random.default_rng(3))
    inside = (d.inputs * d.masks).sum((1, 2)) / d.masks.sum((1, 2))
    assert (inside > 0.6).all() and 100 < d.labels.sum() < 200  # N(1, 1) over 400 values
    outside = (d.inputs * ~d.masks).sum((1, 2)) / (~d.masks).sum((1, 2))
    assert outside.abs().max() < 0.1


def test_sign_boxes_say_the_class_by_their_sign():
    for shape, box in SHAPES.items():
        if not box.positional:
            d = make_series(f"ts-{shape}", 200, np.random.default_rng(4))
            inside = (d.inputs * d.masks).sum((1, 2)) / d.masks.sum((1, 2))
            assert torch.equal(inside > 0, d.labels.bool()), shape


def test_each_variant_draws_its_own_labels_and_noise():
    a, b, c = (make_series(n, 1000, series_rng(n)) for n in ("ts-middle", "ts-small-middle", "ts-middle-ar"))
    for other in (b, c):
        assert 0.44 < (a.labels == other.labels).float().mean() < 0.56
    # outside both boxes the Gaussian noise of two variants is uncorrelated
    keep = ~(a.masks | b.masks)
    assert abs(torch.corrcoef(torch.stack([a.inputs[keep], b.inputs[keep]]))[0, 1]) < 0.01


def test_variant_seeds_are_stable_across_runs():
    # from the name's bytes, not Python's salted hash(): the same in every process
    assert series_rng("ts-middle").integers(2 ** 32) == 1499975360
    assert series_rng("ts-middle").integers(2 ** 32) != series_rng("ts-middle-ar").integers(2 ** 32)


def test_min_max_scaling_is_fitted_on_the_training_set():
    name = "ts-moving-rare-time-gp"
    train, test, classes = load_series(name, n_train=200, n_test=100)
    rng = series_rng(name)
    raw_train, raw_test = make_series(name, 200, rng), make_series(name, 100, rng)
    assert classes == 2 and torch.equal(train.labels, raw_train.labels)
    assert (train.inputs.amin(0) == 0).all() and torch.allclose(train.inputs.amax(0), torch.ones(50, 50))
    low = raw_train.inputs.amin(0)
    expected = (raw_test.inputs - low) / (raw_train.inputs.amax(0) - low)
    assert torch.allclose(test.inputs, expected, atol=1e-5)
    assert test.inputs.min() < 0 and test.inputs.max() > 1, "test values left [0, 1]: not refitted"
    assert torch.equal(test.masks, raw_test.masks)


def test_a_constant_element_scales_to_zero():
    low, span = fit_min_max(torch.tensor([[1.0, 2.0], [1.0, 4.0]]))
    assert torch.equal(low, torch.tensor([1.0, 2.0])) and torch.equal(span, torch.tensor([1.0, 2.0]))


def test_make_series_names_a_wrong_variant():
    with pytest.raises(ValueError, match="name: expected one of the series datasets .* got 'ts-box'"):
        make_series("ts-box", 2, np.random.default_rng(0))


def test_train_cli_lists_every_series_dataset():
    from smoot_ext.cli.train import build_parser
    text = build_parser().format_help()
    assert all(name in text for name in SERIES_DATASETS)


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
