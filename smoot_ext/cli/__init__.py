"""The command-line programs: ``smoot-train``, ``smoot-evaluate``, ``smoot-reproduce``.

Each module has ``build_parser()`` and ``main(argv=None) -> int``; ``python/*.py`` and the console
scripts call ``main``. Process-wide settings (threads, allocator) are made here, not in the library.
"""
