"""smoot::mask on every backend against the reference (docs/SPEC.md).

Masks and kept values must be bit-identical to smoot_ext.reference, uniform/constant fills within
1 ulp, mean fills within 1e-5 (cases.assert_matches_reference). Each test names the backends it
runs on (cases.backends); a backend that cannot run here skips with the reason. Knobs run every
setting: the CPU kernel's baseline and AVX2 row loops (SMOOT_CPU_ISA; both baseline on a CPU
without AVX2), the CUDA kernel's "row" and "split" launch plans (SMOOT_CUDA_MASK_PATH). Without a
GPU the Triton kernels run in Triton's interpreter on CPU tensors (tests/conftest.py), which is
slow: the largest cases run for Triton on a GPU only, as each such test says. Tests named *large*
or *graph* are left out of scripts/memcheck_cuda.sh.
"""

import pytest
import torch
from cases import (
    ALL,
    FLOAT_DTYPES,
    KERNELS,
    adversarial_cases,
    assert_matches_reference,
    backends,
    check,
    digits_case,
    random_case,
    ulp_distance,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smoot_ext
from smoot_ext.checks import FILLS

# The interpreter runs the Triton kernels in numpy, which warns on the NaN that NaN/inf inputs
# (and padding lanes) produce, as a GPU's arithmetic silently does.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

KERNEL_PARAMS = backends("mask", KERNELS)
ALL_PARAMS = backends("mask", ALL)
# The C++ kernels only: cases too many or too large for Triton's interpreter (on a GPU,
# test_full_size_on_gpu and test_same_as_cuda_kernel give Triton its full sizes).
NATIVE_PARAMS = backends("mask", ("cpu", "cuda"))
TRITON_PARAMS = backends("mask", ("triton",))
CUDA_PARAMS = backends("mask", ("cuda",))
CPU_PARAMS = backends("mask", ("cpu",))
kernels = pytest.mark.parametrize("op", KERNEL_PARAMS, indirect=True)
every_backend = pytest.mark.parametrize("op", ALL_PARAMS, indirect=True)
native = pytest.mark.parametrize("op", NATIVE_PARAMS, indirect=True)
# Large seed and offset: counters c = n // 4 beyond 2**32 use both counter words, and an offset
# that is not a multiple of 4 makes rows start inside a group of four counters.
SEED, OFFSET = 2**40 + 12345, 2**35 + 3


def gpu_only_for_triton(op, why="too slow for Triton's interpreter"):
    if op.interpreted:
        pytest.skip(f"{why}: runs for Triton on a GPU")


# ------------------------------------------------------------------------ random and real inputs

@native
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the knob is per test
@given(B=st.integers(0, 64), G=st.integers(1, 4), S=st.integers(1, 4), M=st.integers(1, 3000),
       dtype=st.sampled_from(FLOAT_DTYPES), fill=st.sampled_from(FILLS), abs_=st.booleans(),
       seed=st.integers(-2**63, 2**63 - 1), offset=st.integers(0, 2**40), case_seed=st.integers(0, 99))
def test_random_small(op, B, G, S, M, dtype, fill, abs_, seed, offset, case_seed):
    case = random_case(B, G, S, M, dtype=dtype, seed=case_seed, abs=abs_)
    check(op, case, fill=fill, value=-0.75, seed=seed, offset=offset)


# M not a multiple of 4, one unit, more units than a CUDA block has threads, rows of several
# split chunks, G = 0 (mask only).
SHAPES = [(1, 1, 1, 1), (3, 1, 1, 7), (5, 3, 3, 100), (4, 2, 1, 1025), (2, 3, 3, 4099),
          (3, 1, 2, 9000), (2, 0, 1, 50)]


@native
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("fill", FILLS)
def test_random_fp32(op, shape, fill):
    B, G, S, M = shape
    for i, (seed, offset) in enumerate([(0, 0), (-12345678901, 1), (2**40 + 3, 7)]):
        case = random_case(B, G, S, M, seed=i, abs=i != 1)
        check(op, case, fill=fill, value=-1.5, seed=seed, offset=offset)


@kernels
@pytest.mark.parametrize("abs_", (True, False))
def test_random_rows_with_varying_k(op, abs_):
    check(op, random_case(5, 3, 3, 300, abs=abs_, seed=1), value=-1.5, seed=SEED, offset=OFFSET)


@native
@pytest.mark.parametrize("shape", [(2, 1, 1, 70000), (1, 3, 3, 50176), (1, 4, 2, 65537)],
                         ids=lambda s: "x".join(map(str, s)))
def test_random_large(op, shape):
    B, G, S, M = shape
    case = random_case(B, G, S, M, seed=M)
    check(op, case, seed=12345, offset=3)
    check(op, case, fill="mean")


@native
def test_large_b1_m150528_g3(op):
    # One 224*224*3 image per pixel... three times over: the split plan must cover the row.
    case = random_case(1, 3, 3, 150528, seed=21, k=75264)
    check(op, case, seed=123, offset=11)
    check(op, case, fill="mean")


@kernels
@pytest.mark.triton_blocks(chunk=4096)
@pytest.mark.parametrize("dtype, k, fill", [(torch.float32, 20011, "uniform"),
                                            (torch.float16, 49999, "mean"),
                                            (torch.bfloat16, 777, "mean")], ids=str)
def test_long_row(op, dtype, k, fill):
    # Triton: chunks of 4096 units, as on a GPU (13 programs a row, each with its own partial
    # statistics); fp16/bf16 scores of 50000 units have many ties. (The reference's Philox
    # is slow: one uniform fill only.)
    case = random_case(1, 2, 1, 50000, dtype=dtype, k=k, seed=5)
    _, masked = check(op, case, fill=fill, value=-1.5, seed=SEED, offset=OFFSET)
    assert masked.sum().item() == k


@pytest.mark.parametrize("op", TRITON_PARAMS, indirect=True)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16), ids=str)
def test_full_size_on_gpu(op, dtype):
    gpu_only_for_triton(op, "64 rows of 50176 units")
    check(op, random_case(64, 3, 3, 50176, dtype=dtype, seed=10), value=-1.5, seed=SEED, offset=OFFSET)


