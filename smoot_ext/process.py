"""Process-wide settings, made here and nowhere else: torch's CPU threads and (front ends only)
the allocator's and the exit's."""
from __future__ import annotations

import atexit
import gc

import torch

from .allocator import keep_freed_memory


def set_threads(threads: int | None) -> None:
    """torch's CPU threads; 0 or None keeps torch's default."""
    if threads:
        torch.set_num_threads(threads)


def skip_exit_collections() -> None:
    """At exit, freeze the heap before the interpreter's last garbage collections: with torch
    imported, those passes walk every object torch made, 0.4-0.6 s of a command's wall time here
    (``python -c "import torch"`` takes 1.8 s, 1.4 s with the freeze). The atexit handlers still
    run and files still close; cycles left at exit go unfinalized, which Python never promised."""
    atexit.unregister(gc.freeze)  # once, however often a front end's main runs in one process
    atexit.register(gc.freeze)


def process_settings(threads: int | None) -> None:
    """What a command-line front end sets once, first: the allocator's and the exit's setting,
    then the threads."""
    keep_freed_memory()
    skip_exit_collections()
    set_threads(threads)
