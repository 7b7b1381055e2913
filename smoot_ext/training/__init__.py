"""Saliency-guided training (baseline, SGT, SMOOT).

- :mod:`.guided`: ``SaliencyGuidedTraining`` and ``GuidedConfig``, the per-step loss and SMOOT's
  per-sample k vector, for use in any training loop;
- :mod:`.saliency`: ``input_gradient``, the saliency the masking ranks by;
- :mod:`.loop`: ``TrainConfig`` and ``train``, the loop behind ``python/train.py``;
- :mod:`.checkpoint`: atomic checkpoints and ``load_model(path) -> (model, meta)``.
"""
from .checkpoint import load_model
from .guided import TRAINING_METHODS, GuidedConfig, SaliencyGuidedTraining, StepOutput
from .saliency import input_gradient

__all__ = ["GuidedConfig", "TRAINING_METHODS", "SaliencyGuidedTraining", "StepOutput", "input_gradient", "load_model"]
