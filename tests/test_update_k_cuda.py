"""The CUDA C++ kernel of smoot::update_k against the reference (docs/SPEC.md) and the CPU kernel.

Needs a GPU and an extension built with CUDA; otherwise every test skips with the reason.
"""
import pytest
import torch
from cases import assert_update_k_matches_reference, needs_cuda_kernel, random_logits

_has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key
pytestmark = needs_cuda_kernel("update_k")


def run(logits, masked, k, **kw):
    out = torch.ops.smoot.update_k(logits.cuda(), masked.cuda(), k.cuda(), **kw)
    torch.cuda.synchronize()
    return out


@pytest.mark.parametrize("C", [1, 2, 10, 33, 100, 1000])
@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_random(C, n):
    B = 37
    logits, masked = random_logits(B, C, seed=C * 100 + n)
    k = torch.randint(0, 500, (B,), generator=torch.Generator().manual_seed(n))
    kw = dict(alpha=0.95, mu=10.0, n=n, kmin=100, kmax=400)
    assert_update_k_matches_reference(*run(logits, masked, k, **kw), logits, masked, k, **kw)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("kdtype", [torch.int32, torch.int64], ids=str)
def test_dtypes(dtype, kdtype):
    logits, masked = random_logits(64, 10, dtype=dtype, seed=1)
    k = torch.randint(0, 800, (64,), generator=torch.Generator().manual_seed(2)).to(kdtype)
    kw = dict(alpha=0.7, mu=25.0, n=5, kmin=156, kmax=627)
    assert_update_k_matches_reference(*run(logits, masked, k, **kw), logits, masked, k, **kw)


def test_mixed_logit_dtypes():
    logits, masked = random_logits(16, 10, seed=4)
    k = torch.full((16,), 300)
    kw = dict(alpha=0.8, mu=10.0, n=5, kmin=0, kmax=1000)
    out = run(logits.half(), masked, k, **kw)
    assert_update_k_matches_reference(*out, logits.half(), masked, k, **kw)


def test_ties_rank_by_lower_index():
    # Equal logits give equal p: the ranking must take the lower class index first, and the
    # masked logits differ per class so that the chosen classes show in delta.
    B, C = 8, 12
    logits = torch.zeros(B, C)
    logits[:, 3] = logits[:, 7] = logits[:, 9] = 2.0
    logits[1] = 1.0  # a row of all-equal logits
    masked = torch.arange(C, dtype=torch.float32).repeat(B, 1) / 4
    k = torch.full((B,), 50)
    for n in (1, 2, 3, 4, 12):
        kw = dict(alpha=0.6, mu=100.0, n=n, kmin=0, kmax=100)
        assert_update_k_matches_reference(*run(logits, masked, k, **kw), logits, masked, k, **kw)


def test_extreme_logits_and_clamping():
    logits = torch.tensor([[1e4, 0.0, -1e4], [-80.0, -80.0, 90.0], [0.0, 0.0, 0.0],
                           [float("-inf"), 1.0, 2.0]])
    masked = torch.tensor([[-1e4, 1e4, 0.0], [90.0, -80.0, -80.0], [5.0, -5.0, 0.0],
                           [3.0, 1.0, float("-inf")]])
    k = torch.tensor([5, 5, 0, 9], dtype=torch.int32)
    kw = dict(alpha=0.95, mu=1000.0, n=2, kmin=2, kmax=7)
    k_new, delta = run(logits, masked, k, **kw)
    assert bool(((k_new.cpu() >= 2) & (k_new.cpu() <= 7)).all())
    assert_update_k_matches_reference(k_new, delta, logits, masked, k, **kw)


def test_nan_logits_give_nan_delta_and_kmin():
    logits = torch.tensor([[float("nan"), 1.0, 2.0], [0.0, 1.0, 2.0]])
    masked = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    k = torch.tensor([5, 5])
    kw = dict(alpha=0.9, mu=10.0, n=2, kmin=2, kmax=7)
    k_new, delta = run(logits, masked, k, **kw)
    assert torch.isnan(delta[0]) and int(k_new[0]) == 2
    assert_update_k_matches_reference(k_new, delta, logits, masked, k, **kw)


def test_empty_batch():
    k_new, delta = run(torch.zeros(0, 10), torch.zeros(0, 10), torch.zeros(0, dtype=torch.int64),
                       alpha=0.9, mu=10.0, n=5, kmin=0, kmax=5)
    assert k_new.shape == (0,) and delta.shape == (0,)


def test_graph_capture_then_replay():
    logits, masked = random_logits(40, 10, seed=8)
    k = torch.randint(0, 600, (40,), generator=torch.Generator().manual_seed(0))
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


@pytest.mark.skipif(not _has_kernel("smoot::update_k", "CPU"), reason="C++ CPU kernel not built")
def test_same_as_cpu_kernel():
    logits, masked = random_logits(100, 10, seed=12)
    k = torch.randint(0, 600, (100,), generator=torch.Generator().manual_seed(1))
    kw = dict(alpha=0.95, mu=10.0, n=5, kmin=100, kmax=500)
    k_gpu, d_gpu = run(logits, masked, k, **kw)
    k_cpu, d_cpu = torch.ops.smoot.update_k(logits, masked, k, **kw)
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, rtol=0, atol=1e-6)
    x = 10.0 * d_cpu.double()
    assert bool(((k_gpu.cpu() == k_cpu) | ((x - x.round()).abs() < 1e-5)).all())


@pytest.mark.parametrize("bad, match", [
    (dict(logits=torch.zeros(4)), "logits: expected a 2-D"),
    (dict(logits_masked=torch.zeros(4, 3)), "logits_masked: expected logits' shape"),
    (dict(k=torch.zeros(5, dtype=torch.int64)), "k: expected shape"),
    (dict(k=torch.zeros(4)), "k: expected dtype"),
    (dict(n=0), "n: expected >= 1"),
    (dict(kmin=5, kmax=4), "kmin: expected kmin <= kmax"),
])
def test_errors_name_the_argument(bad, match):
    args = dict(logits=torch.zeros(4, 10), logits_masked=torch.zeros(4, 10),
                k=torch.zeros(4, dtype=torch.int64), n=5, kmin=0, kmax=10)
    args.update(bad)
    tensors = [args[n].cuda() for n in ("logits", "logits_masked", "k")]
    with pytest.raises((ValueError, TypeError, RuntimeError), match=match):
        torch.ops.smoot.update_k(*tensors, alpha=0.9, mu=10.0, n=args["n"], kmin=args["kmin"],
                                 kmax=args["kmax"])
