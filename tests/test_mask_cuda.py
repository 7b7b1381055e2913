"""The CUDA C++ kernel of smoot::mask against the reference (docs/SPEC.md) and the CPU kernel.

Needs a GPU and an extension built with CUDA; otherwise every GPU test skips with the reason.
Both launch plans of csrc/cuda/mask.cu run on every case: SMOOT_CUDA_MASK_PATH=row (one block
per row) and =split (several blocks per row). Tests named *large* or *graph* are left out of
scripts/memcheck_cuda.sh.
"""
import pathlib

import pytest
import torch
from cases import (
    FLOAT_DTYPES,
    adversarial_cases,
    assert_matches_reference,
    digits_case,
    needs_cuda_kernel,
    random_case,
    ulp_distance,
)

import smoot_ext

_has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key
needs_gpu = needs_cuda_kernel("mask")

PATHS = ("row", "split")
FILLS = ("uniform", "constant", "mean")


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    monkeypatch.setenv("SMOOT_CUDA_MASK_PATH", request.param)
    return request.param


def cuda_mask(case, **kw):
    """torch.ops.smoot.mask on CUDA copies of a case's CPU tensors, synchronised."""
    x, score, k = (case[n].cuda() for n in ("x", "score", "k"))
    out, masked = torch.ops.smoot.mask(x, score, k, abs=case.get("abs", True), **kw)
    torch.cuda.synchronize()
    return out, masked


def check(case, **kw):
    out, masked = cuda_mask(case, **kw)
    assert out.is_cuda and masked.is_cuda
    assert_matches_reference(out, masked, case["x"], case["score"], case["k"],
                             abs=case.get("abs", True), **kw)


# Shapes (B, G, S, M): M not a multiple of 4, one unit, more units than a block has threads,
# rows of several split chunks, G = 0 (mask only).
SHAPES = [(1, 1, 1, 1), (3, 1, 1, 7), (5, 3, 3, 100), (4, 2, 1, 1025), (2, 3, 3, 4099),
          (3, 1, 2, 9000), (2, 0, 1, 50)]


@needs_gpu
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("fill", FILLS)
def test_random_fp32(path, shape, fill):
    B, G, S, M = shape
    for i, (seed, offset) in enumerate([(0, 0), (-12345678901, 1), (2**40 + 3, 7)]):
        case = random_case(B, G, S, M, seed=i, abs=i != 1)
        check(case, fill=fill, value=-1.5, seed=seed, offset=offset)


@needs_gpu
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("score_dtype", [None, torch.float32, torch.float16, torch.float64],
                         ids=lambda d: "same" if d is None else str(d))
def test_dtypes(path, dtype, score_dtype):
    case = random_case(4, 3, 3, 2050, dtype=dtype, score_dtype=score_dtype, seed=3)
    for fill in FILLS:
        check(case, fill=fill, value=0.3, seed=5, offset=2)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", sorted(adversarial_cases()))
def test_adversarial(path, dtype, name):
    case = adversarial_cases(dtype)[name]
    for fill in FILLS:
        check(case, fill=fill, seed=9, offset=1)


@needs_gpu
def test_digits(path):
    check(digits_case(), seed=4)


@needs_gpu
def test_k_varies_per_row_int32(path):
    case = random_case(16, 3, 1, 3000, seed=11)
    case["k"] = torch.arange(16, dtype=torch.int32) * 200
    check(case, seed=2, offset=5)


