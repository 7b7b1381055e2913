"""The oracle itself: Philox known answers, Triton's random stream, and a literal per-row loop."""
import math
import os

import numpy as np
import pytest
import torch
from cases import adversarial_cases, random_case, ulp_distance

from smoot_ext import reference

# Random123's kat_vectors for philox4x32 with 10 rounds: (counter, key, expected words).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def philox_scalar(c, key):
    """Philox4x32-10 on Python ints, straight from Salmon et al. (SC'11)."""
    c0, c1, c2, c3 = c
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & 0xFFFFFFFF, p1 & 0xFFFFFFFF, \
            ((p0 >> 32) ^ c3 ^ k1) & 0xFFFFFFFF, p0 & 0xFFFFFFFF
        k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert philox_scalar(counter, key) == expected
    words = reference.philox4x32_10(*counter, *key)
    assert tuple(int(w) for w in words) == expected


def test_philox_tensor_matches_scalar_on_many_counters():
    g = torch.Generator().manual_seed(0)
    c = torch.randint(0, 2**32, (4, 200), generator=g, dtype=torch.int64)
    key = (0x12345678, 0x9ABCDEF0)
    words = torch.stack(reference.philox4x32_10(*c, *key))
    for j in range(c.shape[1]):
        assert tuple(words[:, j].tolist()) == philox_scalar(tuple(c[:, j].tolist()), key)


def test_uniform_map_edges():
    w = torch.tensor([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 12345], dtype=torch.int64)
    r = reference.uint_to_uniform(w)
    assert r.dtype == torch.float32
    assert (r >= 0).all() and (r < 1).all()
    # 0 and 2**32-1 (= int32 -1) both map to 0; 2**31-1 and 2**31 to the largest value below 1.
    assert r[0] == 0 and r[4] == 0 and r[2] == r[3] and r[2] < 1
    assert r[5] == np.float32(12345) * np.float32(reference.UNIFORM_SCALE)


def _triton_random_words(seed: int, counters: torch.Tensor):
    triton = pytest.importorskip("triton")
    import triton.language as tl

    @triton.jit
    def words_kernel(c_ptr, out_ptr, uni_ptr, seed, N: tl.constexpr):
        i = tl.arange(0, N)
        c = tl.load(c_ptr + i)
        w0, w1, w2, w3 = tl.randint4x(seed, c)
        tl.store(out_ptr + i, w0.to(tl.int64) & 0xFFFFFFFF)
        tl.store(out_ptr + N + i, w1.to(tl.int64) & 0xFFFFFFFF)
        tl.store(out_ptr + 2 * N + i, w2.to(tl.int64) & 0xFFFFFFFF)
        tl.store(out_ptr + 3 * N + i, w3.to(tl.int64) & 0xFFFFFFFF)
        tl.store(uni_ptr + i, tl.random.uint_to_uniform_float(w0))

    n = counters.numel()
    out = torch.empty(4, n, dtype=torch.int64, device=counters.device)
    uni = torch.empty(n, dtype=torch.float32, device=counters.device)
    words_kernel[(1,)](counters, out, uni, seed, N=n)
    return out, uni


@pytest.mark.skipif(not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
                    reason="Triton needs a GPU or TRITON_INTERPRET=1")
