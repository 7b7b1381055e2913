"""The image models: the paper CNN, DeiT-tiny (timm) and a small ResNet (see smoot_ext.models)."""
from __future__ import annotations

import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_MODELS = ("cnn", "deit_tiny", "resnet")
DEIT_NAME = "deit_tiny_patch16_224"
DEIT_SIZE = 224


class PaperCNN(nn.Module):
    """The two-layer CNN of SGT/SMOOT for MNIST-like data (see the module docstring)."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        if image_size < 6:
            raise ValueError(f"model 'cnn' needs image_size >= 6 (two unpadded 3x3 convolutions "
                             f"and a 2x2 pool), got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.drop1 = nn.Dropout(0.25)
        side = (image_size - 4) // 2
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, num_classes)
        # One module per nonlinearity (no functional calls): Captum's DeepLift rewrites the
        # gradient of each ReLU/MaxPool module and sees nothing of F.relu.
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def trunk(self, x):
        """The convolutions: no mode-dependent layer, so train and eval mode agree (the step of
        SaliencyGuidedTraining forwards them once for the saliency and the training loss)."""
        return self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))

    def head(self, h):
        x = torch.flatten(self.drop1(h), 1)
        return self.fc2(self.drop2(self.relu3(self.fc1(x))))

    def forward(self, x):
        return self.head(self.trunk(x))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))


class SmallResNet(nn.Module):
    """ResNet-8 for small images: stem, three single-block stages, global average pool."""

    def __init__(self, in_channels: int, num_classes: int, widths=(16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(_BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Resized(nn.Module):
    """Resizes the input (bilinear) before ``inner``, so masking acts on the native pixels."""

    def __init__(self, inner: nn.Module, size: int):
        super().__init__()
        self.inner = inner
        self.size = size

    def forward(self, x):
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.inner(x)


def _local_deit_weights():
    """Path of locally available DeiT-tiny weights, or None (never touches the network)."""
    weights = os.environ.get("SMOOT_DEIT_WEIGHTS")
    if weights:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"SMOOT_DEIT_WEIGHTS={weights!r} is not a file")
        return weights
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    hub_id = get_pretrained_cfg(DEIT_NAME).hf_hub_id
    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(hub_id, filename)
        if isinstance(path, str):
            return path
    return None


def _deit(in_channels: int, num_classes: int, pretrained) -> nn.Module:
    import timm

    kwargs = dict(num_classes=num_classes, in_chans=in_channels)
    weights = None if pretrained is False else _local_deit_weights()
    if weights is not None:
        return timm.create_model(DEIT_NAME, pretrained=True,
                                 pretrained_cfg_overlay=dict(file=weights), **kwargs)
    if pretrained is True:
        raise RuntimeError(f"pretrained {DEIT_NAME} weights are not available locally: set "
                           f"SMOOT_DEIT_WEIGHTS to the .pth/.safetensors file or fill the Hugging "
                           f"Face cache")
    if pretrained == "auto":
        print(f"[smoot_ext] no local pretrained weights for {DEIT_NAME} (set SMOOT_DEIT_WEIGHTS "
              f"or fill the Hugging Face cache); training DeiT-tiny from scratch", file=sys.stderr)
    return timm.create_model(DEIT_NAME, pretrained=False, **kwargs)


def build_image_model(name: str, in_channels: int, num_classes: int, image_size: int,
                      pretrained) -> nn.Module:
    if name == "cnn":
        return PaperCNN(in_channels, num_classes, image_size)
    if name == "resnet":
        return SmallResNet(in_channels, num_classes)
    return Resized(_deit(in_channels, num_classes, pretrained), DEIT_SIZE)
