"""The C++ CPU kernel of smoot::mask (csrc/cpu/mask.cpp) against the reference (docs/SPEC.md).

Masks and kept values must be bit-identical to smoot_ext.reference, uniform/constant fills within
1 ulp, mean fills within 1e-5 (tests/cases.py: assert_matches_reference). The kernel's radix
select takes different paths by candidate count and key range, so the cases below include
inputs built to hit each: wide and narrow ranges, a single key, many keys in one bin, keys
differing only in their last bits. Every test runs twice, on the baseline x86-64 row loops and
on the AVX2 ones (SMOOT_CPU_ISA; on a CPU without AVX2 both runs take the baseline loops).
"""
import pytest
import torch
from cases import FLOAT_DTYPES, adversarial_cases, assert_matches_reference, digits_case, random_case
from hypothesis import given, settings
from hypothesis import strategies as st

import smoot_ext  # noqa: F401  (registers the ops)

FILLS = ("uniform", "constant", "mean")


@pytest.fixture(scope="module", autouse=True, params=["baseline", "auto"])
def cpu_isa(request):
    # Module scope: hypothesis forbids function-scoped fixtures around @given tests.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMOOT_CPU_ISA", request.param)
        yield request.param


def check(case, **kw):
    out, masked = torch.ops.smoot.mask(case["x"], case["score"], case["k"],
                                       abs=case.get("abs", True), **kw)
    assert_matches_reference(out, masked, case["x"], case["score"], case["k"],
                             abs=case.get("abs", True), **kw)
    return out, masked


@settings(max_examples=40, deadline=None, derandomize=True)
@given(B=st.integers(0, 64), G=st.integers(1, 4), S=st.integers(1, 4), M=st.integers(1, 3000),
       dtype=st.sampled_from(FLOAT_DTYPES), fill=st.sampled_from(FILLS), abs_=st.booleans(),
       seed=st.integers(-2**63, 2**63 - 1), offset=st.integers(0, 2**40), case_seed=st.integers(0, 99))
def test_random_small(B, G, S, M, dtype, fill, abs_, seed, offset, case_seed):
    case = random_case(B, G, S, M, dtype=dtype, seed=case_seed, abs=abs_)
    check(case, fill=fill, value=-0.75, seed=seed, offset=offset)


@pytest.mark.parametrize("shape", [(2, 1, 1, 70000), (1, 3, 3, 50176), (1, 4, 2, 65537)],
                         ids=lambda s: "x".join(map(str, s)))
def test_random_large(shape):
    B, G, S, M = shape
    case = random_case(B, G, S, M, seed=M)
    check(case, seed=12345, offset=3)
    check(case, fill="mean")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("score_dtype", FLOAT_DTYPES, ids=str)
def test_dtypes(dtype, score_dtype):
    case = random_case(5, 3, 2, 1500, dtype=dtype, score_dtype=score_dtype, seed=3)
    for fill in FILLS:
        check(case, fill=fill, value=0.3, seed=5, offset=2)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(adversarial_cases()))
def test_adversarial(dtype, name):
    case = adversarial_cases(dtype)[name]
    for fill in FILLS:
        check(case, fill=fill, seed=9, offset=1)


