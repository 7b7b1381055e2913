"""smoot_ext: saliency-guided training (SGT, SMOOT) and its masking ops."""
import importlib.metadata

from ._build import load_library

_C = load_library()  # the schemas and CPU/CUDA kernels, once the build is known to fit this torch

from .ops import available_backends, mask, num_units, update_k  # noqa: E402
from .training import GuidedConfig, SaliencyGuidedTraining  # noqa: E402

__version__ = importlib.metadata.version("smoot_ext")


def build_info() -> dict:
    """What was built and what runs here (``python -m smoot_ext.info`` prints it)."""
    from .info import build_info as _build_info

    return _build_info()


__all__ = ["mask", "update_k", "num_units", "available_backends", "build_info", "GuidedConfig",
           "SaliencyGuidedTraining", "__version__"]
