"""Benchmark results recorded, not commented: each run appends its rows, with the machine, the
versions, the commit and the date, to ``benchmarks/results/<name>.csv`` (as Liger-Kernel's
``all_benchmark_data.csv``), so numbers can be compared across machines and commits."""
from __future__ import annotations

import csv
import datetime
import functools
import os
import platform
import subprocess

import torch

import smoot_ext

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    root = os.path.dirname(RESULTS)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


@functools.cache
def environment() -> dict:
    """Where and with what a benchmark ran: the columns every results row starts with."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "smoot_ext": smoot_ext.__version__,
    }


def append(name: str, rows: list[dict], folder: str = RESULTS) -> str:
    """Appends ``rows`` (with ``environment()`` in front) to ``<folder>/<name>.csv``; returns the
    path. A file whose columns differ is rewritten with the union of both."""
    if not rows:
        return ""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.csv")
    new = [{**environment(), **row} for row in rows]
    fields = list(dict.fromkeys(key for row in new for key in row))
    old: list[dict] | None = [] if not os.path.exists(path) else None
    if old is None:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != fields:
                old = list(reader)
                fields = list(dict.fromkeys((reader.fieldnames or []) + fields))
    if old is not None:  # a new file, or new columns: (re)write the header and the old rows
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(old)
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, fieldnames=fields, restval="").writerows(new)
    return path
