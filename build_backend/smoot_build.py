"""PEP 517 build backend: setuptools, plus a build requirement on the torch the package will run with.

A C++ extension must be compiled against the torch it is later loaded beside. pip's isolated
build installs a torch of its own to compile against; left unpinned, that is the newest torch pip
can find, and the library built with it fails to load next to the environment's torch (an
undefined symbol, or a missing ``libc10_cuda.so``). So the build asks for exactly the torch that
the target environment holds. pip runs this hook with the target environment's interpreter, so
its site-packages (hidden from ``import`` during the build) still name that torch. Where it has
none (a fresh venv, or ``python -m build``), the build takes the newest supported torch, and the
wheel then requires that very version (``setup.py``).
"""
import sysconfig
from importlib import metadata

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools' own)

SUPPORTED_TORCH = "torch>=2.13,<=2.14.1"
BUILD_TOOLS = ["setuptools>=64", "wheel", "ninja"]


def environment_torch() -> str | None:
    """The version of torch installed in the environment this interpreter belongs to, if any."""
    paths = list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))
    for dist in metadata.distributions(name="torch", path=paths):
        return dist.version
    return None


def torch_requirement() -> str:
    version = environment_torch()
    return f"torch=={version}" if version else SUPPORTED_TORCH


def get_requires_for_build_wheel(config_settings=None):
    return BUILD_TOOLS + [torch_requirement()]


def get_requires_for_build_editable(config_settings=None):
    return get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    return _setuptools.get_requires_for_build_sdist(config_settings)
