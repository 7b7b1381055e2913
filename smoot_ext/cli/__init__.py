"""The command-line programs: ``smoot-train``, ``smoot-evaluate``, ``smoot-reproduce``.

Each module has ``build_parser()`` and ``main(argv=None) -> int``; ``python/*.py`` and the console
scripts call ``main``. Process-wide settings (threads, allocator) are made here, not in the library.
"""

import torch

from ..allocator import keep_freed_memory


def process_settings(threads: int) -> None:
    """The allocator's setting, then torch's CPU threads (0 = torch's default)."""
    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
