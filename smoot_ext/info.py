"""What smoot_ext was built with, what runs here, and why a backend is missing.

    python -m smoot_ext.info          # a readable summary
    python -m smoot_ext.info --json   # the same as JSON (``smoot_ext.build_info()``)
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys

import torch

from . import _C, ops
from ._build import built_with

OPS = ("mask", "update_k")
DEVICES = ("cpu", "cuda")


def _why_missing(backend: str, device: str, build: dict) -> str:
    if backend == "cpu":
        return "runs on CPU tensors only" if device != "cpu" else "not registered by _C"
    if backend == "cuda":
        if device != "cuda":
            return "runs on CUDA tensors only"
        if not build["cuda_kernels"]:
            return f"not built: {build['why_no_cuda']}"
        if torch.version.cuda is None:
            return f"the running torch {torch.__version__} has no CUDA"
        return "no CUDA GPU visible (torch.cuda.is_available() is False)"
    # triton
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if device == "cuda":
        return "no CUDA GPU visible (torch.cuda.is_available() is False)"
    return "no GPU: Triton runs on CPU tensors only in its interpreter (TRITON_INTERPRET=1 before import)"


def build_info() -> dict:
    """Version; the build's torch, CUDA and archs beside the running ones; for each op and device
    the backends available and why each other one is not; the CPU row-loop ISA."""
    build = dict(built_with())
    gpus = [{"name": torch.cuda.get_device_name(i),
             "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}
            for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    backends = {}
    for op in OPS:
        for device in DEVICES:
            found = ops.available_backends(device, op)
            missing = {b: _why_missing(b, device, build) for b in ops.BACKENDS if b != "auto" and b not in found}
            backends[f"{op}/{device}"] = {"available": found, "missing": missing,
                                          "device_present": device == "cpu" or bool(gpus)}
    try:
        isa = _C.cpu_isa()
    except ValueError as e:
        isa = f"error: {e}"
    triton = importlib.util.find_spec("triton")
    return {
        "smoot_ext": importlib.metadata.version("smoot_ext"),
        "built": build,
        "running": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "gpus": gpus,
            "triton": importlib.metadata.version("triton") if triton else None,
            "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET"),
        },
        "cpu_isa": isa,
        "cpu_threads": torch.get_num_threads(),
        "backends": backends,
    }


def format_info(info: dict) -> str:
    b, r = info["built"], info["running"]
    cuda_built = (f"yes (CUDA {b['torch_cuda']}, archs {b['arch_list']}, toolkit {b['cuda_home']})"
                  if b["cuda_kernels"] else f"no ({b['why_no_cuda']})")
    gpus = ", ".join(f"{g['name']} (sm_{g['capability'].replace('.', '')})" for g in r["gpus"]) or "none"
    lines = [
        f"smoot_ext {info['smoot_ext']}",
        f"  built against torch {b['torch']}; CUDA kernels: {cuda_built}",
        f"  running torch {r['torch']} (CUDA {r['torch_cuda']}), python {r['python']}",
        f"  GPUs: {gpus}",
        f"  triton: {r['triton'] or 'not installed'}; TRITON_INTERPRET={r['TRITON_INTERPRET']}",
        f"  CPU mask row loops: {info['cpu_isa']}; torch threads: {info['cpu_threads']}",
        "backends (op/device: available, fastest first; missing: why)",
    ]
    for key, entry in info["backends"].items():
        absent = "" if entry["device_present"] else "   (but no such device is visible here)"
        lines.append(f"  {key:16s} {', '.join(entry['available'])}{absent}")
        lines += [f"  {'':16s}   no {name}: {why}" for name, why in entry["missing"].items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smoot_ext.info", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the dict of smoot_ext.build_info() as JSON")
    args = parser.parse_args(argv)
    info = build_info()
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