def _rows(*scores):
    """A case whose rows have the given (M,) float32 scores, x random, k a spread of values."""
    score = torch.stack(scores).unsqueeze(1)
    B, _, M = score.shape
    x = torch.randn(B, 2, M, generator=torch.Generator().manual_seed(1))
    k = torch.tensor([(M * (i + 1)) // (B + 1) for i in range(B)])
    return dict(x=x, score=score, k=k, abs=False)


def test_select_paths():
    g = torch.Generator().manual_seed(0)
    M = 20000
    one = torch.ones(M)
    # Keys that differ only in their last mantissa bits: several full radix passes.
    last_bits = 1.0 + torch.randint(0, 64, (M,), generator=g).float() * 2.0**-23
    # One NaN and one -inf widen the key range to nearly 2**32: the first digit is coarse and
    # most units share one bin (branch-free compaction path), then the range narrows.
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
    check(_rows(one, last_bits, wide, levels, mags, top), seed=3)


def test_digits():
    check(digits_case(), seed=4)
    check(digits_case(torch.float16), fill="mean")


def test_k_varies_per_row_int32():
    case = random_case(16, 3, 1, 3000, seed=11)
    case["k"] = torch.arange(16, dtype=torch.int32) * 200
    check(case, seed=2, offset=5)


def test_counter_crosses_32_bits():
    # Philox counters c = n / 4 around 2**32: the high counter word must carry.
    case = random_case(2, 3, 1, 1000, seed=5, k=700)
    check(case, seed=-1, offset=2**34 - 3001)


def test_mask_exact_count_and_output_layout():
    case = random_case(7, 2, 3, 333, seed=6)
    out, masked = check(case, seed=1)
    assert torch.equal(masked.sum(1), case["k"])
    assert out.is_contiguous() and masked.dtype == torch.bool and masked.shape == (7, 333)


def test_non_contiguous_inputs():
    case = random_case(4, 3, 2, 500, seed=8)
    x = case["x"].transpose(0, 1).contiguous().transpose(0, 1)
    score = case["score"].transpose(1, 2).contiguous().transpose(1, 2)
    assert not x.is_contiguous() and not score.is_contiguous()
    check(dict(x=x, score=score, k=case["k"]), seed=7)


def test_empty():
    out, masked = torch.ops.smoot.mask(torch.empty(0, 3, 5), torch.empty(0, 1, 5),
                                       torch.empty(0, dtype=torch.int64))
    assert out.shape == (0, 3, 5) and masked.shape == (0, 5)
    out, masked = torch.ops.smoot.mask(torch.empty(2, 3, 0), torch.empty(2, 1, 0),
                                       torch.zeros(2, dtype=torch.int32))
    assert out.shape == (2, 3, 0) and masked.shape == (2, 0)
    # G = 0: nothing to fill, the mask is still computed.
    case = random_case(3, 1, 2, 20, seed=1)
    check(dict(x=torch.empty(3, 0, 20), score=case["score"], k=case["k"]))


# --- determinism: the output depends on (seed, offset) only -------------------------------

def test_same_seed_twice_identical():
    case = random_case(8, 3, 3, 4000, seed=1)
    a = torch.ops.smoot.mask(case["x"], case["score"], case["k"], seed=77, offset=5)
    b = torch.ops.smoot.mask(case["x"], case["score"], case["k"], seed=77, offset=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = torch.ops.smoot.mask(case["x"], case["score"], case["k"], seed=78, offset=5)
    assert not torch.equal(a[0], c[0])


def test_threads_1_and_2_identical():
    case = random_case(33, 3, 2, 5000, seed=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = torch.ops.smoot.mask(case["x"], case["score"], case["k"], seed=9, offset=1)
        torch.set_num_threads(2)
        b = torch.ops.smoot.mask(case["x"], case["score"], case["k"], seed=9, offset=1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("fill", FILLS)
def test_batch_split_matches_whole(fill):
    B, G, M = 32, 3, 1001
    case = random_case(B, G, 3, M, seed=4)
    x, s, k = case["x"], case["score"], case["k"]
    whole = torch.ops.smoot.mask(x, s, k, fill=fill, seed=5, offset=10)
    lo = torch.ops.smoot.mask(x[:16], s[:16], k[:16], fill=fill, seed=5, offset=10)
    hi = torch.ops.smoot.mask(x[16:], s[16:], k[16:], fill=fill, seed=5, offset=10 + 16 * G * M)
    assert torch.equal(whole[0], torch.cat([lo[0], hi[0]]))
    assert torch.equal(whole[1], torch.cat([lo[1], hi[1]]))


# --- bad input on direct op calls: a clear error naming the argument ----------------------

def _ok():
    return dict(x=torch.randn(2, 3, 10), score=torch.randn(2, 1, 10),
                k=torch.tensor([3, 4]))


BAD = {
    "x_rank": (dict(x=torch.randn(2, 10)), ValueError, "x"),
    "score_rank": (dict(score=torch.randn(2, 10)), ValueError, "score"),
    "score_B": (dict(score=torch.randn(3, 1, 10)), ValueError, "score"),
    "score_M": (dict(score=torch.randn(2, 1, 11)), ValueError, "score"),
    "score_S0": (dict(score=torch.randn(2, 0, 10)), ValueError, "score"),
    "k_rank": (dict(k=torch.tensor([[3, 4]])), ValueError, "k"),
    "k_B": (dict(k=torch.tensor([3, 4, 5])), ValueError, "k"),
    "k_float": (dict(k=torch.tensor([3.0, 4.0])), TypeError, "k"),
    "k_negative": (dict(k=torch.tensor([3, -1])), ValueError, "k"),
    "k_above_M": (dict(k=torch.tensor([11, 4])), ValueError, "k"),
    "x_int": (dict(x=torch.ones(2, 3, 10, dtype=torch.int32)), TypeError, "x"),
    "score_int": (dict(score=torch.ones(2, 1, 10, dtype=torch.int64)), TypeError, "score"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input(name):
    change, error, arg = BAD[name]
    args = {**_ok(), **change}
    with pytest.raises(error, match=rf"\b{arg}\b"):
        torch.ops.smoot.mask(args["x"], args["score"], args["k"])


def test_unknown_fill():
    a = _ok()
    with pytest.raises(ValueError, match="fill.*'median'"):
        torch.ops.smoot.mask(a["x"], a["score"], a["k"], fill="median")


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


def test_bad_isa_env(monkeypatch):
    monkeypatch.setenv("SMOOT_CPU_ISA", "avx512")
    with pytest.raises(ValueError, match="SMOOT_CPU_ISA.*avx512"):
        torch.ops.smoot.mask(torch.ones(1, 1, 4), torch.ones(1, 1, 4), torch.tensor([1]))
