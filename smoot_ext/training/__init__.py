"""Saliency-guided training (baseline, SGT, SMOOT).

- :mod:`.guided`: ``SaliencyGuidedTraining`` and ``GuidedConfig``, the per-step loss and SMOOT's
  per-sample k vector, for use in any training loop;
- :mod:`.saliency`: ``input_gradient``, the saliency the masking ranks by;
- :mod:`.config`: ``TrainConfig``, the trainer's options: a ``GuidedConfig`` and the run's;
- :mod:`.loop`: ``train``, the loop behind ``smoot-train`` (set-up, epoch, checkpoint and resume
  steps);
- :mod:`.checkpoint`: atomic checkpoints, the metrics files and ``load_model(path) -> (model, meta)``.

``SaliencyGuidedTraining.state_dict()`` / ``load_state_dict()`` is the one place that saves and
restores the k vector and the mask generator: the loop, the Lightning callback and the HF
trainer all go through it.
"""
from .checkpoint import load_model
from .guided import TRAINING_METHODS, GuidedConfig, SaliencyGuidedTraining, StepOutput
from .saliency import input_gradient

__all__ = ["GuidedConfig", "TRAINING_METHODS", "SaliencyGuidedTraining", "StepOutput", "input_gradient", "load_model"]
