"""The saliency SGT and SMOOT rank pixels by: the input gradient of the target-class logit."""
from __future__ import annotations

import torch


def input_gradient(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``d logits[b, target[b]] / d x[b]`` for every sample b, shaped like ``x``.

    Taken in eval mode, as SGT does (dropout off, BatchNorm on its running statistics, so the
    ranking does not depend on the batch's dropout draw); the model's mode is restored after.
    Only ``x`` gets a gradient: nothing is accumulated into the parameters' ``.grad``.
    """
    if target.shape != (x.shape[0],):
        raise ValueError(f"target: expected shape ({x.shape[0]},), got {tuple(target.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logits = model(xg)
            chosen = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
            (grad,) = torch.autograd.grad(chosen, xg)
    finally:
        model.train(was_training)
    return grad