@needs_gpu
def test_heavy_ties_across_split_chunks(path):
    # Two score levels over long rows: the k-th key is shared by thousands of units spread over
    # several chunks, so the tie ranks must carry across blocks.
    g = torch.Generator().manual_seed(0)
    B, M = 3, 40000
    score = torch.randint(0, 2, (B, 1, M), generator=g).float()
    x = torch.randn(B, 3, M, generator=g)
    k = torch.tensor([M // 3, M // 2 + 17, M - 1])
    check(dict(x=x, score=score, k=k), seed=1, offset=3)


@needs_gpu
def test_large_b1_m150528_g3():
    # One 224*224*3 image per pixel... three times over: the split plan must cover the row.
    case = random_case(1, 3, 3, 150528, seed=21, k=75264)
    check(case, seed=123, offset=11)
    check(case, fill="mean")


@needs_gpu
def test_large_rows_both_plans(path):
    case = random_case(3, 3, 3, 50176, seed=22)
    check(case, seed=8, offset=0)


@needs_gpu
def test_row_plan_refuses_rows_too_long_for_shared_memory(monkeypatch):
    monkeypatch.setenv("SMOOT_CUDA_MASK_PATH", "row")
    case = random_case(1, 1, 1, 1 << 20, k=5)
    with pytest.raises(ValueError, match="shared memory"):
        cuda_mask(case)


@needs_gpu
def test_bad_plan_name_is_an_error(monkeypatch):
    monkeypatch.setenv("SMOOT_CUDA_MASK_PATH", "fast")
    with pytest.raises(ValueError, match="SMOOT_CUDA_MASK_PATH"):
        cuda_mask(random_case(1, 1, 1, 8, k=2))


@needs_gpu
def test_noncontiguous_inputs_and_side_stream(path):
    case = random_case(4, 3, 3, 600, seed=13)
    x = case["x"].cuda().transpose(0, 1).contiguous().transpose(0, 1)   # (B, G, M), strided
    s = case["score"].cuda()
    score = torch.stack([s, s], dim=-1)[..., 0]                          # strided view of s
    assert not x.is_contiguous() and not score.is_contiguous()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out, masked = torch.ops.smoot.mask(x, score, case["k"].cuda(), seed=6, offset=2)
    stream.synchronize()
    assert_matches_reference(out, masked, case["x"], case["score"], case["k"], seed=6, offset=2)


@needs_gpu
@pytest.mark.parametrize("shape", [(8, 3, 3, 3000), (2, 3, 1, 20000)], ids=["short", "long"])
def test_graph_capture_then_replay(path, shape):
    B, G, S, M = shape
    first, second = random_case(*shape, seed=1), random_case(*shape, seed=2)
    x, score, k = (first[n].cuda() for n in ("x", "score", "k"))
    kw = dict(seed=77, offset=3)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up outside the capture, as torch.cuda.graphs advises
        torch.ops.smoot.mask(x, score, k, **kw)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, masked = torch.ops.smoot.mask(x, score, k, **kw)
    for case in (first, second):  # replays read the static inputs' current contents
        x.copy_(case["x"])
        score.copy_(case["score"])
        k.copy_(case["k"])
        graph.replay()
        torch.cuda.synchronize()
        assert_matches_reference(out, masked, case["x"], case["score"], case["k"], **kw)


@needs_gpu
@pytest.mark.skipif(not _has_kernel("smoot::mask", "CPU"), reason="C++ CPU kernel not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_same_as_cpu_kernel(path, dtype):
    case = random_case(6, 3, 3, 5000, dtype=dtype, seed=17)
    case["score"] = (case["score"].float() * 4).round().to(dtype) / 4  # many ties
    for fill in FILLS:
        kw = dict(fill=fill, value=2.0, seed=31, offset=9)
        out, masked = cuda_mask(case, **kw)
        cpu_out, cpu_masked = torch.ops.smoot.mask(case["x"], case["score"], case["k"], **kw)
        assert torch.equal(masked.cpu(), cpu_masked)
        kept = ~cpu_masked.unsqueeze(1).expand_as(cpu_out)
        assert torch.equal(out.cpu()[kept], cpu_out[kept])
        if fill == "mean":
            torch.testing.assert_close(out.cpu()[~kept], cpu_out[~kept], rtol=1e-5, atol=1e-6)
        else:
            assert int(ulp_distance(out.cpu()[~kept], cpu_out[~kept]).max()) <= 1


@needs_gpu
def test_public_api_picks_cuda():
    x = torch.randn(2, 3, 8, 8, device="cuda")
    grad = torch.randn_like(x)
    assert "cuda" in smoot_ext.available_backends("cuda")
    out, masked = smoot_ext.mask(x, grad, 20, unit="pixel", seed=1, backend="cuda")
    assert masked.shape == (2, 8, 8) and bool((masked.flatten(1).sum(1) == 20).all())
    assert_matches_reference(out.view(2, 3, 64).cpu(), masked.view(2, 64).cpu(), x.view(2, 3, 64).cpu(),
                             grad.view(2, 3, 64).cpu(), torch.tensor([20, 20]), seed=1)


@pytest.mark.parametrize("bad, match", [
    (dict(x=torch.zeros(2, 3)), "x: expected a 3-D"),
    (dict(score=torch.zeros(2, 1, 9)), "score: expected shape"),
    (dict(k=torch.zeros(3, dtype=torch.int64)), "k: expected shape"),
    (dict(k=torch.zeros(2)), "k: expected dtype"),
    (dict(x=torch.zeros(2, 1, 8, dtype=torch.int32)), "x: expected a floating-point"),
])
@needs_gpu
def test_errors_name_the_argument(bad, match):
    args = dict(x=torch.zeros(2, 1, 8), score=torch.zeros(2, 1, 8), k=torch.zeros(2, dtype=torch.int64))
    args.update(bad)
    with pytest.raises((ValueError, TypeError, RuntimeError), match=match):
        torch.ops.smoot.mask(*(args[n].cuda() for n in ("x", "score", "k")))
    with pytest.raises(ValueError, match="fill"):
        torch.ops.smoot.mask(torch.zeros(1, 1, 4, device="cuda"), torch.zeros(1, 1, 4, device="cuda"),
                             torch.zeros(1, dtype=torch.int64, device="cuda"), fill="zeros")
    with pytest.raises(ValueError, match="k: expected a tensor on"):
        torch.ops.smoot.mask(torch.zeros(1, 1, 4, device="cuda"), torch.zeros(1, 1, 4, device="cuda"),
                             torch.zeros(1, dtype=torch.int64))


def _library_has_cuda_kernels() -> bool:
    """Whether the built smoot_ext._C contains csrc/cuda (its error prefix is in the binary)."""
    lib = pathlib.Path(smoot_ext._C.__file__)
    return b"smoot::mask (CUDA kernel)" in lib.read_bytes()


@pytest.mark.skipif(torch.version.cuda is None, reason="torch was built without CUDA")
def test_cuda_kernels_registered_when_built():
    # Runs without a GPU too: registration happens when the library loads.
    if not _library_has_cuda_kernels():
        pytest.skip("smoot_ext._C was built without its CUDA kernels (SMOOT_SKIP_CUDA or no nvcc)")
    assert _has_kernel("smoot::mask", "CUDA")
    assert _has_kernel("smoot::update_k", "CUDA")

