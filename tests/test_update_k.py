"""smoot::update_k on every backend against the reference (docs/SPEC.md; SMOOT Algorithm 2).

delta within 1e-6 and k_new equal except where mu * delta lies within 1e-5 of an integer
(cases.assert_update_k_matches_reference). Each test names the backends it runs on
(cases.backends); a backend that cannot run here skips with the reason. Without a GPU the Triton
kernel runs in Triton's interpreter on CPU tensors (tests/conftest.py).
"""
import numpy as np
import pytest
import torch
from cases import ALL, KERNELS, assert_update_k_matches_reference, backends, check_update_k, random_logits

import smoot_ext
from smoot_ext import reference

# The interpreter runs the Triton kernel in numpy, which warns on the NaN of NaN/inf logits.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

kernels = pytest.mark.parametrize("op", backends("update_k", KERNELS), indirect=True)
every_backend = pytest.mark.parametrize("op", backends("update_k", ALL), indirect=True)


def random_k(B: int, high: int, seed: int, dtype=torch.int64) -> torch.Tensor:
    return torch.randint(0, high, (B,), generator=torch.Generator().manual_seed(seed)).to(dtype)


# (C, n) pairs the Triton interpreter runs (each call takes it long); on a GPU Triton runs all.
INTERPRETED = {(10, 5), (10, 1), (10, 10), (3, 7), (1, 5), (200, 12)}


rounding = pytest.mark.parametrize("rounding", ["floor", "trunc"])


@kernels
@rounding
@pytest.mark.parametrize("C", [1, 2, 3, 10, 33, 100, 200, 1000])
@pytest.mark.parametrize("n", [1, 2, 5, 7, 10, 12, 40])
def test_random(op, C, n, rounding):
    if op.interpreted and (C, n) not in INTERPRETED:
        pytest.skip("too slow for Triton's interpreter: runs for Triton on a GPU")
    B = 37
    logits, masked = random_logits(B, C, seed=C * 100 + n)
    check_update_k(op, logits, masked, random_k(B, 500, n), alpha=0.95, mu=10.0, n=n, kmin=100, kmax=400,
                   rounding=rounding)


@every_backend
def test_rounding_floor_and_trunc(op):
    # Steps mu * delta on both sides of zero, none near an integer: floor and trunc differ by
    # one exactly where the step is negative and not an integer.
    logits, masked = random_logits(200, 10, seed=21)
    k = torch.full((200,), 300)
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=0, kmax=1000)
    k_floor, delta = op(logits, masked, k, rounding="floor", **kw)
    k_trunc, delta_trunc = op(logits, masked, k, **kw, rounding="trunc")
    assert torch.equal(delta.cpu(), delta_trunc.cpu())
    step = (torch.tensor(10.0) * delta.cpu()).double()
    clear = (step - step.round()).abs() > 1e-5
    assert clear.sum() > 150 and (step[clear] < 0).any() and (step[clear] > 0).any()
    torch.testing.assert_close(k_floor.cpu()[clear], 300 + torch.floor(step[clear]).long())
    torch.testing.assert_close(k_trunc.cpu()[clear], 300 + torch.trunc(step[clear]).long())
    assert torch.equal(k_trunc.cpu() - k_floor.cpu() == 1, clear & (step < 0))


@kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("kdtype", [torch.int32, torch.int64], ids=str)
def test_dtypes(op, dtype, kdtype):
    logits, masked = random_logits(64, 10, dtype=dtype, seed=1)
    check_update_k(op, logits, masked, random_k(64, 800, 2, kdtype), alpha=0.7, mu=25.0, n=5,
                   kmin=156, kmax=627)


@kernels
def test_mixed_logit_dtypes(op):
    logits, masked = random_logits(16, 10, seed=4)
    check_update_k(op, logits.half(), masked, torch.full((16,), 300), alpha=0.8, mu=10.0, n=5,
                   kmin=0, kmax=1000)


