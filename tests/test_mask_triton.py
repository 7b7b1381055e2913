"""smoot::mask_triton against the reference. Without a GPU the kernels run in Triton's
interpreter on CPU tensors (tests/conftest.py sets TRITON_INTERPRET=1), so the CI checks the
kernels' logic; the tests marked `gpu` check full sizes and the CUDA kernel on a GPU."""
import os
import subprocess
import sys
import tempfile

import pytest
import torch
from cases import adversarial_cases, assert_matches_reference, digits_case, random_case

import smoot_ext

triton_mask = pytest.importorskip("smoot_ext.triton.mask")

# The interpreter runs the kernels in numpy, which warns on the NaN that NaN/inf inputs (and
# padding lanes) produce, as the GPU's arithmetic silently does.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# Large seed and offset: counters c = n // 4 beyond 2**32 use both counter words, and an offset
# that is not a multiple of 4 makes rows start inside a group of four counters.
SEED, OFFSET = 2**40 + 12345, 2**35 + 3


def check(case, *, fill="uniform", value=-1.5, seed=SEED, offset=OFFSET, **blocks):
    """Run the Triton op (or its launcher with explicit block sizes) and compare."""
    x, score, k = (case[n].to(DEVICE) for n in ("x", "score", "k"))
    kw = dict(abs=case.get("abs", True), fill=fill, value=value, seed=seed, offset=offset)
    if blocks:
        out, masked = triton_mask.launch(x, score, k, **kw, **blocks)
    else:
        out, masked = torch.ops.smoot.mask_triton(x, score, k, **kw)
    assert_matches_reference(out, masked, x, score, k, **kw)
    return masked


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(adversarial_cases()))
def test_adversarial(name, dtype):
    check(adversarial_cases(dtype)[name])


@pytest.mark.parametrize("abs", (True, False))
def test_random_rows_with_varying_k(abs):
    check(random_case(5, 3, 3, 300, abs=abs, seed=1))


def test_score_dtype_differs_from_x():
    check(random_case(3, 2, 2, 100, dtype=torch.bfloat16, score_dtype=torch.float32, seed=4))


def test_digits():
    check({n: v[:8] for n, v in digits_case().items()})


@pytest.mark.parametrize("fill", ("constant", "mean"))
@pytest.mark.parametrize("name", ("nan_in_x", "k_all", "three_levels_ties", "nan_inf_abs"))
def test_other_fills(name, fill):
    for dtype in (torch.float32, torch.bfloat16):
        check(adversarial_cases(dtype)[name], fill=fill)


@pytest.mark.parametrize("fill", ("uniform", "mean"))
@pytest.mark.parametrize("name", ("three_levels_ties", "all_equal", "nan_inf_signed",
                                  "many_zeros_signed_zero"))
def test_ties_across_tiles(name, fill):
    # Tiles of 16 units: the tie count carried from tile to tile decides which tied units go.
    case = dict(adversarial_cases()[name])
    case["x"], case["score"] = case["x"][:2, :, :70], case["score"][:2, :, :70]
    case["k"] = torch.tensor([9, 43])
    check(case, fill=fill, select_block=16, stats_block=16, fill_block=16)


@pytest.mark.parametrize("dtype, k, fill", [(torch.float32, 20011, "uniform"),
                                            (torch.float16, 49999, "mean"),
                                            (torch.bfloat16, 777, "mean")], ids=str)
def test_long_row(dtype, k, fill):
    # Select tiles of 4096 units, as on a GPU; fp16/bf16 scores of 50000 units have many ties.
    # Statistics in MAX_STAT_TILES parts of several blocks. (The reference's Philox is slow:
    # one uniform fill only.)
    case = random_case(1, 2, 1, 50000, dtype=dtype, k=k, seed=5)
    masked = check(case, fill=fill, select_block=4096, stats_block=512)
    assert masked.sum().item() == k


@pytest.mark.parametrize("seed, offset", [(1, 0), (-1, 7), (-2**63, 2**40 + 2), (2**63 - 1, 1)])
def test_seed_and_offset_select_the_stream(seed, offset):
    check(random_case(2, 2, 1, 50, k=25, seed=6), seed=seed, offset=offset)


def test_schema_matches_smoot_mask():
    ours = str(torch.ops.smoot.mask_triton.default._schema)
    theirs = str(torch.ops.smoot.mask.default._schema)
    assert ours.replace("mask_triton(", "mask(", 1) == theirs


def test_gradient_flows_to_kept_x_only():
    case = random_case(3, 2, 1, 40, seed=8)
    x = case["x"].to(DEVICE).requires_grad_()
    out, masked = torch.ops.smoot.mask_triton(x, case["score"].to(DEVICE), case["k"].to(DEVICE))
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    assert torch.equal(x.grad, torch.where(masked.unsqueeze(1), 0.0, weight))


def test_public_api_pixel_units():
    x = torch.randn(2, 3, 5, 7, device=DEVICE)
    score = torch.randn(2, 1, 5, 7, device=DEVICE)
    ours = smoot_ext.mask(x, score, 11, unit="pixel", seed=3, offset=8, backend="triton")
    ref = smoot_ext.mask(x, score, 11, unit="pixel", seed=3, offset=8, backend="reference")
    assert torch.equal(ours[1], ref[1]) and ours[1].shape == (2, 5, 7)
    assert torch.equal(ours[0], ref[0])


def test_compile_with_fake_shapes():
    case = random_case(2, 2, 1, 30, seed=9)
    args = [case[n].to(DEVICE) for n in ("x", "score", "k")]
    f = torch.compile(lambda x, s, k: torch.ops.smoot.mask_triton(x, s, k, seed=4), backend="eager")
    assert torch.equal(f(*args)[1], torch.ops.smoot.mask_triton(*args, seed=4)[1])


