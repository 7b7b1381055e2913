"""PEP 517 build backend: setuptools, compiling against the torch the package will run with.

A C++ extension must be compiled against the torch it is later loaded beside: torch's C++ API is
not stable across releases, and even a ``+cpu`` and a ``+cu126`` build of one release differ in
what they link. So the build uses the target environment's own torch and installs none:

- pip runs these hooks with the target environment's interpreter, so ``sysconfig`` still names
  its site-packages, which build isolation hides from ``import``. Where that site-packages holds
  a torch in the supported range, the build requires no torch, and the hooks append that
  site-packages to ``sys.path`` (after the isolated build tools, which stay first and so stay
  isolated) so that ``setup.py`` imports the environment's torch itself, whatever its variant or
  origin (``+cpu``, ``+cuXXX``, a local or nightly build). Nothing is downloaded, and no second
  torch lands on disk.
- A torch outside the supported range fails at once, naming it and the range, before any
  compile.
- Where the environment has no torch (a fresh venv, or ``python -m build``), the isolated build
  installs the newest supported torch, and the wheel then requires that very release
  (``setup.py``).

Asking the isolated build for ``torch==<the environment's version>`` instead would make pip find
that exact file again on the indexes named for this command, which for a ``+cuXXX`` torch are
usually not the ones that served it, and would put a second copy of torch on disk for each build.
"""
import functools
import os
import re
import sys
import sysconfig
from importlib import metadata

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools' own)

OLDEST, NEWEST = (2, 13, 0), (2, 14, 1)  # the torch releases the ops are built and tested against
SUPPORTED_TORCH = f"torch>={'.'.join(map(str, OLDEST))},<={'.'.join(map(str, NEWEST))}"
BUILD_TOOLS = ["setuptools>=64", "wheel", "ninja"]


def environment_site_packages() -> list[str]:
    """The target environment's site-packages folders (purelib, platlib), in that order."""
    return list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))


def environment_torch() -> str | None:
    """The version of torch installed in the environment this interpreter belongs to, if any."""
    for dist in metadata.distributions(name="torch", path=environment_site_packages()):
        return dist.version
    return None


def release(version: str) -> tuple[int, int, int]:
    """(major, minor, micro) of a torch version: ``2.14.1+cu126`` and ``2.14.0a0+git1234`` alike."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise SystemExit(f"smoot_ext: cannot read the torch version {version!r} of this environment")
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro or 0)


def check_supported(version: str) -> None:
    """One clear message, before any compile, for a torch the ops were never built against."""
    if not OLDEST <= release(version) <= NEWEST:
        raise SystemExit(
            f"smoot_ext supports {SUPPORTED_TORCH}, but the environment it installs into holds torch "
            f"{version}. Install a supported torch first (e.g. pip install 'torch==2.14.1'), then "
            "install smoot_ext again.")


def use_environment_torch() -> bool:
    """Makes the environment's torch importable to this build, after the isolated build tools;
    False where the environment has no torch."""
    version = environment_torch()
    if version is None:
        return False
    check_supported(version)
    sys.path.extend(p for p in environment_site_packages() if p not in sys.path and os.path.isdir(p))
    return True


def get_requires_for_build_wheel(config_settings=None):
    return BUILD_TOOLS if use_environment_torch() else BUILD_TOOLS + [SUPPORTED_TORCH]


def get_requires_for_build_editable(config_settings=None):
    return get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    return _setuptools.get_requires_for_build_sdist(config_settings)


def _with_environment_torch(hook):
    """A setuptools hook that runs setup.py, run where the environment's torch is importable."""
    @functools.wraps(hook)
    def run(*args, **kwargs):
        use_environment_torch()
        return hook(*args, **kwargs)
    return run


prepare_metadata_for_build_wheel = _with_environment_torch(_setuptools.prepare_metadata_for_build_wheel)
prepare_metadata_for_build_editable = _with_environment_torch(_setuptools.prepare_metadata_for_build_editable)
build_wheel = _with_environment_torch(_setuptools.build_wheel)
build_editable = _with_environment_torch(_setuptools.build_editable)
build_sdist = _with_environment_torch(_setuptools.build_sdist)
