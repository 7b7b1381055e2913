"""Saliency maps through Captum, for whole batches at once.

Every method returns an attribution with the input's shape, signed (no abs): the ranking code
decides whether to take |.|, so one attribution serves both the accuracy-drop curve and the
localisation metrics.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from captum import attr as captum_attr

from .choices import check_choices
from .imputation import background_tensor

ATTRIBUTION_METHODS = (
    "saliency",
    "integrated_gradients",
    "smoothgrad",
    "deeplift",
    "gradient_shap",
    "input_x_gradient",
)


@dataclass(frozen=True)
class AttributionConfig:
    """Knobs of the Captum methods (the defaults are Captum's or the methods' papers')."""

    ig_steps: int = 32  # IntegratedGradients steps (Gauss-Legendre): 0.5% from a 200-step result on MNIST
    nt_samples: int = 10  # SmoothGrad: noisy copies per image
    noise: float = 0.15  # SmoothGrad / GradientShap noise std, as a fraction of the data range
    shap_samples: int = 10  # GradientShap: random baseline draws per image
    internal_batch_size: int = 1000  # images x steps per forward pass in IntegratedGradients


def check_methods(methods) -> list[str]:
    """Validate saliency method names; raise naming the option and the valid choices."""
    return check_choices(methods, ATTRIBUTION_METHODS, "--methods", "saliency method")


def attribute(
    model: torch.nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    method: str,
    *,
    baseline,
    data_range: float,
    config: AttributionConfig = AttributionConfig(),
    seed: int = 0,
) -> torch.Tensor:
    """Attribution of `target[b]`'s logit to each element of `x[b]`, for the whole batch.

    `baseline` is the reference input value, one or one per channel (IntegratedGradients,
    DeepLift, GradientShap): the data's background level, so "absence of signal" means a blank
    image and not 0 in normalised units. `data_range` scales the SmoothGrad/GradientShap noise.
    The model must be in eval mode (dropout would make the maps random). SmoothGrad and
    GradientShap draw their noise from the global RNG inside Captum, so it is forked and seeded
    here for repeatability.
    """
    check_methods([method])
    if model.training:
        raise ValueError("model: expected eval mode (model.eval()) for attribution, got training mode")
    x = x.detach().clone().requires_grad_(True)
    # Captum takes a baseline of one image broadcast over the batch.
    ref = background_tensor(baseline, x).expand_as(x[:1]).contiguous()
    target = target.to(device=x.device, dtype=torch.long)
    stdev = config.noise * data_range
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        if method == "saliency":
            out = captum_attr.Saliency(model).attribute(x, target=target, abs=False)
        elif method == "integrated_gradients":
            out = captum_attr.IntegratedGradients(model).attribute(
                x, baselines=ref, target=target, n_steps=config.ig_steps,
                internal_batch_size=config.internal_batch_size)
        elif method == "smoothgrad":
            out = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=config.nt_samples, stdevs=stdev,
                nt_samples_batch_size=max(1, config.internal_batch_size // x.shape[0]),
                target=target, abs=False)
        elif method == "deeplift":
            _warn_if_deeplift_degenerates(model)
            out = captum_attr.DeepLift(model).attribute(x, baselines=ref, target=target)
        elif method == "gradient_shap":
            # One blank reference image; the per-draw Gaussian noise spreads the baseline.
            out = captum_attr.GradientShap(model).attribute(
                x, baselines=ref, n_samples=config.shap_samples, stdevs=stdev, target=target)
        else:  # input_x_gradient
            out = captum_attr.InputXGradient(model).attribute(x, target=target)
    return out.detach()


def _warn_if_deeplift_degenerates(model: torch.nn.Module) -> None:
    """Captum applies DeepLift's rules only to non-linearities that are modules (nn.ReLU, ...);
    through functional ones (F.relu, F.max_pool2d) it back-propagates plain gradients, and with
    none left DeepLift equals (x - baseline) * gradient."""
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    if not any(isinstance(mod, tuple(SUPPORTED_NON_LINEAR)) for mod in model.modules()):
        warnings.warn("deeplift: the model has no nn.ReLU/nn.MaxPool2d/... modules (functional "
                      "non-linearities?), so Captum's DeepLift reduces to (x - baseline) * gradient here",
                      stacklevel=3)


def unit_scores(attribution: torch.Tensor, *, unit: str = "pixel", abs: bool = True) -> torch.Tensor:
    """(B, M) importance of each maskable unit: |attribution| (or signed) per feature, or summed
    over the channels of a pixel (unit="pixel", NCHW: M = H*W) as smoot_ext.mask ranks them."""
    if unit not in ("pixel", "feature"):
        raise ValueError(f"unit: expected 'pixel' or 'feature', got {unit!r}")
    a = attribution.float()
    if abs:
        a = a.abs()
    if unit == "pixel":
        if a.dim() != 4:
            raise ValueError(f"unit='pixel': expected an NCHW attribution, got shape {tuple(a.shape)}")
        a = a.sum(dim=1)
    return a.reshape(a.shape[0], -1)
