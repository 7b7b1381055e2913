"""smoot_ext: saliency-guided training (SGT, SMOOT) and its masking ops."""
import torch  # noqa: F401  (_C links against libtorch)

from . import _C  # noqa: F401  (loads the C++ library: schemas and CPU/CUDA kernels)
from .ops import available_backends, mask, num_units, update_k
from .training import GuidedConfig, SaliencyGuidedTraining

__all__ = ["mask", "update_k", "num_units", "available_backends", "GuidedConfig",
           "SaliencyGuidedTraining"]
