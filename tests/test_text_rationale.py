"""text-majority: the label needs every one of its rationale tokens; text-rationale unchanged."""
from __future__ import annotations

import hashlib

import pytest
import torch

from smoot_ext.data import DATASET_KINDS, load_dataset
from smoot_ext.data.text import CLASSES, MAJORITY, MAX_LEN, PAD, SIGNAL_PER_CLASS, load_text


def _signal_counts(ids: torch.Tensor) -> torch.Tensor:
    """(N, classes) signal tokens of each class in each sample."""
    cls = (ids - 1) // SIGNAL_PER_CLASS
    signal = (ids != PAD) & (cls < CLASSES)
    return torch.stack([(signal & (cls == c)).sum(1) for c in range(CLASSES)], dim=1)


def test_text_majority_label_is_the_class_with_more_signal_tokens_and_the_mask_its_tokens():
    for d in load_text("text-majority")[:2]:
        counts = _signal_counts(d.inputs)
        assert torch.equal(counts.argmax(1), d.labels)
        assert (counts.max(1).values == MAJORITY).all() and (counts.min(1).values == MAJORITY - 1).all()
        masked = d.inputs[d.masks]
        assert (d.masks.sum(1) == MAJORITY).all()
        assert torch.equal((masked - 1) // SIGNAL_PER_CLASS, d.labels.repeat_interleave(MAJORITY))
        real = torch.arange(MAX_LEN) < d.lengths[:, None]
        assert ((d.inputs == PAD) == ~real).all() and not (d.masks & ~real).any()
        assert 0.4 < d.labels.float().mean() < 0.6


def test_every_rationale_token_is_necessary_and_together_they_are_comprehensive_and_sufficient():
    d = load_text("text-majority")[1]
    x, y = d.inputs, d.labels
    for j in range(MAJORITY):  # without any one label token the counts tie: no label
        one = x.clone()
        pos = torch.sort(d.masks.int(), dim=1, descending=True, stable=True).indices[:, j]
        one[torch.arange(len(x)), pos] = PAD
        counts = _signal_counts(one)
        assert (counts[:, 0] == counts[:, 1]).all()
    without = _signal_counts(x.masked_fill(d.masks, PAD))  # comprehensive: the decoys win
    assert torch.equal(without.argmax(1), 1 - y)
    alone = _signal_counts(x.masked_fill(~d.masks, PAD))  # sufficient: the label stands
    assert torch.equal(alone.argmax(1), y) and (alone.min(1).values == 0).all()


def test_text_rationale_is_unchanged():
    """The committed text-rationale results keep their meaning: the same samples as before."""
    train, test, _ = load_text("text-rationale")
    digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in (train.inputs, train.labels, train.masks,
                                                                      test.inputs, test.lengths))).hexdigest()
    assert digest == "eb5914db6bf61e42874ca72e2b8d9e53042e5d72e02f427f1db6824b89788d36"


def test_text_majority_is_a_dataset_of_its_own():
    b = load_dataset("text-majority")
    assert DATASET_KINDS["text-majority"] == "text" and b.kind == "text" and b.image_size == MAX_LEN
    assert not torch.equal(b.train.inputs, load_dataset("text-rationale").train.inputs)
    with pytest.raises(ValueError, match=r"name: expected one of text-rationale, text-majority, got 'text-x'"):
        load_text("text-x")
