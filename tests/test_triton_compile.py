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


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, TRITON_INTERPRET="0", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "smoot_ext.triton.compile_check", "--no-progress"]
    cmd += [a for arch in ARCHS for a in ("--arch", str(arch))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = json.loads(proc.stdout)
    return ([e for e in entries if not e.get("control")], {(e["arch"], e["case"]): e for e in entries
                                                            if e.get("control")})


def test_every_kernel_and_dtype_compiles_for_each_arch(report):
    kernels, _ = report
    seen = collections.defaultdict(set)
    for e in kernels:
        seen[e["arch"]].add(e["kernel"])
    assert set(seen) == set(ARCHS)
    for arch in ARCHS:
        assert {"_select_kernel", "_fill_kernel", UPDATE_K} <= seen[arch]
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            cases = {e["case"] for e in kernels if e["arch"] == arch and e["kernel"] == UPDATE_K}
            assert any(dtype in c.split()[0] for c in cases), (arch, dtype)
            cases = {e["case"] for e in kernels if e["arch"] == arch and e["kernel"] == "_fill_kernel"}
            assert any(dtype in c.split()[0] for c in cases), (arch, dtype)


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
    # SPEC step 6: lo + r * (hi - lo) with the product rounded on its own; the fill kernel's
    # inline mul.rn keeps ptxas from fusing it (SASS, where a late fusion would show).
    kernels, _ = report
    fills = [e for e in kernels if e["kernel"] == "_fill_kernel" and e["case"].endswith("uniform")]
    assert {e["arch"] for e in fills} == set(ARCHS)
    for e in fills:
        assert e["sass"]["FMUL"] > 0 and e["sass"]["FFMA"] == 0, (e["arch"], e["case"], e["sass"])
