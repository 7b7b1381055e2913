"""Triton kernels of the smoot ops, registered as ``smoot::mask_triton`` and
``smoot::update_k_triton`` (same schemas as ``smoot::mask`` / ``smoot::update_k``)."""
from . import mask, update_k  # noqa: F401  (importing registers the ops)