@native
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("score_dtype", FLOAT_DTYPES, ids=str)
def test_dtypes(op, dtype, score_dtype):
    # M = 2050: above 2048, the CUDA row plan's 1024-thread blocks.
    case = random_case(4, 3, 3, 2050, dtype=dtype, score_dtype=score_dtype, seed=3)
    for fill in FILLS:
        check(op, case, fill=fill, value=0.3, seed=5, offset=2)


@kernels
def test_score_dtype_differs_from_x(op):
    case = random_case(3, 2, 2, 100, dtype=torch.bfloat16, score_dtype=torch.float32, seed=4)
    for fill in FILLS:
        check(op, case, fill=fill, value=-1.5, seed=SEED, offset=OFFSET)


@kernels
def test_digits(op):
    if op.interpreted:  # 8 images: the interpreter's cost grows with the rows
        check(op, {n: v[:8] for n, v in digits_case().items()}, value=-1.5, seed=SEED, offset=OFFSET)
        return
    check(op, digits_case(), seed=4)
    check(op, digits_case(torch.float16), fill="mean")


@native
def test_k_varies_per_row_int32(op):
    case = random_case(16, 3, 1, 3000, seed=11)
    case["k"] = torch.arange(16, dtype=torch.int32) * 200
    check(op, case, seed=2, offset=5)


# ------------------------------------------------------------------------------ adversarial inputs

# The adversarial cases the Triton interpreter runs with every fill (the rest: uniform only).
INTERPRETED_ALL_FILLS = ("nan_in_x", "k_all", "three_levels_ties", "nan_inf_abs")


@kernels
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(adversarial_cases()))
def test_adversarial(op, dtype, name):
    fills = FILLS
    if op.interpreted:  # within the interpreter's time: the uniform fill, the others on a few cases
        if dtype == torch.float64:
            pytest.skip("too slow for Triton's interpreter (float64 x): runs for Triton on a GPU")
        fills = FILLS if name in INTERPRETED_ALL_FILLS and dtype != torch.float16 else ("uniform",)
    case = adversarial_cases(dtype)[name]
    for fill in fills:
        check(op, case, fill=fill, value=-1.5, seed=SEED, offset=OFFSET)


