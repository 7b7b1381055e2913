"""Process-wide settings, made here and nowhere else: torch's CPU threads and (front ends only)
the allocator's."""
from __future__ import annotations

import torch

from .allocator import keep_freed_memory


def set_threads(threads: int | None) -> None:
    """torch's CPU threads; 0 or None keeps torch's default."""
    if threads:
        torch.set_num_threads(threads)


def process_settings(threads: int | None) -> None:
    """What a command-line front end sets once, first: the allocator's setting, then the threads."""
    keep_freed_memory()
    set_threads(threads)
