"""Models for saliency-guided training.

Public API (stable):

    build_model(name, in_channels, num_classes, image_size, *, pretrained="auto",
                vocab_size=None) -> nn.Module

``name`` is one of ``MODELS``:

- ``"cnn"``: the paper's two-layer CNN (SGT / SMOOT, Section 4.1): conv 3x3 32, ReLU, conv 3x3 64,
  ReLU, max-pool 2, dropout 0.25, fc 128, ReLU, dropout 0.5, fc num_classes. Unpadded convolutions
  as in the Keras MNIST example SGT builds on, so it accepts any image of side >= 6 (digits' 8x8
  included).
- ``"deit_tiny"``: DeiT-tiny (L=12, d=192, h=3; timm ``deit_tiny_patch16_224``). Inputs of any
  size are resized to 224x224 inside the model, so masking still acts on the native pixels (the
  paper's k = 512 for CIFAR is half of 32x32). ``pretrained="auto"`` loads ImageNet weights when
  they are available locally (the Hugging Face cache, or the file named by the environment
  variable ``SMOOT_DEIT_WEIGHTS``), and otherwise builds it from scratch and says so on stderr;
  ``True`` requires them, ``False`` never loads them.
- ``"resnet"``: a small CIFAR-style ResNet-8 (3 stages of one basic block, 16/32/64 channels,
  global average pooling); any image side >= 1.

- ``"lstm"``, ``"bilstm"``, ``"transformer"``, ``"tcn"``: sequence classifiers (:mod:`.sequences`),
  for ``in_channels`` features per step and up to ``image_size`` steps; with ``vocab_size`` they
  take token ids and embed them first. Called ``model(x, lengths=None)`` for padded input.

Every image model maps ``(B, in_channels, image_size, image_size)`` float to ``(B, num_classes)``
logits; every sequence model ``(B, T, in_channels)`` float, or ``(B, T)`` ids, to the same.
"""
from __future__ import annotations

from torch import nn

from .images import (  # noqa: F401  (the package's public names)
    DEIT_NAME,
    DEIT_SIZE,
    IMAGE_MODELS,
    PaperCNN,
    Resized,
    SmallResNet,
    build_image_model,
)
from .sequences import SEQUENCE_MODELS, build_sequence_model

MODELS = IMAGE_MODELS + SEQUENCE_MODELS


def build_model(name: str, in_channels: int, num_classes: int, image_size: int, *,
                pretrained="auto", vocab_size: int | None = None) -> nn.Module:
    """Builds model ``name`` (one of ``MODELS``); see the module docstring."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    for arg, val in (("in_channels", in_channels), ("num_classes", num_classes),
                     ("image_size", image_size)):
        if not isinstance(val, int) or val < 1:
            raise ValueError(f"{arg} must be a positive int, got {val!r}")
    if pretrained not in ("auto", True, False):
        raise ValueError(f"pretrained must be 'auto', True or False, got {pretrained!r}")
    if name in SEQUENCE_MODELS:
        return build_sequence_model(name, in_channels, num_classes, image_size, vocab_size=vocab_size)
    if vocab_size is not None:
        raise ValueError(f"vocab_size: model {name!r} takes images, not tokens; got vocab_size={vocab_size}")
    return build_image_model(name, in_channels, num_classes, image_size, pretrained)
