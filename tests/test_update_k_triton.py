"""smoot::update_k_triton against the reference (in Triton's interpreter without a GPU)."""
import pytest
import torch
from cases import assert_update_k_matches_reference

from smoot_ext import reference

pytest.importorskip("smoot_ext.triton.update_k")

# The interpreter runs the kernel in numpy, which warns on the NaN of NaN/inf logits.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def check(logits, logits_masked, k, **kw):
    args = [t.to(DEVICE) for t in (logits, logits_masked, k)]
    k_new, delta = torch.ops.smoot.update_k_triton(*args, **kw)
    assert_update_k_matches_reference(k_new, delta, logits, logits_masked, k, **kw)
    return k_new.cpu(), delta.cpu()


def logits_case(B, C, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, C, generator=g) * 3
    masked = logits + torch.randn(B, C, generator=g)
    k = torch.randint(0, 200, (B,), generator=g)
    return logits.to(dtype), masked.to(dtype), k


@pytest.mark.parametrize("C, n", [(10, 5), (10, 1), (10, 10), (3, 7), (1, 5), (200, 12)])
def test_random(C, n):
    check(*logits_case(8, C, seed=C + n), alpha=0.7, mu=10.0, n=n, kmin=20, kmax=180)


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16, torch.float64), ids=str)
def test_logit_dtypes(dtype):
    check(*logits_case(16, 10, seed=1, dtype=dtype), alpha=0.95, mu=10.0, n=5, kmin=0, kmax=100)


def test_ties_rank_the_lower_class_first():
    # Equal p everywhere: c1, c2, ... are classes 0, 1, ...; q tells which ones were taken.
    logits = torch.zeros(3, 6)
    masked = torch.tensor([[5.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 5.0], [0, 5.0, 0, 0, 0, 0]])
    k = torch.tensor([50, 50, 50], dtype=torch.int32)
    _, delta = check(logits, masked, k, alpha=0.7, mu=100.0, n=2, kmin=0, kmax=100)
    assert delta[0] > 0 > delta[1] and delta[2] > 0 and delta[0] != delta[2]


def test_clamps_to_kmin_and_kmax():
    logits, masked, _ = logits_case(8, 10, seed=2)
    big = torch.full((8,), 10**6, dtype=torch.int64)
    k_new, _ = check(logits, masked, big, alpha=0.7, mu=10.0, n=5, kmin=3, kmax=900)
    assert (k_new == 900).all()
    k_new, _ = check(logits, masked, -big, alpha=0.7, mu=10.0, n=5, kmin=3, kmax=900)
    assert (k_new == 3).all()


def test_infinite_and_nan_logits():
    logits, masked, k = logits_case(4, 8, seed=3)
    logits[0, 2] = float("inf")       # p: NaN in row 0 (inf - inf)
    logits[1, :4] = float("-inf")     # p = 0 for four classes, tied at the bottom
    masked[2, 5] = float("nan")       # q: NaN in row 2
    args = [t.to(DEVICE) for t in (logits, masked, k)]
    kw = dict(alpha=0.7, mu=10.0, n=5, kmin=0, kmax=300)
    _, delta = torch.ops.smoot.update_k_triton(*args, **kw)
    _, ref_delta = reference.update_k(logits, masked, k, **kw)
    torch.testing.assert_close(delta.cpu(), ref_delta, rtol=0, atol=1e-6, equal_nan=True)


def test_empty_batch():
    k_new, delta = torch.ops.smoot.update_k_triton(
        torch.empty(0, 10, device=DEVICE), torch.empty(0, 10, device=DEVICE),
        torch.empty(0, dtype=torch.int64, device=DEVICE), alpha=0.7, mu=10.0, n=5, kmin=0, kmax=5)
    assert k_new.shape == (0,) and delta.shape == (0,)


def test_schema_matches_smoot_update_k():
    ours = str(torch.ops.smoot.update_k_triton.default._schema)
    theirs = str(torch.ops.smoot.update_k.default._schema)
    assert ours.replace("update_k_triton(", "update_k(", 1) == theirs


@pytest.mark.parametrize("change, error", [
    (dict(kmin=9, kmax=2), "kmin: expected kmin <= kmax"),
    (dict(n=0), "n: expected >= 1"),
    (dict(logits_masked=torch.zeros(4, 9)), r"logits_masked: expected a floating-point \(4, 10\)"),
    (dict(k=torch.zeros(3, dtype=torch.int64)), r"k: expected a \(4,\) int32 or int64 tensor"),
    (dict(logits=torch.zeros(4, 10, dtype=torch.int64)), "logits: expected a floating-point"),
])
def test_bad_input_names_the_argument(change, error):
    args = dict(logits=torch.zeros(4, 10), logits_masked=torch.zeros(4, 10),
                k=torch.zeros(4, dtype=torch.int64), alpha=0.7, mu=10.0, n=5, kmin=0, kmax=5)
    args.update(change)
    tensors = [args.pop(n).to(DEVICE) for n in ("logits", "logits_masked", "k")]
    with pytest.raises(ValueError, match=error):
        torch.ops.smoot.update_k_triton(*tensors, **args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_as_cuda_kernel():
    if not torch._C._dispatch_has_kernel_for_dispatch_key("smoot::update_k", "CUDA"):
        pytest.skip("the CUDA kernel is not built")
    args = [t.cuda() for t in logits_case(1024, 100, seed=4)]
    kw = dict(alpha=0.8, mu=10.0, n=5, kmin=10, kmax=190)
    k_new, delta = torch.ops.smoot.update_k_triton(*args, **kw)
    cuda_k, cuda_delta = torch.ops.smoot.update_k(*args, **kw)
    torch.testing.assert_close(delta, cuda_delta, rtol=0, atol=1e-6)
    assert (k_new != cuda_k).sum() <= 2  # only where mu * delta is within 1e-5 of an integer