def test_philox_matches_triton_randint4x():
    """SPEC step 6: for counters below 2**31 the words are Triton's tl.randint4x(seed, c)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    c = torch.cat([torch.arange(32), torch.randint(0, 2**31, (32,), generator=torch.Generator().manual_seed(1))])
    c = c.to(torch.int32).to(device)
    seed = 0x1234_5678_9ABC  # a seed using both 32-bit key words
    out, uni = _triton_random_words(seed, c)
    ref = torch.stack(reference.philox4x32_10(c.cpu().long(), 0, 0, 0, seed & 0xFFFFFFFF, seed >> 32))
    assert torch.equal(out.cpu(), ref)
    assert torch.equal(uni.cpu(), reference.uint_to_uniform(ref[0]))


# ----------------------------------------------------------------------------- literal loop oracle

def mask_loop(x, score, k, *, abs=True, fill="uniform", value=0.0, seed=0, offset=0):
    """docs/SPEC.md read literally: one row, one unit, one channel at a time, in Python scalars."""
    B, G, M = x.shape
    S = score.shape[1]
    out = x.clone()
    masked = torch.zeros(B, M, dtype=torch.bool)
    s32 = score.float().numpy()
    x32 = x.float().numpy()
    for b in range(B):
        u = []
        for m in range(M):
            acc = np.float32(0)
            for j in range(S):
                term = np.float32(s32[b, j, m])
                term = np.float32(np.abs(term)) if abs else term
                with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as in float32
                    acc = term if j == 0 else np.float32(acc + term)
            u.append(float(acc))
        order = sorted(range(M), key=lambda m: (math.isnan(u[m]), 0.0 if math.isnan(u[m]) else u[m], m))
        chosen = set(order[: int(k[b])])
        for m in chosen:
            masked[b, m] = True
        kept = [m for m in range(M) if m not in chosen] or list(range(M))
        for g in range(G if chosen else 0):
            vals = [x32[b, g, m] for m in kept]
            has_nan = any(math.isnan(v) for v in vals)
            lo = np.float32("nan") if has_nan else np.float32(min(vals))
            hi = np.float32("nan") if has_nan else np.float32(max(vals))
            mean = np.float32(sum(float(v) for v in vals) / len(vals))
            for m in chosen:
                if fill == "uniform":
                    n = offset + (b * G + g) * M + m
                    word = philox_scalar(((n // 4) & 0xFFFFFFFF, (n // 4) >> 32, 0, 0),
                                         (seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF))[n % 4]
                    i = word - 2**32 if word >= 2**31 else word
                    i = -i - 1 if i < 0 else i
                    r = np.float32(i) * np.float32(reference.UNIFORM_SCALE)
                    v = np.float32(lo + np.float32(r * np.float32(hi - lo)))
                elif fill == "constant":
                    v = value
                else:
                    v = mean
                out[b, g, m] = torch.tensor(float(v), dtype=torch.float32).to(x.dtype)
    return out, masked


def _assert_same(a, b):
    (out_a, mask_a), (out_b, mask_b) = a, b
    assert torch.equal(mask_a, mask_b)
    assert int(ulp_distance(out_a, out_b).max()) == 0 if out_a.numel() else True


@pytest.mark.parametrize("fill", ["uniform", "constant", "mean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_reference_matches_loop_random(fill, dtype):
    case = random_case(3, 2, 3, 37, dtype=dtype, seed=5)
    kw = dict(abs=case.pop("abs"), fill=fill, value=-1.5, seed=2**40 + 11, offset=6)
    ref = reference.mask(**case, **kw)
    loop = mask_loop(**case, **kw)
    assert torch.equal(ref[1], loop[1])
    if fill == "mean":
        torch.testing.assert_close(ref[0].float(), loop[0].float(), rtol=1e-5, atol=1e-6)
    else:
        _assert_same(ref, loop)


@pytest.mark.parametrize("name", sorted(adversarial_cases()))
def test_reference_matches_loop_adversarial(name):
    case = dict(adversarial_cases()[name])
    kw = dict(abs=case.pop("abs", True), seed=99, offset=1)
    _assert_same(reference.mask(**case, **kw), mask_loop(**case, **kw))


def test_reference_matches_loop_past_counter_2_32():
    """Counters c = n // 4 crossing 2**32, under a seed whose two 32-bit key words are non-zero."""
    case = random_case(1, 3, 1, 1025, seed=8, k=600)
    kw = dict(abs=case.pop("abs"), seed=0x1234_5678_9ABC_DEF1, offset=2**34 - 6)
    _assert_same(reference.mask(**case, **kw), mask_loop(**case, **kw))


def test_offset_shifts_the_stream():
    """Rows 16-31 masked alone with offset 16*G*M get the same fill as within the full batch."""
    case = random_case(32, 2, 1, 50, seed=3)
    full = reference.mask(case["x"], case["score"], case["k"], seed=5)
    tail = reference.mask(case["x"][16:], case["score"][16:], case["k"][16:], seed=5, offset=16 * 2 * 50)
    assert torch.equal(full[0][16:], tail[0]) and torch.equal(full[1][16:], tail[1])


def update_k_loop(logits, logits_masked, k, *, alpha, mu, n, kmin, kmax, rounding="floor"):
    round_step = math.floor if rounding == "floor" else math.trunc
    k_new, deltas = [], []
    for b in range(logits.shape[0]):
        p = torch.softmax(logits[b].double(), 0).tolist()
        q = torch.softmax(logits_masked[b].double(), 0).tolist()
        ranked = sorted(range(len(p)), key=lambda c: (-p[c], c))[: min(n, len(p))]
        d1 = q[ranked[0]] - p[ranked[0]]
        d2 = sum(q[c] - p[c] for c in ranked[1:]) / (len(ranked) - 1) if len(ranked) > 1 else 0.0
        delta = alpha * d1 + (1 - alpha) * d2
        deltas.append(delta)
        k_new.append(min(max(int(k[b]) + round_step(mu * delta), kmin), kmax))
    return torch.tensor(k_new, dtype=k.dtype), torch.tensor(deltas, dtype=torch.float64)


@pytest.mark.parametrize("rounding", ["floor", "trunc"])
@pytest.mark.parametrize("C,n", [(10, 5), (3, 5), (100, 1), (2, 2)])
def test_update_k_matches_loop(C, n, rounding):
    g = torch.Generator().manual_seed(C)
    logits = torch.randn(64, C, generator=g) * 3
    logits[0] = 0.0  # all classes tied: ranking falls back to class index
    masked = logits + torch.randn(64, C, generator=g)
    k = torch.randint(100, 700, (64,), generator=g, dtype=torch.int32)
    kw = dict(alpha=0.8, mu=1000.0, n=n, kmin=150, kmax=600, rounding=rounding)
    k_ref, d_ref = reference.update_k(logits, masked, k, **kw)
    k_loop, d_loop = update_k_loop(logits, masked, k, **kw)
    assert k_ref.dtype == torch.int32
    torch.testing.assert_close(d_ref.double(), d_loop, rtol=0, atol=1e-6)
    near_int = ((kw["mu"] * d_loop) - (kw["mu"] * d_loop).round()).abs() < 1e-5 * kw["mu"]
    assert torch.equal(k_ref[~near_int], k_loop[~near_int])
    assert (k_ref >= 150).all() and (k_ref <= 600).all()
