"""The saliency SGT and SMOOT rank pixels by: the input gradient of the target-class logit."""
from __future__ import annotations

import contextlib

import torch


def _check_target(x: torch.Tensor, target: torch.Tensor) -> None:
    if target.shape != (x.shape[0],):
        raise ValueError(f"target: expected shape ({x.shape[0]},), got {tuple(target.shape)}")


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """The model in eval mode inside the block; its own mode restored after, even on an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _gradient(logits, xg, target, keep_graph: bool) -> torch.Tensor:
    chosen = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
    # inputs=xg: the backward computes the input gradient only, no weight gradients.
    (grad,) = torch.autograd.grad(chosen, xg, retain_graph=keep_graph)
    return grad


def _forward_and_gradient(model, x, target, keep_graph: bool, model_kwargs: dict):
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logits = model(xg, **model_kwargs)
        return logits, _gradient(logits, xg, target, keep_graph)


def input_gradient(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor,
                   **model_kwargs) -> torch.Tensor:
    """``d logits[b, target[b]] / d x[b]`` for every sample b, shaped like ``x``.

    Taken in eval mode, as SGT does (dropout off, BatchNorm on its running statistics, so the
    ranking does not depend on the batch's dropout draw); the model's mode is restored after.
    Only ``x`` gets a gradient: nothing is accumulated into the parameters' ``.grad``.
    ``model_kwargs`` go to the model's call (a sequence model's ``lengths``).
    """
    _check_target(x, target)
    with eval_mode(model):
        return _forward_and_gradient(model, x, target, False, model_kwargs)[1]


def logits_and_input_gradient(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor,
                              **model_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model(x), d logits[b, target[b]] / d x[b])`` from one forward, in the model's own mode.

    The logits keep their graph for the training loss (the shared forward of
    :class:`.guided.SaliencyGuidedTraining`). In train mode the gradient sees this forward's
    dropout draw and batch statistics: it equals :func:`input_gradient` only for models without
    mode-dependent layers. Nothing is accumulated into the parameters' ``.grad``.
    """
    _check_target(x, target)
    return _forward_and_gradient(model, x, target, True, model_kwargs)


def trunk_and_input_gradient(model: torch.nn.Module, x: torch.Tensor,
                             target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model.trunk(x), input_gradient(model, x, target))`` from one forward of the trunk.

    For models that declare ``trunk(x)`` and ``head(h)``: ``forward(x) == head(trunk(x))`` with
    no mode-dependent layer in the trunk (the paper CNN's convolutions). The head runs in eval
    mode, so the gradient is :func:`input_gradient`'s; the trunk's output keeps its graph, and the
    training forward of x continues from it (``model.head`` in train mode, in
    :class:`.guided.SaliencyGuidedTraining`). Nothing is accumulated into the parameters' ``.grad``.
    """
    _check_target(x, target)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        h = model.trunk(xg)
        with eval_mode(model):
            logits = model.head(h)
        return h, _gradient(logits, xg, target, keep_graph=True)
