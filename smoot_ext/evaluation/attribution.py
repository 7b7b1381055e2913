"""Saliency maps through Captum, for whole batches at once.

Every method returns an attribution with the input's shape, signed (no abs): the ranking code
decides whether to take |.|, so one attribution serves both the accuracy-drop curve and the
localisation metrics.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._extras import require
from .choices import check_choices, check_count
from .imputation import background_tensor


@dataclass(frozen=True)
class AttributionConfig:
    """Knobs of the Captum methods (the defaults are Captum's or the methods' papers')."""

    ig_steps: int = 32  # IntegratedGradients steps (Gauss-Legendre): 0.5% from a 200-step result on MNIST
    nt_samples: int = 10  # SmoothGrad: noisy copies per image
    noise: float = 0.15  # SmoothGrad / GradientShap noise std, as a fraction of the data range
    shap_samples: int = 10  # GradientShap: random baseline draws per image
    internal_batch_size: int = 1000  # images x steps per forward pass in IntegratedGradients

    def __post_init__(self):
        for name in ("ig_steps", "nt_samples", "shap_samples", "internal_batch_size"):
            check_count(name, getattr(self, name))
        if not (isinstance(self.noise, (int, float)) and self.noise >= 0):
            raise ValueError(f"noise: expected a std >= 0 (a fraction of the data range), got {self.noise!r}")


@dataclass(frozen=True)
class Method:
    """A saliency method: ``captum`` names its class in ``captum.attr`` (wrapped in a NoiseTunnel
    of type ``tunnel`` if given); ``baseline``: it takes the background image as its reference;
    ``options(config, batch, noise std)``: its other keyword arguments; ``check(model)``: called
    before it runs."""

    captum: str
    baseline: bool = False
    options: Callable[[AttributionConfig, int, float], dict] = lambda config, batch, noise: {}
    tunnel: str | None = None
    check: Callable[[torch.nn.Module], None] | None = None


def _warn_if_deeplift_degenerates(model: torch.nn.Module) -> None:
    """Captum applies DeepLift's rules only to non-linearities that are modules (nn.ReLU, ...);
    through functional ones (F.relu, F.max_pool2d) it back-propagates plain gradients, and with
    none left DeepLift equals (x - baseline) * gradient."""
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    if not any(isinstance(mod, tuple(SUPPORTED_NON_LINEAR)) for mod in model.modules()):
        warnings.warn("deeplift: the model has no nn.ReLU/nn.MaxPool2d/... modules (functional "
                      "non-linearities?), so Captum's DeepLift reduces to (x - baseline) * gradient here",
                      stacklevel=3)


# Adding a method is one entry here.
METHODS = {
    "saliency": Method("Saliency", options=lambda c, b, noise: {"abs": False}),
    "integrated_gradients": Method("IntegratedGradients", baseline=True, options=lambda c, b, noise: {
        "n_steps": c.ig_steps, "internal_batch_size": c.internal_batch_size}),
    "smoothgrad": Method("Saliency", tunnel="smoothgrad", options=lambda c, b, noise: {
        "nt_samples": c.nt_samples, "stdevs": noise,
        "nt_samples_batch_size": max(1, c.internal_batch_size // b), "abs": False}),
    "deeplift": Method("DeepLift", baseline=True, check=_warn_if_deeplift_degenerates),
    # One blank reference image; the per-draw Gaussian noise spreads the baseline.
    "gradient_shap": Method("GradientShap", baseline=True, options=lambda c, b, noise: {
        "n_samples": c.shap_samples, "stdevs": noise}),
    "input_x_gradient": Method("InputXGradient"),
}
ATTRIBUTION_METHODS = tuple(METHODS)


def check_methods(methods) -> list[str]:
    """Validate saliency method names; raise naming the option and the valid choices."""
    return check_choices(methods, ATTRIBUTION_METHODS, "methods", "saliency method")


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
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attribution of `target[b]`'s logit to each element of `x[b]`, for the whole batch.

    `baseline` is the reference input value, one or one per channel (IntegratedGradients,
    DeepLift, GradientShap): the data's background level, so "absence of signal" means a blank
    image and not 0 in normalised units. `data_range` scales the SmoothGrad/GradientShap noise.
    The model must be in eval mode (dropout would make the maps random). SmoothGrad and
    GradientShap draw their noise from the global RNG inside Captum, so it is forked and seeded
    here for repeatability. ``lengths`` (B,) reaches the model as its second argument (padded
    sequences; Captum repeats it with the inputs it expands).
    """
    check_methods([method])
    require("eval", "captum")  # only here: the registry, the configs and the comparison need no captum
    from captum import attr as captum_attr

    if model.training:
        raise ValueError("model: expected eval mode (model.eval()) for attribution, got training mode")
    spec = METHODS[method]
    x = x.detach().clone().requires_grad_(True)
    kwargs = {"target": target.to(device=x.device, dtype=torch.long),
              **spec.options(config, x.shape[0], config.noise * data_range)}
    if spec.baseline:  # Captum takes a baseline of one image broadcast over the batch.
        kwargs["baselines"] = background_tensor(baseline, x).expand_as(x[:1]).contiguous()
    explainer = getattr(captum_attr, spec.captum)(model)
    if spec.tunnel is not None:
        explainer = captum_attr.NoiseTunnel(explainer)
        kwargs["nt_type"] = spec.tunnel
    if spec.check is not None:
        spec.check(model)
    if lengths is not None:
        kwargs["additional_forward_args"] = (lengths,)
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        out = explainer.attribute(x, **kwargs)
    return out.detach()