@pytest.mark.parametrize("op", TRITON_PARAMS, indirect=True)
@pytest.mark.triton_blocks(short_max=0, chunk=32, fill_block=64)
@pytest.mark.parametrize("name", sorted(adversarial_cases()))
def test_adversarial_on_the_split_path(op, name):
    # The short rows of the adversarial cases forced through the split path in chunks of 32
    # units: ties across chunks, NaN, +-0, k = 0 (never resolved early) and k = M (resolved by
    # the first digit), and the early stop wherever the chosen bin's keys are all masked.
    check(op, adversarial_cases(torch.float32)[name], fill="uniform", value=-1.5, seed=SEED,
          offset=OFFSET)


@pytest.mark.parametrize("op", TRITON_PARAMS, indirect=True)
@pytest.mark.triton_blocks(short_max=0, chunk=32, fill_block=64)
@pytest.mark.parametrize("k_bad, row", [(-1, 2), (101, 0), (2**32 + 3, 1)])
def test_the_split_path_kernels_check_k(op, k_bad, row):
    # No host check before the launch: the kernels flag the bad k (read as int64: 2**32 + 3
    # would pass as 3 once cast to int32), the host names its row, and nothing was written
    # out of bounds meanwhile (the interpreter reads and writes real memory).
    if op.device != "cpu":
        pytest.skip("on a GPU the flag is a device-side assert, which ends the CUDA context")
    x, score = torch.randn(3, 2, 100), torch.randn(3, 1, 100)
    k = torch.tensor([5, 7, 9])
    k[row] = k_bad
    with pytest.raises(ValueError) as e:
        op.fn(x, score, k)
    assert str(e.value) == f"smoot::mask: k: expected 0 <= k[b] <= M = 100, got k[{row}] = {k_bad}"