@kernels
def test_ties_rank_the_lower_class_first(op):
    # Classes 1 and 3 tie for the top p; class 1 is c1. The masked logits move them apart, so
    # picking class 3 first would change delta1.
    logits = torch.tensor([[0.0, 2.0, 1.0, 2.0, -1.0]])
    masked = torch.tensor([[0.0, 1.0, 1.0, 3.0, -1.0]])
    k_new, delta = check_update_k(op, logits, masked, torch.tensor([50]), alpha=1.0, mu=10.0, n=1,
                                  kmin=0, kmax=100)
    p, q = torch.softmax(logits, 1)[0], torch.softmax(masked, 1)[0]
    assert delta.item() == pytest.approx((q[1] - p[1]).item(), abs=1e-7)
    assert k_new.item() == 50 + int(torch.floor(10 * delta).item())

    # Equal p everywhere: c1, c2, ... are classes 0, 1, ...; q tells which ones were taken.
    logits = torch.zeros(3, 6)
    masked = torch.tensor([[5.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 5.0], [0, 5.0, 0, 0, 0, 0]])
    _, delta = check_update_k(op, logits, masked, torch.tensor([50, 50, 50], dtype=torch.int32),
                              alpha=0.7, mu=100.0, n=2, kmin=0, kmax=100)
    assert delta[0] > 0 > delta[1] and delta[2] > 0 and delta[0] != delta[2]

    # Three tied top classes and a row of all-equal logits, for every n up to C; the masked
    # logits differ per class so that the chosen classes show in delta.
    B, C = 8, 12
    logits = torch.zeros(B, C)
    logits[:, 3] = logits[:, 7] = logits[:, 9] = 2.0
    logits[1] = 1.0
    masked = torch.arange(C, dtype=torch.float32).repeat(B, 1) / 4
    for n in (1, 2, 3, 4, 12):
        check_update_k(op, logits, masked, torch.full((B,), 50), alpha=0.6, mu=100.0, n=n, kmin=0, kmax=100)


@kernels
def test_all_equal_logits(op):
    logits = torch.zeros(4, 7)
    masked = torch.randn(4, 7, generator=torch.Generator().manual_seed(3))
    check_update_k(op, logits, masked, torch.full((4,), 20), alpha=0.8, mu=10.0, n=5, kmin=0, kmax=49)


@kernels
@rounding
def test_clamped_to_kmin_and_kmax(op, rounding):
    # Masking raises the top class's probability by ~1: k grows by ~mu, clamped at kmax;
    # the opposite change shrinks k down to kmin.
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    masked = torch.tensor([[0.0, 5.0, 5.0], [-9.0, -9.0, 9.0]])
    k = torch.tensor([10, 48], dtype=torch.int32)
    k_new, _ = check_update_k(op, logits, masked, k, alpha=1.0, mu=1000.0, n=3, kmin=7, kmax=50,
                              rounding=rounding)
    assert k_new.tolist() == [7, 50]
    # k far outside [kmin, kmax] either way lands on the bound.
    logits, masked = random_logits(8, 10, seed=2)
    big = torch.full((8,), 10**6, dtype=torch.int64)
    k_new, _ = check_update_k(op, logits, masked, big, alpha=0.7, mu=10.0, n=5, kmin=3, kmax=900,
                              rounding=rounding)
    assert (k_new == 900).all()
    k_new, _ = check_update_k(op, logits, masked, -big, alpha=0.7, mu=10.0, n=5, kmin=3, kmax=900,
                              rounding=rounding)
    assert (k_new == 3).all()


@kernels
def test_extreme_logits(op):
    logits = torch.tensor([[1e4, 0.0, -1e4], [-80.0, -80.0, 90.0], [0.0, 0.0, 0.0],
                           [float("-inf"), 1.0, 2.0]])
    masked = torch.tensor([[-1e4, 1e4, 0.0], [90.0, -80.0, -80.0], [5.0, -5.0, 0.0],
                           [3.0, 1.0, float("-inf")]])
    k = torch.tensor([5, 5, 0, 9], dtype=torch.int32)
    k_new, _ = check_update_k(op, logits, masked, k, alpha=0.95, mu=1000.0, n=2, kmin=2, kmax=7)
    assert bool(((k_new >= 2) & (k_new <= 7)).all())


@kernels
@rounding
def test_nan_logits_give_nan_delta_and_kmin(op, rounding):
    logits, masked = random_logits(3, 10, seed=4)
    logits[1, 2] = float("nan")
    k_new, delta = check_update_k(op, logits, masked, torch.tensor([20, 20, 20]), alpha=0.9, mu=10.0,
                                  n=5, kmin=5, kmax=40, rounding=rounding)
    assert torch.isnan(delta[1]) and k_new[1] == 5
    logits = torch.tensor([[float("nan"), 1.0, 2.0], [0.0, 1.0, 2.0]])
    masked = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    k_new, delta = check_update_k(op, logits, masked, torch.tensor([5, 5]), alpha=0.9, mu=10.0, n=2,
                                  kmin=2, kmax=7, rounding=rounding)
    assert torch.isnan(delta[0]) and int(k_new[0]) == 2


