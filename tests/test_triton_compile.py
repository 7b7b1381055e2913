"""The Triton kernels compiled for sm_90 and sm_80 without a GPU (smoot_ext/triton/compile_check.py),
at the specialisations real launches make: no register spills, shared memory within each
architecture's per-block limit, and update_k's arithmetic exact (libdevice expf, round-to-nearest
division, no contraction), read from the TTIR and PTX.

The kernels compile in one subprocess without TRITON_INTERPRET (this session's kernels are the
interpreter's); its report is shared by every test of the file.
"""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton.backends.nvidia.compiler", reason="triton without its NVIDIA backend")
ROOT = Path(__file__).resolve().parents[1]
ARCHS = (90, 80)
UPDATE_K = "_update_k_kernel"
MASK_KERNELS = ("_short_kernel", "_keys_kernel", "_pass_kernel", "_mask_kernel", "_reduce_kernel", "_fill_kernel")


@pytest.fixture(scope="module")
def report():
    # One subprocess per architecture, side by side: the compiles take most of this file's time.
    env = dict(os.environ, TRITON_INTERPRET="0", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-m", "smoot_ext.triton.compile_check", "--no-progress",
                               "--arch", str(arch)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT) for arch in ARCHS]
    entries = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        entries += json.loads(out)
    return ([e for e in entries if not e.get("control")], {(e["arch"], e["case"]): e for e in entries
                                                            if e.get("control")})


def test_every_kernel_and_dtype_compiles_for_each_arch(report):
    kernels, _ = report
    seen = collections.defaultdict(set)
    for e in kernels:
        seen[e["arch"]].add(e["kernel"])
    assert set(seen) == set(ARCHS)
    for arch in ARCHS:
        assert set(MASK_KERNELS) | {UPDATE_K} <= seen[arch]
        for kernel in (UPDATE_K, "_short_kernel", "_keys_kernel", "_fill_kernel"):
            cases = {e["case"].split()[0] for e in kernels if e["arch"] == arch and e["kernel"] == kernel}
            assert {f"torch.{d}" for d in ("float16", "bfloat16", "float32", "float64")} <= cases, (arch, kernel)


def test_no_register_spills(report):
    kernels, _ = report
    spilled = [(e["arch"], e["kernel"], e["case"], e["spill_stores"], e["spill_loads"])
               for e in kernels if e["spill_stores"] or e["spill_loads"]]
    assert not spilled


def test_shared_memory_within_the_arch_limit(report):
    kernels, _ = report
    over = [(e["arch"], e["kernel"], e["case"], e["shared"]) for e in kernels
            if not 0 <= e["shared"] <= e["shared_limit"]]
    assert not over
    assert {e["shared_limit"] for e in kernels if e["arch"] == 80} == {163 * 1024}


def exp_only_arithmetic(e: dict, probe: dict) -> list[str]:
    """What in a compiled update_k is not docs/SPEC.md's exact float32 arithmetic: every ex2.approx
    and fma must be one of libdevice expf's own (the probe's count per exp), none a bare tl.exp or
    a contraction; no approximate division or reciprocal."""
    wrong = [name for name in ("div.full", "div.approx", "rcp.approx") if e["ptx"][name]]
    if not e["ttir_libdevice_exp"] or e["ttir_math_exp"]:
        wrong.append("exp is not libdevice's __nv_expf")
    exps = e["ptx"]["ex2.approx"] // probe["ptx"]["ex2.approx"]
    if exps == 0 or e["ptx"]["fma"] != exps * probe["ptx"]["fma"]:
        wrong.append(f"{e['ptx']['fma']} fma for {exps} inlined expf ({probe['ptx']['fma']} each)")
    return wrong


@pytest.mark.parametrize("arch", ARCHS)
def test_update_k_arithmetic_is_exact(report, arch):
    kernels, controls = report
    probe = controls[(arch, "_exp_probe")]
    assert probe["ptx"]["ex2.approx"] == 1 and probe["ptx"]["fma"] > 0
    entries = [e for e in kernels if e["arch"] == arch and e["kernel"] == UPDATE_K]
    assert entries
    for e in entries:
        assert not e["fp_fusion"] and not e["reflect_ftz"], e["case"]
        assert exp_only_arithmetic(e, probe) == [], e["case"]
    # The check sees a contraction: the same kernel compiled with fusion on fails it.
    fused = controls[(arch, "update_k with contraction")]
    assert fused["fp_fusion"] and exp_only_arithmetic(fused, probe)


def test_uniform_fill_rounds_product_and_sum_apart(report):
    # SPEC step 6: lo + r * (hi - lo) with the product rounded on its own; the fill kernels'
    # inline mul.rn keeps ptxas from fusing it (SASS, where a late fusion would show).
    kernels, _ = report
    fills = [e for e in kernels if e["kernel"] in ("_short_kernel", "_fill_kernel") and e["case"].endswith("uniform")]
    assert {e["kernel"] for e in fills} == {"_short_kernel", "_fill_kernel"}
    assert {e["arch"] for e in fills} == set(ARCHS)
    for e in fills:
        assert e["sass"]["FMUL"] > 0 and e["sass"]["FFMA"] == 0, (e["arch"], e["case"], e["sass"])


def test_mask_kernels_load_vectors(report):
    # 16-byte-aligned rows of M divisible by 16 (the paper's shapes): every kernel that streams a
    # row loads several elements per instruction.
    kernels, _ = report
    streaming = [e for e in kernels if e["kernel"] in MASK_KERNELS and e["kernel"] != "_reduce_kernel"]
    assert streaming
    scalar = [(e["arch"], e["kernel"], e["case"]) for e in streaming if not e["ptx"]["vector loads"]]
    assert not scalar
