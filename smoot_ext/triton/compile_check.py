"""The Triton kernels compiled for a GPU architecture on a machine without one, as real launches
specialise them, and what their PTX and ptxas say (tests/test_triton_compile.py asserts on it).

Each launch function (``mask.launch``, ``update_k.launch``) runs on empty CPU tensors with
``wrap_triton`` swapped for a recorder, so the kernels, arguments and options are exactly a
launch's; Triton's own binder then specialises them (16-byte-aligned pointers, integers equal
to 1 as constants, divisibility by 16) and ``triton.compile`` builds them for the target.

    TRITON_INTERPRET=0 python -m smoot_ext.triton.compile_check --arch 90 --arch 80 > report.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile

import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas
from triton.compiler.compiler import ASTSource, make_backend
from triton.language.extra import libdevice
from triton.runtime.jit import create_function_from_signature

from . import mask, update_k

# Shared memory one block may opt in to (CUDA programming guide, compute capabilities table).
SHARED_LIMIT = {80: 163 * 1024, 86: 99 * 1024, 89: 99 * 1024, 90: 227 * 1024}
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# PTX instructions that tell approximate or fused arithmetic, and vectorised loads.
PATTERNS = {"ex2.approx": r"\bex2\.approx", "div.full": r"\bdiv\.full", "div.approx": r"\bdiv\.approx",
            "rcp.approx": r"\brcp\.approx", "fma": r"\bfma\.r",
            "vector loads": r"\bld\.global(?:\.[a-z0-9]+)*\.v[248]\."}


@triton.jit
def _exp_probe(x_ptr, y_ptr):
    """libdevice expf alone, one element per thread: the PTX one exp inlines."""
    i = tl.arange(0, 32)
    tl.store(y_ptr + i, libdevice.exp(tl.load(x_ptr + i)))


def mask_launches() -> list[tuple[str, tuple, dict]]:
    """(case, args, kwargs) of mask.launch: every dtype with S = G = 1 (size-1 constants) on
    the short path at (256, 1, 784) and the split path at (64, 1, 50176); float32 with
    S = G = 3 at the paper's other shapes, and every fill on the split path."""
    cases = []
    for dtype in DTYPES:
        cases.append((f"{dtype} (256, 1, 784) S=1 uniform", (256, 1, 1, 784, dtype), {"fill": "uniform"}))
        cases.append((f"{dtype} (64, 1, 50176) S=1 uniform", (64, 1, 1, 50176, dtype), {"fill": "uniform"}))
    cases.append(("float32 (256, 3, 1024) S=3 uniform", (256, 3, 3, 1024, torch.float32), {"fill": "uniform"}))
    for fill in ("uniform", "mean", "constant"):
        cases.append((f"float32 (64, 3, 50176) S=3 {fill}", (64, 3, 3, 50176, torch.float32), {"fill": fill}))
    out = []
    for name, (B, G, S, M, dtype), kw in cases:
        x, score = torch.empty(B, G, M, dtype=dtype), torch.empty(B, S, M, dtype=dtype)
        out.append((name, (x, score, torch.zeros(B, dtype=torch.int64)), kw))
    return out


def update_k_launches() -> list[tuple[str, tuple, dict]]:
    """(case, args, kwargs) of update_k.launch: every logits dtype at C = 10, and C = 1000,
    int32 k and trunc rounding in float32."""
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=156, kmax=627)
    out = []
    for dtype in DTYPES:
        logits = torch.empty(256, 10, dtype=dtype)
        out.append((f"{dtype} C=10", (logits, logits, torch.zeros(256, dtype=torch.int64)), kw))
    logits = torch.empty(64, 1000)
    out.append(("float32 C=1000 int32 k trunc", (logits, logits, torch.zeros(64, dtype=torch.int32)),
                dict(kw, rounding="trunc")))
    return out


@contextlib.contextmanager
def recorded(module):
    """Within: ``module``'s launches append (kernel, args, kwargs) to the list given, unlaunched."""
    calls = []

    class Recorder:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            return lambda *args, **kwargs: calls.append((self.kernel, args, kwargs))

    saved = module.wrap_triton
    module.wrap_triton = Recorder
    try:
        yield calls
    finally:
        module.wrap_triton = saved