def _rows(*scores):
    """A case whose rows have the given (M,) float32 scores, x random, k a spread of values."""
    score = torch.stack(scores).unsqueeze(1)
    B, _, M = score.shape
    x = torch.randn(B, 2, M, generator=torch.Generator().manual_seed(1))
    k = torch.tensor([(M * (i + 1)) // (B + 1) for i in range(B)])
    return dict(x=x, score=score, k=k, abs=False)


@native
def test_select_paths(op):
    g = torch.Generator().manual_seed(0)
    M = 20000
    one = torch.ones(M)
    # Keys that differ only in their last mantissa bits: several full radix passes.
    last_bits = 1.0 + torch.randint(0, 64, (M,), generator=g).float() * 2.0**-23
    # One NaN and one -inf widen the key range to nearly 2**32: the first digit is coarse and
    # most units share one bin (the CPU's branch-free compaction), then the range narrows.
    wide = torch.rand(M, generator=g) + 1.0
    wide[7], wide[11] = float("nan"), float("-inf")
    # Few distinct values, each repeated: ties cross every pass.
    levels = torch.randint(0, 5, (M,), generator=g).float() * 0.5
    # A spread of magnitudes with subnormals, huge values and signed zeros.
    mags = torch.randn(M, generator=g) * torch.pow(10.0, torch.randint(-40, 38, (M,), generator=g).float())
    mags[::13] = 0.0
    mags[1::17] = -0.0
    # Keys at the very top of the key space (huge floats, +inf, NaN): bin ends there must not
    # wrap around 2**32.
    top = torch.rand(M, generator=g) * 1e38 + 2.4e38
    top[torch.rand(M, generator=g) < 0.3] = float("inf")
    top[torch.rand(M, generator=g) < 0.3] = float("nan")
    check(op, _rows(one, last_bits, wide, levels, mags, top), seed=3)


@kernels
@pytest.mark.triton_blocks(short_max=0, chunk=16, fill_block=16)
@pytest.mark.parametrize("fill", ("uniform", "mean"))
@pytest.mark.parametrize("name", ("three_levels_ties", "all_equal", "nan_inf_signed",
                                  "many_zeros_signed_zero"))
def test_ties_across_tiles(op, name, fill):
    # Triton: the split path in chunks of 16 units, so the tie counts of earlier chunks decide
    # which tied units go.
    case = dict(adversarial_cases()[name])
    case["x"], case["score"] = case["x"][:2, :, :70], case["score"][:2, :, :70]
    case["k"] = torch.tensor([9, 43])
    check(op, case, fill=fill, value=-1.5, seed=SEED, offset=OFFSET)


@kernels
@pytest.mark.triton_blocks(chunk=4096)
def test_heavy_ties_across_split_chunks(op):
    # Two score levels over long rows: the k-th key is shared by thousands of units spread over
    # several CUDA split chunks, so the tie ranks must carry across blocks.
    g = torch.Generator().manual_seed(0)
    B, M = 3, 40000
    score = torch.randint(0, 2, (B, 1, M), generator=g).float()
    x = torch.randn(B, 3, M, generator=g)
    k = torch.tensor([M // 3, M // 2 + 17, M - 1])
    check(op, dict(x=x, score=score, k=k), seed=1, offset=3)


@kernels
@pytest.mark.triton_blocks(chunk=4096)
def test_ties_in_the_low_key_byte_across_split_chunks(op):
    # Scores 1.0f and its next five floats: the keys differ in their last bits only, so every
    # radix round runs and the threshold key has a non-zero low byte. k falls inside a tie group,
    # whose units are spread over several CUDA split chunks.
    g = torch.Generator().manual_seed(4)
    B, M = 3, 40000
    levels = [torch.tensor(1.0)]
    for _ in range(5):
        levels.append(torch.nextafter(levels[-1], torch.tensor(2.0)))
    levels = torch.stack(levels)
    assert len(set(levels.tolist())) == 6
    which = torch.randint(0, 6, (B, 1, M), generator=g)
    score = levels[which]
    counts = torch.stack([(which[b, 0] == v).sum() for b in range(B) for v in range(6)]).view(B, 6)
    below = counts.cumsum(1) - counts
    group = torch.tensor([1, 3, 5])  # the tie group of each row's threshold
    k = below[torch.arange(B), group] + counts[torch.arange(B), group] // 2
    x = torch.randn(B, 3, M, generator=g)
    _, masked = check(op, dict(x=x, score=score, k=k), seed=SEED, offset=7)
    masked = masked.cpu()
    for b in range(B):  # the threshold's group is split: some of its units masked, some kept
        tied = which[b, 0] == group[b]
        assert 0 < int(masked[b][tied].sum()) < int(tied.sum())


@pytest.mark.parametrize("op", backends("mask", ("cuda", "triton")), indirect=True)
def test_offsets_past_2_31_elements(op):
    # 2**31 + 2**17 elements of x: element offsets (and the rows' mask offsets b * M) past
    # int32 in every kernel. The rows are independent but for their Philox counters, so the
    # first and the last two rows are checked against the reference with the offset they have.
    gpu_only_for_triton(op, "2**31 elements")
    B, M = 2**15 + 2, 2**16
    need = B * M * (2 + 2 + 2 + 1 + 4) + 2**30  # x, score, out (float16), mask, keys, headroom
    if torch.cuda.mem_get_info()[0] < need:
        pytest.skip(f"needs {need / 2**30:.0f} GiB of free GPU memory")
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, 1, M, generator=g, device="cuda", dtype=torch.float16)
    score = torch.randn(B, 1, M, generator=g, device="cuda", dtype=torch.float16)
    k = torch.randint(0, M + 1, (B,), generator=g, device="cuda")
    out, masked = op(x, score, k, seed=SEED, offset=OFFSET)
    for first in (0, B - 2):
        rows = slice(first, first + 2)
        assert_matches_reference(out[rows].cpu(), masked[rows].cpu(), x[rows].cpu(), score[rows].cpu(),
                                 k[rows].cpu(), seed=SEED, offset=OFFSET + first * M)


@kernels
@pytest.mark.parametrize("M", (1025, 4099))
def test_philox_counter_past_2_32(op, M):
    # Counters c = n // 4 start just below 2**32 and cross it within the first row, under a seed
    # whose two 32-bit key words are both non-zero: a dropped high counter or key word shows.
    check(op, random_case(2, 3, 1, M, seed=M, k=M // 2), seed=0x1234_5678_9ABC_DEF1, offset=2**34 - 6)


@kernels
def test_counter_crosses_32_bits(op):
    # Philox counters c = n / 4 around 2**32: the high counter word must carry.
    case = random_case(2, 3, 1, 1000, seed=5, k=700)
    check(op, case, seed=-1, offset=2**34 - 3001)


@kernels
@pytest.mark.parametrize("S", (4, 5, 17))
@pytest.mark.parametrize("dtype", (torch.float64, torch.float16), ids=str)
@pytest.mark.parametrize("M", (20000, 50176))
def test_many_score_channels(op, S, dtype, M):
    # S >= 4 score channels summed per unit (the CUDA kernels unroll their score loops by 4).
    check(op, random_case(2, 1, S, M, dtype=dtype, seed=S), seed=SEED, offset=1)


@pytest.mark.parametrize("seed, offset", [(1, 0), (-1, 7), (-2**63, 2**40 + 2), (2**63 - 1, 1)])
@kernels
def test_seed_and_offset_select_the_stream(op, seed, offset):
    check(op, random_case(2, 2, 1, 50, k=25, seed=6), value=-1.5, seed=seed, offset=offset)


# ------------------------------------------------------------------------- properties of the op

@every_backend
def test_mask_exact_count_and_output_layout(op):
    case = random_case(7, 2, 3, 333, seed=6)
    out, masked = check(op, case, seed=1)
    assert torch.equal(masked.sum(1).cpu(), case["k"])
    assert out.is_contiguous() and masked.dtype == torch.bool and masked.shape == (7, 333)


@kernels
def test_non_contiguous_inputs(op):
    case = random_case(4, 3, 2, 500, seed=8)
    x = case["x"].to(op.device).transpose(0, 1).contiguous().transpose(0, 1)   # (B, G, M), strided
    s = case["score"].to(op.device)
    score = torch.stack([s, s], dim=-1)[..., 0]                                 # a strided view of s
    assert not x.is_contiguous() and not score.is_contiguous()
    out, masked = op(x, score, case["k"], seed=7)
    assert_matches_reference(out, masked, case["x"], case["score"], case["k"], seed=7)


@every_backend
def test_empty(op):
    out, masked = op(torch.empty(0, 3, 5), torch.empty(0, 1, 5), torch.empty(0, dtype=torch.int64))
    assert out.shape == (0, 3, 5) and masked.shape == (0, 5)
    out, masked = op(torch.empty(2, 3, 0), torch.empty(2, 1, 0), torch.zeros(2, dtype=torch.int32))
    assert out.shape == (2, 3, 0) and masked.shape == (2, 0)
    # G = 0: nothing to fill, the mask is still computed.
    case = random_case(3, 1, 2, 20, seed=1)
    out, _ = check(op, dict(x=torch.empty(3, 0, 20), score=case["score"], k=case["k"]))
    assert out.shape == (3, 0, 20)


@every_backend
def test_same_seed_twice_identical(op):
    case = random_case(8, 3, 3, 4000, seed=1)
    a = op(case["x"], case["score"], case["k"], seed=77, offset=5)
    b = op(case["x"], case["score"], case["k"], seed=77, offset=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = op(case["x"], case["score"], case["k"], seed=78, offset=5)
    assert not torch.equal(a[0], c[0])


@every_backend
@pytest.mark.parametrize("fill", FILLS)
def test_batch_split_matches_whole(op, fill):
    gpu_only_for_triton(op)  # the interpreter: test_api.py's test_batch_split_with_offsets, smaller
    B, G, M = 32, 3, 1001
    case = random_case(B, G, 3, M, seed=4)
    x, s, k = case["x"], case["score"], case["k"]
    whole = op(x, s, k, fill=fill, seed=5, offset=10)
    lo = op(x[:16], s[:16], k[:16], fill=fill, seed=5, offset=10)
    hi = op(x[16:], s[16:], k[16:], fill=fill, seed=5, offset=10 + 16 * G * M)
    assert torch.equal(whole[0], torch.cat([lo[0], hi[0]]))
    assert torch.equal(whole[1], torch.cat([lo[1], hi[1]]))


@every_backend
def test_gradient_flows_to_kept_x_only(op):
    case = random_case(3, 2, 1, 40, seed=8)
    x = case["x"].to(op.device).requires_grad_()
    out, masked = op(x, case["score"], case["k"])
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    assert torch.equal(x.grad, torch.where(masked.unsqueeze(1), 0.0, weight))


@every_backend
def test_compile_with_fake_shapes(op):
    case = random_case(2, 2, 1, 30, seed=9)
    args = [case[n].to(op.device) for n in ("x", "score", "k")]
    f = torch.compile(lambda x, s, k: op.fn(x, s, k, seed=4), backend="eager")
    assert torch.equal(f(*args)[1], op.fn(*args, seed=4)[1])


@kernels
def test_public_api_pixel_units(op):
    x = torch.randn(2, 3, 5, 7, device=op.device)
    score = torch.randn(2, 1, 5, 7, device=op.device)
    ours = smoot_ext.mask(x, score, 11, unit="pixel", seed=3, offset=8, backend=op.name)
    ref = smoot_ext.mask(x, score, 11, unit="pixel", seed=3, offset=8, backend="reference")
    assert torch.equal(ours[1], ref[1]) and ours[1].shape == (2, 5, 7)
    assert int(ulp_distance(ours[0].cpu(), ref[0].cpu()).max()) <= 1


@pytest.mark.parametrize("op", backends("mask", ("cuda", "triton")), indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_same_as_cpu_kernel(op, dtype):
    if "cpu" not in smoot_ext.available_backends("cpu"):
        pytest.skip("the C++ CPU kernel is not built")
    case = random_case(6, 3, 3, 5000, dtype=dtype, seed=17)
    case["score"] = (case["score"].float() * 4).round().to(dtype) / 4  # many ties
    for fill in FILLS:
        kw = dict(fill=fill, value=2.0, seed=31, offset=9)
        out, masked = op(case["x"], case["score"], case["k"], **kw)
        cpu_out, cpu_masked = torch.ops.smoot.mask(case["x"], case["score"], case["k"], **kw)
        assert torch.equal(masked.cpu(), cpu_masked)
        kept = ~cpu_masked.unsqueeze(1).expand_as(cpu_out)
        assert torch.equal(out.cpu()[kept], cpu_out[kept])
        if fill == "mean":
            # Triton's interpreter (numpy) rounds float32 to bfloat16 toward zero: 1 ulp apart.
            rtol = torch.finfo(dtype).eps if op.interpreted and dtype == torch.bfloat16 else 1e-5
            torch.testing.assert_close(out.cpu()[~kept], cpu_out[~kept], rtol=rtol, atol=1e-6)
        else:
            assert int(ulp_distance(out.cpu()[~kept], cpu_out[~kept]).max()) <= 1


# ------------------------------------------------------------------------ CPU: threads and ISAs

@pytest.mark.parametrize("op", CPU_PARAMS, indirect=True)
def test_threads_1_and_2_identical(op):
    case = random_case(33, 3, 2, 5000, seed=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = op(case["x"], case["score"], case["k"], seed=9, offset=1)
        torch.set_num_threads(2)
        b = op(case["x"], case["score"], case["k"], seed=9, offset=1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.skipif("cpu" not in smoot_ext.available_backends("cpu"), reason="C++ CPU kernel not built")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_isa_paths_bit_identical(monkeypatch, dtype):
    # The AVX2 loops are the baseline ones, only wider: every output bit agrees, fills included.
    case = random_case(48, 3, 2, 5000, dtype=dtype, seed=3)
    outs = []
    for isa in ("baseline", "auto"):
        monkeypatch.setenv("SMOOT_CPU_ISA", isa)
        outs.append(torch.ops.smoot.mask(case["x"], case["score"], case["k"], seed=11, offset=5))
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[outs[0][0].element_size()]
    assert torch.equal(outs[0][1], outs[1][1])
    assert torch.equal(outs[0][0].view(bits), outs[1][0].view(bits))


@pytest.mark.parametrize("op", CPU_PARAMS[:1], indirect=True)
def test_bad_isa_env(op, monkeypatch):
    monkeypatch.setenv("SMOOT_CPU_ISA", "avx512")
    with pytest.raises(ValueError, match="SMOOT_CPU_ISA.*avx512"):
        op(torch.ones(1, 1, 4), torch.ones(1, 1, 4), torch.tensor([1]))


# ------------------------------------------------------------- CUDA: plans, streams and graphs

@pytest.mark.parametrize("op", CUDA_PARAMS, indirect=True)
def test_large_rows_both_plans(op):
    # The row plan skips (cases.Runner says why) where one block's shared memory cannot hold the
    # row: 50176 keys and the block's state do not fit an A100's opt-in limit, but an H100's.
    check(op, random_case(3, 3, 3, 50176, seed=22), seed=8, offset=0)


@pytest.mark.parametrize("op", CUDA_PARAMS[:1], indirect=True)
def test_row_plan_refuses_rows_too_long_for_shared_memory(op):
    assert op.backend.setting == "row"
    case = random_case(1, 1, 1, 1 << 20, k=5)
    with pytest.raises(ValueError, match="shared memory"):
        op.fn(*(case[n].cuda() for n in ("x", "score", "k")))


@pytest.mark.parametrize("op", CUDA_PARAMS[:1], indirect=True)
def test_bad_plan_name_is_an_error(op, monkeypatch):
    monkeypatch.setenv("SMOOT_CUDA_MASK_PATH", "fast")
    case = random_case(1, 1, 1, 8, k=2)
    with pytest.raises(ValueError, match="SMOOT_CUDA_MASK_PATH"):
        op(case["x"], case["score"], case["k"])


@pytest.mark.parametrize("op", CUDA_PARAMS, indirect=True)
def test_side_stream(op):
    case = random_case(4, 3, 3, 600, seed=13)
    x, score, k = (case[n].cuda() for n in ("x", "score", "k"))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out, masked = torch.ops.smoot.mask(x, score, k, seed=6, offset=2)
    stream.synchronize()
    assert_matches_reference(out, masked, case["x"], case["score"], case["k"], seed=6, offset=2)


@pytest.mark.parametrize("op", CUDA_PARAMS, indirect=True)
@pytest.mark.parametrize("shape", [(8, 3, 3, 3000), (2, 3, 1, 20000)], ids=["short", "long"])
def test_graph_capture_then_replay(op, shape):
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


# ---------------------------------------------------------------------- Triton: compiled kernels

@pytest.mark.parametrize("op", TRITON_PARAMS, indirect=True)
@pytest.mark.parametrize("fill", FILLS)
def test_same_as_cuda_kernel(op, fill):
    gpu_only_for_triton(op, "the CUDA kernel's tensors live on a GPU")
    if "cuda" not in smoot_ext.available_backends("cuda"):
        pytest.skip("the CUDA kernel is not built")
    case = random_case(64, 3, 1, 50176, seed=11)
    args = [case[n].cuda() for n in ("x", "score", "k")]
    kw = dict(fill=fill, value=0.25, seed=SEED, offset=OFFSET)
    out, masked = op(*args, **kw)
    cuda_out, cuda_masked = torch.ops.smoot.mask(*args, **kw)
    assert torch.equal(masked, cuda_masked)
    if fill == "mean":
        torch.testing.assert_close(out, cuda_out, rtol=1e-5, atol=1e-6)
    else:
        assert int(ulp_distance(out, cuda_out).max()) <= 1


@pytest.mark.parametrize("op", TRITON_PARAMS, indirect=True)
def test_compiled_graph_calls_the_kernels(op):
    gpu_only_for_triton(op, "inductor compiles the graph for a GPU")
    case = random_case(4, 3, 1, 1000, seed=12)
    args = [case[n].cuda() for n in ("x", "score", "k")]
    f = torch.compile(lambda x, s, k: torch.ops.smoot.mask_triton(x, s, k, seed=4), fullgraph=True)
    assert all(torch.equal(a, b) for a, b in zip(f(*args), torch.ops.smoot.mask_triton(*args, seed=4)))
