"""The MoRF accuracy of the official SGT code (Ismail et al. 2021, saliency_guided_training,
``Scripts/maskedAcc_MNIST.py`` -> ``regular.testForRoar`` -> ``Helper.getSalinecyAugmnetedBatch``
with the "Grad" method and the "trueMask" fill), the protocol behind the SMOOT paper's Table 2.

Per test image and drop d in 0, 10, ..., 90 percent: the saliency is Captum's ``Saliency``
(|d logit[y] / d x|), averaged over channels and taken absolute; the ``max(1, int(H * H * d / 100))``
most salient pixels (``torch.topk``, largest first, on the flattened map, one image at a time) get
the image's own top-left value of channel 0 (its background); the curve is the accuracy in percent
of the model on the masked images (d = 0: the clean images). Direction: lower = more faithful (the
most relevant pixels mattered). Its chance level is the same curve with a random map
(:func:`random_morf_accuracy`: a seeded uniform map in place of the saliency).

Unlike smoot_ext's own curves (``perturbation.removal_curves``), k uses ``H * H`` (square
images), rounds down, removes at least one pixel and fills with a single value for every channel
(one channel only: the published fill cannot fill several).
"""
from __future__ import annotations

import torch

SGT_DROPS = tuple(range(0, 100, 10))  # percent, as maskedAcc_MNIST.py's ``drop``


def morf_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, drops=SGT_DROPS,
                  batch_size: int = 500) -> list[float]:
    """The accuracy (%) of ``model`` (eval mode) on ``x`` (N, 1, H, H) with the top ``d``% of each
    image's |gradient| pixels set to its background, for each ``d`` of ``drops``."""
    return _curve(model, x, y, drops, batch_size, lambda xb, yb: _gradient_map(model, xb, yb))


def random_morf_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, drops=SGT_DROPS,
                         batch_size: int = 500, seed: int = 0) -> list[float]:
    """The same curve with a seeded uniform random map: the chance level."""
    g = torch.Generator().manual_seed(seed)
    return _curve(model, x, y, drops, batch_size, lambda xb, yb: torch.rand(xb.shape[0], *xb.shape[2:], generator=g))


def _curve(model, x, y, drops, batch_size, saliency) -> list[float]:
    if model.training:
        raise ValueError("model: expected eval mode (model.eval()), got training mode")
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"x: expected (N, 1, H, H) images, as the published fill needs, got {tuple(x.shape)}")
    correct = torch.zeros(len(drops), dtype=torch.int64)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        sal = saliency(xb, yb)
        for i, d in enumerate(drops):
            masked = xb if d == 0 else remove_most_salient(xb, sal, d / 100.0)
            with torch.no_grad():
                correct[i] += (model(masked).argmax(1) == yb).sum()
    return [100.0 * int(c) / len(x) for c in correct]


def _gradient_map(model, x, y) -> torch.Tensor:
    """Captum's Saliency (|gradient|), averaged over channels, absolute: (B, H, W)."""
    from captum.attr import Saliency

    x = x.detach().clone().requires_grad_(True)
    return Saliency(model).attribute(x, target=y).mean(1).detach().abs()


def remove_most_salient(x: torch.Tensor, saliency: torch.Tensor, fraction: float) -> torch.Tensor:
    """Each image of ``x`` (B, 1, H, H) with its ``max(1, int(H * H * fraction))`` most salient
    pixels set to its pixel (0, 0), one image at a time as published (``topk``'s order of ties)."""
    out = x.detach().clone()
    k = max(1, int(x.shape[2] * x.shape[2] * fraction))
    for b in range(len(out)):
        top = torch.topk(saliency[b].flatten(), k, largest=True).indices
        out[b, 0].view(-1)[top] = out[b, 0, 0, 0].item()
    return out
