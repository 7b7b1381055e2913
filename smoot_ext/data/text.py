"""Synthetic text with known rationales: a few signal tokens among distractors set the label.

``text-rationale``: sequences of 8 to 40 tokens, padded with PAD (id 0) to 40. Each class owns
``SIGNAL_PER_CLASS`` signal tokens; a sample of class c holds ``SIGNALS`` tokens drawn from
c's, at distinct random positions, and distractor tokens (never a signal, independent of the
label) everywhere else. The signal positions are the rationale: ``masks`` is (N, T) bool, True
there; ``lengths`` holds each sample's real token count.
"""
from __future__ import annotations

import torch

from .samples import IndexedSamples

TEXT_DATASETS = ("text-rationale",)
PAD = 0
CLASSES, SIGNAL_PER_CLASS, DISTRACTORS = 2, 4, 40
SIGNALS = 3                       # signal tokens per sample
MIN_LEN, MAX_LEN = 8, 40
VOCAB_SIZE = 1 + CLASSES * SIGNAL_PER_CLASS + DISTRACTORS
TEXT_SEED = 0


def make_text(n: int, g: torch.Generator) -> IndexedSamples:
    """``n`` samples drawn from ``g``: token ids (N, MAX_LEN), labels, rationale masks, lengths."""
    y = torch.randint(0, CLASSES, (n,), generator=g)
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (n,), generator=g)
    first_distractor = 1 + CLASSES * SIGNAL_PER_CLASS
    ids = torch.randint(first_distractor, VOCAB_SIZE, (n, MAX_LEN), generator=g)
    # SIGNALS distinct positions below each length: the lowest random keys among the real ones.
    keys = torch.rand(n, MAX_LEN, generator=g).masked_fill(torch.arange(MAX_LEN) >= lengths[:, None], 2.0)
    pos = keys.argsort(dim=1)[:, :SIGNALS]
    signal = 1 + y[:, None] * SIGNAL_PER_CLASS + torch.randint(0, SIGNAL_PER_CLASS, (n, SIGNALS), generator=g)
    ids.scatter_(1, pos, signal)
    ids[torch.arange(MAX_LEN) >= lengths[:, None]] = PAD
    masks = torch.zeros(n, MAX_LEN, dtype=torch.bool).scatter_(1, pos, True)
    return IndexedSamples(ids, y, masks, lengths)


def load_text(name: str, n_train: int = 2000, n_test: int = 500):
    """(train, test, classes) of the text task."""
    g = torch.Generator().manual_seed(TEXT_SEED)
    return make_text(n_train, g), make_text(n_test, g), CLASSES
