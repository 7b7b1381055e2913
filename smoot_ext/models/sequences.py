"""Sequence classifiers: (B, T, D) series, or token ids (B, T) through a learned embedding.

Every model here is called ``model(x, lengths=None)``: ``x`` is float (B, T, D) (a series, or
embeddings) or int64 (B, T) token ids, which the model embeds first (``embed``, only for models
built with a vocabulary); ``lengths`` (B,) gives the real steps of padded input (None: all T
are real). Padding never reaches the output: the recurrent models pack it away, the others
leave it out of attention and of the pooling. Saliency-guided training masks in embedding space:
it calls ``embed`` itself, masks the embeddings and passes them in (smoot_ext/training/guided.py).

- ``lstm``: one LSTM layer (hidden 64), its last real state -> linear;
- ``bilstm``: the same, bidirectional (both directions' last states);
- ``transformer``: a 2-layer encoder (d 64, 4 heads, feed-forward 128, learned positions),
  a masked mean over real steps -> linear;
- ``tcn``: three residual blocks of causal dilated convolutions (64 channels, kernel 3,
  dilations 1, 2, 4), a masked mean over real steps -> linear;
- ``hf-bert`` (text only, the ``[hf]`` extra): a Hugging Face ``BertForSequenceClassification``
  built from a small config (2 layers, hidden 64, 4 heads, no pretrained weights), called with
  ``inputs_embeds`` (its own word embeddings are the model's ``embed``, so the mask acts on them
  as for the others) and ``attention_mask`` from the lengths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

SEQUENCE_MODELS = ("lstm", "bilstm", "transformer", "tcn", "hf-bert")
HIDDEN = 64
EMBED_DIM = 64


def _real_steps(lengths: torch.Tensor | None, B: int, T: int, device) -> torch.Tensor:
    """(B, T) bool, True at real steps."""
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device) < lengths.to(device).unsqueeze(1)


def _masked_mean(h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean of h (B, T, H) over the real steps of each row (zero for a row without one)."""
    w = real.unsqueeze(2).to(h.dtype)
    return (h * w).sum(1) / w.sum(1).clamp(min=1)


