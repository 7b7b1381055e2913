"""Where a result was made: the machine, the versions and the commit, recorded with every
benchmark row and score file, since float rounding in the CPU's kernels differs between CPU
models and torch versions (a rerun is bit-identical only on the same ones)."""
from __future__ import annotations

import os
import platform
import subprocess

import torch

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit(root: str = PACKAGE_ROOT) -> str:
    """The short commit of the checkout at ``root`` ("-dirty" with uncommitted changes to tracked
    files), or "unknown" where ``root`` is not a checkout's top (an installed wheel)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        if os.path.realpath(git("rev-parse", "--show-toplevel")) != os.path.realpath(root):
            return "unknown"
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def machine(root: str = PACKAGE_ROOT) -> dict:
    """The commit, CPU model and count, GPU, and the Python, torch, CUDA and smoot_ext versions."""
    import smoot_ext

    return {
        "commit": commit(root),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "smoot_ext": smoot_ext.__version__,
    }