@kernels
def test_infinite_and_nan_logits(op):
    logits, masked = random_logits(4, 8, seed=3)
    k = random_k(4, 200, 3)
    logits[0, 2] = float("inf")       # p: NaN in row 0 (inf - inf)
    logits[1, :4] = float("-inf")     # p = 0 for four classes, tied at the bottom
    masked[2, 5] = float("nan")       # q: NaN in row 2
    kw = dict(alpha=0.7, mu=10.0, n=5, kmin=0, kmax=300)
    _, delta = op(logits, masked, k, **kw)
    _, ref_delta = reference.update_k(logits, masked, k, **kw)
    torch.testing.assert_close(delta.cpu(), ref_delta, rtol=0, atol=1e-6, equal_nan=True)


@every_backend
def test_empty_batch(op):
    k_new, delta = op(torch.empty(0, 10), torch.empty(0, 10), torch.empty(0, dtype=torch.int64),
                      alpha=0.9, mu=10.0, n=5, kmin=0, kmax=5)
    assert k_new.shape == (0,) and delta.shape == (0,) and delta.dtype == torch.float32


@pytest.mark.parametrize("op", backends("update_k", ("cpu",)), indirect=True)
def test_threads_1_and_2_identical(op):
    logits, masked = random_logits(300, 100, seed=5)
    k = random_k(300, 500, 5)
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=100, kmax=400)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = op(logits, masked, k, **kw)
        torch.set_num_threads(2)
        b = op(logits, masked, k, **kw)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("op", backends("update_k", ("cuda", "triton")), indirect=True)
@rounding
def test_same_as_cpu_kernel(op, rounding):
    if "cpu" not in smoot_ext.available_backends("cpu", "update_k"):
        pytest.skip("the C++ CPU kernel is not built")
    logits, masked = random_logits(100, 10, seed=12)
    k = random_k(100, 600, 1)
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=100, kmax=500, rounding=rounding)
    k_dev, d_dev = op(logits, masked, k, **kw)
    k_cpu, d_cpu = torch.ops.smoot.update_k(logits, masked, k, **kw)
    torch.testing.assert_close(d_dev.cpu(), d_cpu, rtol=0, atol=1e-6)
    x = 10.0 * d_cpu.double()
    assert bool(((k_dev.cpu() == k_cpu) | ((x - x.round()).abs() < 1e-5)).all())


@pytest.mark.parametrize("op", backends("update_k", ("triton",)), indirect=True)
def test_same_as_cuda_kernel(op):
    if op.interpreted:
        pytest.skip("the CUDA kernel's tensors live on a GPU: runs for Triton on a GPU")
    if "cuda" not in smoot_ext.available_backends("cuda", "update_k"):
        pytest.skip("the CUDA kernel is not built")
    logits, masked = random_logits(1024, 100, seed=4)
    args = [t.cuda() for t in (logits, masked, random_k(1024, 200, 4))]
    kw = dict(alpha=0.8, mu=10.0, n=5, kmin=10, kmax=190)
    k_new, delta = op(*args, **kw)
    cuda_k, cuda_delta = torch.ops.smoot.update_k(*args, **kw)
    torch.testing.assert_close(delta, cuda_delta, rtol=0, atol=1e-6)
    assert (k_new != cuda_k).sum() <= 2  # only where mu * delta is within 1e-5 of an integer


@pytest.mark.parametrize("op", backends("update_k", ("cuda",)), indirect=True)
def test_graph_capture_then_replay(op):
    logits, masked = random_logits(40, 10, seed=8)
    k = random_k(40, 600, 0)
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=100, kmax=500)
    sl, sm, sk = logits.cuda(), masked.cuda(), k.cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.ops.smoot.update_k(sl, sm, sk, **kw)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        k_new, delta = torch.ops.smoot.update_k(sl, sm, sk, **kw)
    new_logits, new_masked = random_logits(40, 10, seed=9)
    sl.copy_(new_logits)
    sm.copy_(new_masked)
    graph.replay()
    torch.cuda.synchronize()
    assert_update_k_matches_reference(k_new, delta, new_logits, new_masked, k, **kw)