class SequenceClassifier(nn.Module):
    """The shared front: an optional embedding (``vocab_size``) and the call convention."""

    def __init__(self, input_dim: int, vocab_size: int | None):
        super().__init__()
        self.embedding = None if vocab_size is None else nn.Embedding(vocab_size, EMBED_DIM)
        self.input_dim = EMBED_DIM if vocab_size is not None else input_dim

    @property
    def embed_dim(self) -> int | None:
        """The embedding's width (None without a vocabulary)."""
        return None if self.embedding is None else self.embedding.embedding_dim

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            raise ValueError("x: this model takes float (B, T, D) input; it has no vocabulary to embed token ids")
        return self.embedding(ids)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if not x.is_floating_point():
            x = self.embed(x)
        if x.dim() != 3 or x.shape[2] != self.input_dim:
            raise ValueError(f"x: expected (B, T, {self.input_dim}) input, got shape {tuple(x.shape)}")
        return self.classify(x, lengths)

    def classify(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


class LSTMClassifier(SequenceClassifier):
    def __init__(self, input_dim: int, num_classes: int, *, bidirectional: bool, vocab_size=None):
        super().__init__(input_dim, vocab_size)
        self.lstm = nn.LSTM(self.input_dim, HIDDEN, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(HIDDEN * (2 if bidirectional else 1), num_classes)

    def classify(self, x, lengths):
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        # cuDNN's RNN backward refuses eval mode, where the saliency is taken; one LSTM layer
        # has no dropout, so torch's own kernel computes the same there.
        with torch.backends.cudnn.flags(enabled=self.training or not torch.is_grad_enabled()):
            _, (h, _) = self.lstm(x)
        return self.fc(torch.cat(list(h), dim=1))  # the last layer's directions, side by side


class TransformerClassifier(SequenceClassifier):
    def __init__(self, input_dim: int, num_classes: int, max_len: int, *, vocab_size=None):
        super().__init__(input_dim, vocab_size)
        self.proj = nn.Linear(self.input_dim, HIDDEN)
        self.pos = nn.Parameter(torch.zeros(1, max_len, HIDDEN))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(HIDDEN, 4, 2 * HIDDEN, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(HIDDEN, num_classes)

    def classify(self, x, lengths):
        B, T, _ = x.shape
        if T > self.pos.shape[1]:
            raise ValueError(f"x: expected at most {self.pos.shape[1]} steps, got {T}")
        real = _real_steps(lengths, B, T, x.device)
        # Step 0 always attended: a row of padding alone would make every attention weight NaN.
        attend = real | (torch.arange(T, device=x.device) == 0)
        h = self.encoder(self.proj(x) + self.pos[:, :T], src_key_padding_mask=None if lengths is None else ~attend)
        return self.fc(_masked_mean(h, real))


class _CausalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int):
        super().__init__()
        self.pad = 2 * dilation  # kernel 3: (3 - 1) * dilation steps of the past
        self.conv1 = nn.Conv1d(cin, cout, 3, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, 3, dilation=dilation)
        self.short = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = F.relu(self.conv1(F.pad(x, (self.pad, 0))))
        h = F.relu(self.conv2(F.pad(h, (self.pad, 0))))
        return F.relu(h + self.short(x))


class TCNClassifier(SequenceClassifier):
    def __init__(self, input_dim: int, num_classes: int, *, vocab_size=None):
        super().__init__(input_dim, vocab_size)
        blocks, cin = [], self.input_dim
        for d in (1, 2, 4):
            blocks.append(_CausalBlock(cin, HIDDEN, d))
            cin = HIDDEN
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(HIDDEN, num_classes)

    def classify(self, x, lengths):
        B, T, _ = x.shape
        h = self.blocks(x.transpose(1, 2)).transpose(1, 2)  # causal: padding never reaches a real step
        return self.fc(_masked_mean(h, _real_steps(lengths, B, T, x.device)))


class HFBertClassifier(SequenceClassifier):
    """``hf-bert`` (see the module docstring): BERT's word embeddings are ``self.embedding``;
    BERT adds its position and type embeddings to the ``inputs_embeds`` it is given."""

    def __init__(self, num_classes: int, max_len: int, *, vocab_size: int | None):
        if vocab_size is None:
            raise ValueError("model: 'hf-bert' takes token ids (a vocabulary), not float series; got vocab_size=None")
        from .._extras import require

        require("hf", "transformers")
        from transformers import BertConfig, BertForSequenceClassification

        super().__init__(EMBED_DIM, vocab_size)
        config = BertConfig(vocab_size=vocab_size, hidden_size=EMBED_DIM, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=2 * HIDDEN, max_position_embeddings=max_len, num_labels=num_classes)
        self.hf = BertForSequenceClassification(config)
        self.hf.bert.embeddings.word_embeddings = self.embedding  # one table: embed() is BERT's own

    def classify(self, x, lengths):
        B, T, _ = x.shape
        attend = _real_steps(lengths, B, T, x.device)
        return self.hf(inputs_embeds=x, attention_mask=attend.long()).logits


def build_sequence_model(name: str, input_dim: int, num_classes: int, max_len: int, *,
                         vocab_size: int | None = None) -> SequenceClassifier:
    if name in ("lstm", "bilstm"):
        return LSTMClassifier(input_dim, num_classes, bidirectional=name == "bilstm", vocab_size=vocab_size)
    if name == "transformer":
        return TransformerClassifier(input_dim, num_classes, max_len, vocab_size=vocab_size)
    if name == "hf-bert":
        return HFBertClassifier(num_classes, max_len, vocab_size=vocab_size)
    return TCNClassifier(input_dim, num_classes, vocab_size=vocab_size)
