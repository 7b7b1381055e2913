"""What the C++ library was built with (``_build.json``, written by setup.py next to ``_C``),
and the check that it can load beside the running torch, made before loading it."""
from __future__ import annotations

import functools
import json
import os

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_COMMAND = "pip install --no-build-isolation --force-reinstall --no-deps ."


def _rebuild_hint(source: str | None) -> str:
    where = f"cd {source} && " if source and os.path.isfile(os.path.join(source, "setup.py")) else ""
    return (f"rebuild smoot_ext from its source folder:\n  {where}{BUILD_COMMAND}\n"
            "(or, for an editable checkout: pip install --no-build-isolation -e .)")


@functools.cache
def built_with() -> dict | None:
    """The build's record: torch, torch_cuda, cuda_kernels, why_no_cuda, cuda_home, arch_list,
    source; None where the package holds no build (a source checkout not yet built)."""
    try:
        with open(os.path.join(_HERE, "_build.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def check_build() -> dict:
    """The build record, or an ImportError saying how to build or rebuild."""
    info = built_with()
    if info is None:
        raise ImportError(
            f"smoot_ext's C++ ops are not built here ({_HERE} has no _build.json): install the "
            "package with `pip install .`, or build a checkout in place with "
            "`pip install --no-build-isolation -e .` (see README.md)")
    if info["torch"] != torch.__version__:
        raise ImportError(
            f"smoot_ext was built against torch {info['torch']}, but this environment runs torch "
            f"{torch.__version__}; its compiled ops load only beside the torch they were built "
            f"against. To run with this torch, {_rebuild_hint(info.get('source'))}")
    return info


def load_library():
    """Imports ``smoot_ext._C`` (the schemas and the CPU/CUDA kernels) after ``check_build``."""
    info = check_build()
    try:
        from . import _C
    except ImportError as e:
        raise ImportError(f"smoot_ext._C failed to load ({e}); to fix it, {_rebuild_hint(info.get('source'))}") from e
    return _C