@pytest.mark.parametrize("tensors, options, error", [
    ({}, dict(fill="gaussian"), "fill: expected one of"),
    ({}, dict(offset=-4), "offset: expected >= 0"),
    (dict(k=torch.tensor([0, 31])), {}, r"k: expected 0 <= k\[b\] <= M = 30"),
    (dict(k=torch.tensor([-1, 3])), {}, r"k: expected 0 <= k\[b\] <= M = 30"),
    (dict(k=torch.tensor([1.0, 3.0])), {}, r"k: expected a \(2,\) int32 or int64 tensor"),
    (dict(k=torch.tensor([1, 2, 3])), {}, r"k: expected a \(2,\) int32 or int64 tensor"),
    (dict(score=torch.randn(2, 1, 29)), {}, r"score: expected a floating-point \(2, S >= 1, 30\)"),
    (dict(x=torch.zeros(2, 1, 30, dtype=torch.int32)), {}, "x: expected a floating-point"),
])
def test_bad_input_names_the_argument(tensors, options, error):
    args = dict(x=torch.randn(2, 1, 30), score=torch.randn(2, 1, 30), k=torch.tensor([3, 4]))
    args.update(tensors)
    with pytest.raises((ValueError, RuntimeError), match=error):
        torch.ops.smoot.mask_triton(*(args[n].to(DEVICE) for n in ("x", "score", "k")), **options)


def test_kernels_compile_for_h100_without_fma():
    """The interpreter accepts code that the compiler rejects: compile for sm_90 (no GPU
    needed), and check in the SASS that the uniform fill's multiply and add are not fused."""
    script = r"""
import collections, os, re, subprocess, sys, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from smoot_ext.triton import mask, update_k
target = GPUTarget("cuda", 90, 32)
def build(fn, sig, consts, **opts):
    sig = {**sig, **{n: "constexpr" for n in consts}}
    return triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=target,
                          options=opts)
build(mask._select_kernel, dict(score_ptr="*bf16", k_ptr="*i64", keys_ptr="*i32", mask_ptr="*i1",
      S="i32", M="i32"), dict(ABS=True, BLOCK=4096, BITS=8, SPREAD=8), num_warps=8)
for fill in (0, 2):
    build(mask._stats_kernel, dict(x_ptr="*fp16", mask_ptr="*i1", k_ptr="*i32", part_ptr="*fp64",
          G="i32", M="i32", span="i32", tiles="i32"), dict(FILL=fill, BLOCK=2048), num_warps=4)
fill = build(mask._fill_kernel, dict(x_ptr="*fp32", mask_ptr="*i1", k_ptr="*i64",
             part_ptr="*fp64", out_ptr="*fp32", BG="i32", G="i32", M="i32", tiles="i32",
             stat_tiles="i32", seed="i64", offset="i64", value="fp32"),
             dict(FILL=0, ROWS=1, GROUPS=512, STAT_TILES=32, ROUND_EACH=True), num_warps=4)
build(update_k._update_k_kernel, dict(logits_ptr="*fp32", masked_ptr="*fp32", k_ptr="*i64",
      k_new_ptr="*i64", delta_ptr="*fp32", C="i32", n_top="i32", alpha="fp32",
      one_minus_alpha="fp32", mu="fp32", kmin="i32", kmax="i32"), dict(BLOCK=16))
path = os.path.join(os.environ["TMP_DIR"], "fill.cubin")
open(path, "wb").write(fill.asm["cubin"])
nvdisasm = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
sass = subprocess.run([nvdisasm, path], capture_output=True, text=True, check=True).stdout
print(dict(collections.Counter(re.findall(r"\b(FFMA|FMUL|FADD)\b", sass))))
"""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    with tempfile.TemporaryDirectory() as tmp:
        env["TMP_DIR"] = tmp
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 0, run.stderr[-3000:]
    counts = eval(run.stdout.strip().splitlines()[-1])
    assert counts.get("FMUL", 0) > 0 and counts.get("FFMA", 0) == 0, counts


@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_full_size_on_gpu(dtype):
    check(random_case(64, 3, 3, 50176, dtype=dtype, seed=10))


@gpu
@pytest.mark.parametrize("fill", ("uniform", "constant", "mean"))
def test_same_as_cuda_kernel(fill):
    if not torch._C._dispatch_has_kernel_for_dispatch_key("smoot::mask", "CUDA"):
        pytest.skip("the CUDA kernel is not built")
    case = random_case(64, 3, 1, 50176, seed=11)
    args = [case[n].cuda() for n in ("x", "score", "k")]
    kw = dict(fill=fill, value=0.25, seed=SEED, offset=OFFSET)
    out, masked = torch.ops.smoot.mask_triton(*args, **kw)
    cuda_out, cuda_masked = torch.ops.smoot.mask(*args, **kw)
    assert torch.equal(masked, cuda_masked)
    if fill == "mean":
        torch.testing.assert_close(out, cuda_out, rtol=1e-5, atol=1e-6)
    else:  # at most 1 ulp apart
        diff = (out.view(torch.int32).long() - cuda_out.view(torch.int32).long()).abs()
        assert int(diff.max()) <= 1


@gpu
def test_compiled_graph_calls_the_kernels():
    case = random_case(4, 3, 1, 1000, seed=12)
    args = [case[n].cuda() for n in ("x", "score", "k")]
    f = torch.compile(lambda x, s, k: torch.ops.smoot.mask_triton(x, s, k, seed=4), fullgraph=True)
    assert all(torch.equal(a, b) for a, b in zip(f(*args), torch.ops.smoot.mask_triton(*args, seed=4)))