def compile_call(kernel, args, kwargs, arch: int):
    """``kernel`` compiled for sm_<arch> as a launch with these arguments would compile it."""
    target = GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, specialization,
                                                              options)
    return triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target,
                          options=options.__dict__)


def ptxas_report(ptx: str, arch: int) -> dict:
    """Registers and spill bytes from ``ptxas -v`` (the ptxas inside the triton wheel)."""
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(ptx)
        f.flush()
        proc = subprocess.run([get_ptxas(arch).path, "-v", f"--gpu-name=sm_{arch}a" if arch >= 90
                               else f"--gpu-name=sm_{arch}", f.name, "-o", "/dev/null"],
                              capture_output=True, text=True, check=True)
    log = proc.stderr
    stores, loads = map(int, re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log).groups())
    return {"registers": int(re.search(r"Used (\d+) registers", log).group(1)),
            "spill_stores": stores, "spill_loads": loads}


def sass_counts(cubin: bytes) -> dict:
    """FFMA / FMUL / FADD in the SASS (nvdisasm, inside the triton wheel)."""
    nvdisasm = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
    with tempfile.NamedTemporaryFile("wb", suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        sass = subprocess.run([nvdisasm, f.name], capture_output=True, text=True, check=True).stdout
    return {op: len(re.findall(rf"\b{op}\b", sass)) for op in ("FFMA", "FMUL", "FADD")}


def describe(compiled, arch: int) -> dict:
    ptx = compiled.asm["ptx"]
    return {"shared": compiled.metadata.shared, "shared_limit": SHARED_LIMIT[arch],
            "num_warps": compiled.metadata.num_warps, "fp_fusion": compiled.metadata.enable_fp_fusion,
            "reflect_ftz": compiled.metadata.enable_reflect_ftz, **ptxas_report(ptx, arch),
            "ptx": {name: len(re.findall(p, ptx)) for name, p in PATTERNS.items()},
            "sass": sass_counts(compiled.asm["cubin"]),
            "ttir_libdevice_exp": "__nv_expf" in compiled.asm["ttir"],
            "ttir_math_exp": bool(re.search(r"\bmath\.exp2?\b", compiled.asm["ttir"]))}


def report(archs: list[int], progress: bool = True) -> list[dict]:
    """One entry per distinct compiled kernel and architecture (launches that specialise alike
    compile once), plus the exp probe and update_k compiled with contraction as a control."""
    from tqdm import tqdm

    jobs = []
    for module, launches in ((mask, mask_launches()), (update_k, update_k_launches())):
        for case, args, kwargs in launches:
            with recorded(module) as calls:
                module.launch(*args, **kwargs)
            jobs += [(case, kernel, kargs, kkwargs) for kernel, kargs, kkwargs in calls]
    probe = torch.empty(32)
    entries, seen = [], set()
    for arch in tqdm(archs, desc="archs", disable=not progress):
        for case, kernel, args, kwargs in tqdm(jobs, desc=f"sm_{arch}", leave=False, disable=not progress):
            compiled = compile_call(kernel, args, kwargs, arch)
            if (arch, compiled.hash) in seen:
                continue
            seen.add((arch, compiled.hash))
            entries.append({"kernel": kernel.__name__, "arch": arch, "case": case,
                            **describe(compiled, arch)})
        controls = [("_exp_probe", _exp_probe, (probe, probe), dict(update_k.LAUNCH_OPTIONS, num_warps=1))]
        case, args, kwargs = update_k_launches()[2]
        with recorded(update_k) as calls:
            update_k.launch(*args, **kwargs)
        kernel, kargs, kkwargs = calls[0]
        controls.append(("update_k with contraction", kernel, kargs, dict(kkwargs, enable_fp_fusion=True)))
        for case, kernel, args, kwargs in controls:
            entries.append({"kernel": kernel.__name__, "arch": arch, "case": case, "control": True,
                            **describe(compile_call(kernel, args, kwargs, arch), arch)})
    return entries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, action="append", choices=sorted(SHARED_LIMIT),
                        help="compute capability times 10, e.g. 90 (repeatable; default 90 and 80)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if mask.INTERPRETED:
        parser.error("TRITON_INTERPRET is set: the kernels are the interpreter's, not compilable")
    json.dump(report(args.arch or [90, 80], progress=not args.no_progress), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