def expected_k(k, delta, *, mu, kmin, kmax, rounding):
    """SPEC step 4 from a backend's own delta, independently: one float32 product (numpy's),
    rounded, bounded by 2**62 (NaN to the low bound), added to k in Python integers."""
    t = np.float32(mu) * delta.numpy()
    t = np.floor(t) if rounding == "floor" else np.trunc(t)
    bound = 2**62
    steps = [-bound if s != s else max(-bound, min(bound, int(s))) for s in t.tolist()]
    return [max(kmin, min(kmax, int(kb) + s)) for kb, s in zip(k.tolist(), steps)]


@every_backend
@rounding
@pytest.mark.parametrize("mu", [1e19, 1e30, 3e38, -1e30])
def test_huge_mu_bounds_the_step(op, mu, rounding):
    # Rows whose delta is > 0, < 0, exactly 0 (no change from masking) and NaN: a huge finite mu
    # takes k to kmax, kmin, leaves it, and NaN gives kmin, on every backend alike (no cast of
    # an out-of-range float, no wrap of k + step).
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0], [float("nan"), 1.0, 2.0]])
    masked = torch.tensor([[0.0, 5.0, 5.0], [-9.0, -9.0, 9.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    for kdtype in (torch.int32, torch.int64):
        k = torch.tensor([300, 300, 300, 300], dtype=kdtype)
        kw = dict(alpha=0.9, mu=mu, n=3, kmin=156, kmax=627, rounding=rounding)
        k_new, delta = (t.cpu() for t in op(logits, masked, k, **kw))
        assert delta[0] < 0 < delta[1] and delta[2] == 0 and torch.isnan(delta[3])
        up, down = (627, 156) if mu > 0 else (156, 627)
        assert k_new.dtype == kdtype and k_new.tolist() == [down, up, 300, 156]
        assert k_new.tolist() == reference.update_k(logits, masked, k, **kw)[0].tolist()


def mu_beside_integer(d: float, target: int, onto: bool) -> float:
    """A float32 mu whose float32 product with d rounds onto the integer `target` from an exact
    product just beside it (`onto`), or lands on the float just below (above, for a negative
    target) `target`: where a product kept in more precision, or fused, rounds differently."""
    d32 = np.float32(d)
    below = float(np.nextafter(np.float32(target), np.float32(0)))
    mu = np.float32(target / float(d32)) - np.float32(abs(target / float(d32))) * np.float32(2**-18)
    for _ in range(256):  # float32 steps through a window around target / d
        exact = float(mu) * float(d32)  # exact: 24 x 24 bits fit in a double
        t = float(mu * d32)
        if (onto and t == target and exact != target) or (not onto and t == below):
            return float(mu)
        mu = np.nextafter(mu, np.float32(np.inf))
    raise AssertionError(f"no float32 mu puts {d} * mu beside {target}")


@every_backend
@rounding
@pytest.mark.parametrize("onto", [True, False], ids=["rounds-onto", "just-below"])
@pytest.mark.parametrize("sign", [1, -1])
def test_step_beside_an_integer(op, rounding, onto, sign):
    # mu is tuned to this backend's own delta of row 0 so that mu * delta, one float32 product,
    # lies exactly on (or one float beside) an integer: k_new then depends on the product's
    # rounding, the floor / trunc and nothing else. Every row is checked against SPEC step 4.
    logits, masked = random_logits(16, 10, seed=21)
    if sign < 0:
        logits, masked = masked, logits
    k = random_k(16, 600, 3)
    kw = dict(alpha=0.95, n=5, kmin=-10**6, kmax=10**6, rounding=rounding)
    _, delta = op(logits, masked, k, mu=10.0, **kw)
    d = float(delta[0])
    assert d != 0
    target = 37 if d > 0 else -37
    mu = mu_beside_integer(d, target, onto)
    k_new, delta2 = (t.cpu() for t in op(logits, masked, k, mu=mu, **kw))
    assert torch.equal(delta2, delta.cpu())  # delta does not depend on mu
    assert k_new.tolist() == expected_k(k, delta2, mu=mu, kmin=kw["kmin"], kmax=kw["kmax"],
                                        rounding=rounding)
    # Row 0 is where a product rounded differently would show: check it by hand too.
    t = np.float32(mu) * np.float32(d)
    assert (float(t) == target) == onto
