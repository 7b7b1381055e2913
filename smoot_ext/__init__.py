"""smoot_ext: saliency-guided training (SGT, SMOOT) and its masking ops."""
import torch  # noqa: F401  (_C links against libtorch)

from . import _C  # noqa: F401  (loads the C++ library: schemas and CPU/CUDA kernels)
