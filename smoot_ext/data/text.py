"""Synthetic text with known rationales: a few signal tokens among distractors set the label.

Sequences of 8 to 40 tokens, padded with PAD (id 0) to 40. Each class owns ``SIGNAL_PER_CLASS``
signal tokens; distractor tokens (never a signal, independent of the label) fill every position
that holds no signal. ``masks`` is (N, T) bool, True at the rationale; ``lengths`` holds each
sample's real token count.

- ``text-rationale``: a sample of class c holds ``SIGNALS`` tokens drawn from c's, at distinct
  random positions, and they are the rationale. Any one of them decides the label alone, so the
  rationale is redundant (a map of one of them explains the prediction).
- ``text-majority``: a sample of class c holds ``MAJORITY`` tokens of c's and ``MAJORITY - 1``
  of the other class's (decoys), at distinct random positions; the label is the class with more
  signal tokens. The rationale is the ``MAJORITY`` label tokens, and each is necessary: without
  any one of them the counts tie, without all of them the decoys win (comprehensive), and with
  them alone the label stands (sufficient). A model must count both classes' tokens: neither
  the presence of a class's token nor any one token tells the label.
"""
from __future__ import annotations

import torch

from .samples import IndexedSamples

TEXT_DATASETS = ("text-rationale", "text-majority")
PAD = 0
CLASSES, SIGNAL_PER_CLASS, DISTRACTORS = 2, 4, 40
SIGNALS = 3                       # text-rationale: signal tokens per sample
MAJORITY = 3                      # text-majority: label tokens per sample (decoys: one fewer)
MIN_LEN, MAX_LEN = 8, 40
VOCAB_SIZE = 1 + CLASSES * SIGNAL_PER_CLASS + DISTRACTORS
TEXT_SEED = 0


def _frame(n: int, g: torch.Generator, signals: int):
    """Labels, lengths, distractor ids (N, MAX_LEN) and ``signals`` distinct random positions
    below each length (the lowest random keys among the real ones), drawn from ``g``."""
    y = torch.randint(0, CLASSES, (n,), generator=g)
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (n,), generator=g)
    first_distractor = 1 + CLASSES * SIGNAL_PER_CLASS
    ids = torch.randint(first_distractor, VOCAB_SIZE, (n, MAX_LEN), generator=g)
    keys = torch.rand(n, MAX_LEN, generator=g).masked_fill(torch.arange(MAX_LEN) >= lengths[:, None], 2.0)
    return y, lengths, ids, keys.argsort(dim=1)[:, :signals]


def _signal_tokens(c: torch.Tensor, count: int, g: torch.Generator) -> torch.Tensor:
    """(N, count) random signal token ids of class ``c`` (N,)."""
    return 1 + c[:, None] * SIGNAL_PER_CLASS + torch.randint(0, SIGNAL_PER_CLASS, (len(c), count), generator=g)


def _samples(ids, y, lengths, pos, rationale) -> IndexedSamples:
    """Pads beyond each length; the mask is True at the ``rationale`` positions."""
    ids[torch.arange(MAX_LEN) >= lengths[:, None]] = PAD
    masks = torch.zeros(ids.shape, dtype=torch.bool).scatter_(1, rationale, True)
    return IndexedSamples(ids, y, masks, lengths)


def make_text(n: int, g: torch.Generator) -> IndexedSamples:
    """``text-rationale``: ``n`` samples drawn from ``g``."""
    y, lengths, ids, pos = _frame(n, g, SIGNALS)
    ids.scatter_(1, pos, _signal_tokens(y, SIGNALS, g))
    return _samples(ids, y, lengths, pos, pos)


def make_majority_text(n: int, g: torch.Generator) -> IndexedSamples:
    """``text-majority``: ``n`` samples drawn from ``g``; the first ``MAJORITY`` of the (random)
    positions take the label's tokens, the rest the decoys."""
    y, lengths, ids, pos = _frame(n, g, 2 * MAJORITY - 1)
    label_tokens = _signal_tokens(y, MAJORITY, g)
    decoys = _signal_tokens(1 - y, MAJORITY - 1, g)
    ids.scatter_(1, pos, torch.cat([label_tokens, decoys], dim=1))
    return _samples(ids, y, lengths, pos, pos[:, :MAJORITY])


_MAKERS = {"text-rationale": make_text, "text-majority": make_majority_text}


def load_text(name: str, n_train: int = 2000, n_test: int = 500):
    """(train, test, classes) of the text task ``name`` (one of ``TEXT_DATASETS``)."""
    if name not in _MAKERS:
        raise ValueError(f"name: expected one of {', '.join(TEXT_DATASETS)}, got {name!r}")
    g = torch.Generator().manual_seed(TEXT_SEED)
    make = _MAKERS[name]
    return make(n_train, g), make(n_test, g), CLASSES
