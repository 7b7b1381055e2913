"""The C++ CPU kernel of smoot::update_k (csrc/cpu/update_k.cpp) against the reference (docs/SPEC.md).

delta within 1e-6 (the kernel uses ATen's float32 softmax, as the reference, so in practice it is
exact) and k_new equal except where mu * delta lies within 1e-5 of an integer.
"""
import pytest
import torch
from cases import assert_update_k_matches_reference, random_logits

import smoot_ext  # noqa: F401  (registers the ops)


def check(logits, masked, k, **kw):
    k_new, delta = torch.ops.smoot.update_k(logits, masked, k, **kw)
    assert_update_k_matches_reference(k_new, delta, logits, masked, k, **kw)
    return k_new, delta


@pytest.mark.parametrize("C", [1, 2, 10, 33, 1000])
@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_random(C, n):
    B = 37
    logits, masked = random_logits(B, C, seed=C * 100 + n)
    k = torch.randint(0, 500, (B,), generator=torch.Generator().manual_seed(n))
    check(logits, masked, k, alpha=0.95, mu=10.0, n=n, kmin=100, kmax=400)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("kdtype", [torch.int32, torch.int64], ids=str)
def test_dtypes(dtype, kdtype):
    logits, masked = random_logits(64, 10, dtype=dtype, seed=1)
    k = torch.randint(0, 800, (64,), generator=torch.Generator().manual_seed(2)).to(kdtype)
    check(logits, masked, k, alpha=0.7, mu=25.0, n=5, kmin=156, kmax=627)


def test_ties_rank_lower_class_first():
    # Classes 1 and 3 tie for the top p; class 1 is c1. The masked logits move them apart, so
    # picking class 3 first would change delta1.
    logits = torch.tensor([[0.0, 2.0, 1.0, 2.0, -1.0]])
    masked = torch.tensor([[0.0, 1.0, 1.0, 3.0, -1.0]])
    k = torch.tensor([50])
    kw = dict(alpha=1.0, mu=10.0, n=1, kmin=0, kmax=100)
    k_new, delta = check(logits, masked, k, **kw)
    p, q = torch.softmax(logits, 1)[0], torch.softmax(masked, 1)[0]
    assert delta.item() == pytest.approx((q[1] - p[1]).item(), abs=1e-7)
    assert k_new.item() == 50 + int(torch.floor(10 * delta).item())


def test_all_equal_logits():
    logits = torch.zeros(4, 7)
    masked = torch.randn(4, 7, generator=torch.Generator().manual_seed(3))
    check(logits, masked, torch.full((4,), 20), alpha=0.8, mu=10.0, n=5, kmin=0, kmax=49)


def test_clamped_to_kmin_and_kmax():
    # Masking raises the top class's probability by ~1: k grows by ~mu, clamped at kmax;
    # the opposite change shrinks k down to kmin.
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    masked = torch.tensor([[0.0, 5.0, 5.0], [-9.0, -9.0, 9.0]])
    k = torch.tensor([10, 48], dtype=torch.int32)
    k_new, _ = check(logits, masked, k, alpha=1.0, mu=1000.0, n=3, kmin=7, kmax=50)
    assert k_new.tolist() == [7, 50]


def test_nan_logits_give_kmin():
    logits, masked = random_logits(3, 10, seed=4)
    logits[1, 2] = float("nan")
    k = torch.tensor([20, 20, 20])
    k_new, delta = check(logits, masked, k, alpha=0.9, mu=10.0, n=5, kmin=5, kmax=40)
    assert torch.isnan(delta[1]) and k_new[1] == 5


def test_empty_batch():
    k_new, delta = torch.ops.smoot.update_k(torch.empty(0, 10), torch.empty(0, 10),
                                            torch.empty(0, dtype=torch.int64), alpha=0.9, mu=10.0,
                                            n=5, kmin=0, kmax=5)
    assert k_new.shape == (0,) and delta.shape == (0,) and delta.dtype == torch.float32


def test_threads_1_and_2_identical():
    logits, masked = random_logits(300, 100, seed=5)
    k = torch.randint(0, 500, (300,), generator=torch.Generator().manual_seed(5))
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=100, kmax=400)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = torch.ops.smoot.update_k(logits, masked, k, **kw)
        torch.set_num_threads(2)
        b = torch.ops.smoot.update_k(logits, masked, k, **kw)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _ok():
    return dict(logits=torch.randn(3, 10), logits_masked=torch.randn(3, 10),
                k=torch.tensor([4, 5, 6]), alpha=0.9, mu=10.0, n=5, kmin=2, kmax=8)


BAD = {
    "logits_rank": (dict(logits=torch.randn(3, 10, 1)), ValueError, "logits"),
    "logits_int": (dict(logits=torch.ones(3, 10, dtype=torch.int64)), TypeError, "logits"),
    "masked_shape": (dict(logits_masked=torch.randn(3, 11)), ValueError, "logits_masked"),
    "masked_int": (dict(logits_masked=torch.ones(3, 10, dtype=torch.int32)), TypeError,
                   "logits_masked"),
    "no_classes": (dict(logits=torch.randn(3, 0), logits_masked=torch.randn(3, 0)), ValueError,
                   "logits"),
    "k_shape": (dict(k=torch.tensor([4, 5])), ValueError, "k"),
    "k_float": (dict(k=torch.tensor([4.0, 5.0, 6.0])), TypeError, "k"),
    "n_zero": (dict(n=0), ValueError, "n"),
    "kmin_above_kmax": (dict(kmin=9, kmax=8), ValueError, "kmin"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input(name):
    change, error, arg = BAD[name]
    a = {**_ok(), **change}
    with pytest.raises(error, match=rf"\b{arg}\b"):
        torch.ops.smoot.update_k(a.pop("logits"), a.pop("logits_masked"), a.pop("k"), **a)
