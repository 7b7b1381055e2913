"""A process-wide allocator setting for training and evaluation on a CPU (glibc's malloc).

Called by the command-line front ends (smoot_ext/cli, benchmarks); library code never calls it.
"""
from __future__ import annotations

import ctypes
import os

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_kept = False  # whether keep_freed_memory has made the setting in this process


def keep_freed_memory() -> bool:
    """Makes glibc's malloc reuse freed memory instead of returning it to the kernel.

    By default glibc serves every allocation above its mmap threshold (at most 32 MB: a conv
    activation of a few hundred images) by a fresh mmap and unmaps it when freed, and trims the
    heap's free top, so each step faults in and zeroes its large tensors again: kernel time on
    every step. With mmap off and trimming off, freed blocks are reused; the process keeps its
    peak heap, as PyTorch's CUDA caching allocator keeps GPU memory. Process-wide and permanent.
    Skipped (returns False) where the C library is not glibc, or where the environment already
    sets glibc's malloc options (``MALLOC_*`` variables, ``GLIBC_TUNABLES``): those win.
    """
    if any(k.startswith("MALLOC_") for k in os.environ) or "glibc.malloc" in os.environ.get(
            "GLIBC_TUNABLES", ""):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        libc = ctypes.CDLL("libc.so.6")
    except (ValueError, OSError, AttributeError):  # no confstr name, no glibc
        return False
    global _kept
    _kept = _kept or (bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)))
    return _kept


def freed_memory_kept() -> bool:
    """Whether ``keep_freed_memory`` made its setting in this process: large tensors then cost no
    page faults, and the evaluation forwards larger batches (perturbation.default_forward_batch)."""
    return _kept
