"""What the Hugging Face Trainer tests share (also imported by their torchrun worker): resized
digits as dicts with an index, a tiny ViT built from a config (nothing downloaded)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.nn.functional as F
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

from smoot_ext.data import load_dataset
from smoot_ext.integrations import WithIndex


def digits(n: int = 96, side: int = 16) -> WithIndex:
    """n digits resized to side x side, as {"pixel_values", "label", "index"} items."""
    b = load_dataset("digits", subset=n)
    x = F.interpolate(b.train.images, size=side, mode="bilinear", align_corners=False)
    return WithIndex([{"pixel_values": x[i], "label": int(b.train.labels[i])} for i in range(n)])


def tiny_vit(side: int = 16) -> ViTForImageClassification:
    torch.manual_seed(0)
    return ViTForImageClassification(ViTConfig(
        image_size=side, patch_size=4, num_channels=1, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, num_labels=10))


def tiny_resnet() -> ResNetForImageClassification:
    torch.manual_seed(0)
    return ResNetForImageClassification(ResNetConfig(
        num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10))


def arguments(out, epochs: int = 2, **kwargs) -> TrainingArguments:
    """Quiet CPU arguments saving a checkpoint after each epoch."""
    options = dict(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=32,
                   learning_rate=1e-3, report_to="none", use_cpu=True, save_strategy="epoch",
                   logging_strategy="epoch", disable_tqdm=True, seed=0)
    return TrainingArguments(**{**options, **kwargs})
