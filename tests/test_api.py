"""The public API (smoot_ext.mask / update_k): layouts, randomness, errors, torch.library glue."""
import pytest
import torch
from cases import KERNELS, assert_matches_reference, backends, random_case

import smoot_ext
from smoot_ext import reference

CPU_BACKENDS = smoot_ext.available_backends("cpu")
HAS_CPU_KERNEL = "cpu" in CPU_BACKENDS
needs_cpu_kernel = pytest.mark.skipif(not HAS_CPU_KERNEL, reason="C++ CPU kernel not built")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_nchw_pixel_layout(backend):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 6, 5, generator=g)
    grad = torch.randn(4, 3, 6, 5, generator=g)
    k = torch.tensor([0, 7, 15, 30])
    out, masked = smoot_ext.mask(x, grad, k, unit="pixel", seed=3, offset=8, backend=backend)
    assert out.shape == x.shape and masked.shape == (4, 6, 5)
    assert torch.equal(masked.flatten(1).sum(1), k)
    assert_matches_reference(out.view(4, 3, 30), masked.view(4, 30), x.view(4, 3, 30),
                             grad.view(4, 3, 30), k, seed=3, offset=8)
    # A pixel is masked in every channel or in none.
    changed = (out != x)
    assert not (changed & ~masked.unsqueeze(1)).any()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_pixel_score_with_one_channel(backend):
    x = torch.randn(2, 3, 4, 4)
    grad = torch.randn(2, 1, 4, 4)
    _, masked = smoot_ext.mask(x, grad, 5, unit="pixel", seed=0, backend=backend)
    expected = reference.select_lowest(grad.abs().view(2, 16), torch.tensor([5, 5]))
    assert torch.equal(masked.view(2, 16), expected)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_tokens_and_flat_layouts(backend):
    x = torch.randn(3, 10, 4)  # (B, T, D): a token is one unit of D values
    grad = torch.randn(3, 10, 4)
    out, masked = smoot_ext.mask(x, grad, 4, unit="pixel", seed=1, backend=backend)
    assert masked.shape == (3, 10)
    assert_matches_reference(out.transpose(1, 2), masked, x.transpose(1, 2), grad.transpose(1, 2),
                             torch.full((3,), 4), seed=1)
    flat, flat_grad = x.reshape(3, 40), grad.reshape(3, 40)
    out, masked = smoot_ext.mask(flat, flat_grad, 12, seed=1, backend=backend)
    assert masked.shape == (3, 40)
    assert_matches_reference(out.view(3, 1, 40), masked, flat.view(3, 1, 40), flat_grad.view(3, 1, 40),
                             torch.full((3,), 12), seed=1)


def test_num_units():
    x = torch.zeros(2, 3, 5, 7)
    assert smoot_ext.num_units(x, "pixel") == 35
    assert smoot_ext.num_units(x, "feature") == 105
    assert smoot_ext.num_units(torch.zeros(2, 9, 4), "pixel") == 9


def test_generator_draws_and_advances():
    x, s = torch.randn(2, 50), torch.randn(2, 50)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, _ = smoot_ext.mask(x, s, 20, generator=g1)
    b, _ = smoot_ext.mask(x, s, 20, generator=g2)
    c, _ = smoot_ext.mask(x, s, 20, generator=g1)
    assert torch.equal(a, b)      # same generator state: same fill
    assert not torch.equal(a, c)  # the generator was advanced: a new fill
    torch.manual_seed(0)
    d, _ = smoot_ext.mask(x, s, 20)
    torch.manual_seed(0)
    e, _ = smoot_ext.mask(x, s, 20)
    assert torch.equal(d, e)      # the default generator is used when none is given


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_batch_split_with_offsets(backend):
    case = random_case(32, 3, 3, 100, seed=4)
    x, s, k = case["x"], case["score"], case["k"]
    full = smoot_ext.mask(x, s, k, seed=77, offset=12, backend=backend)
    head = smoot_ext.mask(x[:16], s[:16], k[:16], seed=77, offset=12, backend=backend)
    tail = smoot_ext.mask(x[16:], s[16:], k[16:], seed=77, offset=12 + 16 * 3 * 100, backend=backend)
    assert torch.equal(full[0], torch.cat([head[0], tail[0]]))
    assert torch.equal(full[1], torch.cat([head[1], tail[1]]))


# ------------------------------------------------------------------------------- autograd, compile

@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_gradcheck_wrt_x(backend):
    x = torch.randn(3, 2, 6, 1, dtype=torch.float64, requires_grad=True)
    s = torch.randn(3, 2, 6, 1, dtype=torch.float64)
    # A constant fill does not depend on x, so finite differences see only the kept identity.
    fn = lambda x: smoot_ext.mask(x, s, torch.tensor([0, 4, 6]), unit="pixel", fill="constant",
                                  value=0.5, seed=0, backend=backend)[0]
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_uniform_fill_gets_no_gradient(backend):
    x = torch.randn(4, 30, requires_grad=True)
    s = torch.randn(4, 30, requires_grad=True)
    out, masked = smoot_ext.mask(x, s, 10, seed=1, backend=backend)
    out.sum().backward()
    assert torch.equal(x.grad, (~masked).float())
    assert s.grad is None


# torch.library.opcheck (schema, autograd registration, fake rule, AOT dispatch) of every kernel
# backend's registered op: the C++ CPU one, Triton's (the interpreter without a GPU) and CUDA's
# where a GPU is present.
REGISTERED = {"cpu": "{op}", "cuda": "{op}", "triton": "{op}_triton"}
OPCHECKS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


def _opcheck(op, *tensors, **kwargs):
    overload = getattr(torch.ops.smoot, REGISTERED[op.name].format(op=op.backend.op)).default
    # AOT dispatch traces a triton_op's body with fake tensors, which the interpreter's kernels
    # cannot run on (they read the data): that check needs compiled kernels, i.e. a GPU.
    checks = OPCHECKS[:-1] if op.interpreted else OPCHECKS
    torch.library.opcheck(overload, tuple(t.to(op.device) for t in tensors), kwargs, test_utils=checks)


@pytest.mark.parametrize("op", backends("mask", KERNELS, knobs=False), indirect=True)
def test_opcheck_mask(op):
    case = random_case(4, 3, 2, 40, seed=1)
    for fill in ("uniform", "constant", "mean"):
        x = case["x"].to(op.device).requires_grad_()
        _opcheck(op, x, case["score"], case["k"], abs=True, fill=fill, value=1.0, seed=3, offset=4)


@pytest.mark.parametrize("op", backends("update_k", KERNELS, knobs=False), indirect=True)
@pytest.mark.parametrize("rounding", ["floor", "trunc"])
def test_opcheck_update_k(op, rounding):
    logits, masked = torch.randn(8, 10), torch.randn(8, 10)
    k = torch.randint(100, 600, (8,))
    _opcheck(op, logits, masked, k, alpha=0.95, mu=10.0, n=5, kmin=156, kmax=627, rounding=rounding)


def test_compile_fullgraph():
    def step(x, grad, k, logits, logits_masked):
        out, masked = smoot_ext.mask(x, grad, k, unit="pixel", seed=11, offset=0)
        k_new, delta = smoot_ext.update_k(logits, logits_masked, k, alpha=0.95, mu=10.0, n=5,
                                          kmin=3, kmax=12)
        return out * 2, masked, k_new, delta

    x, grad = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    k = torch.tensor([3, 5, 8, 12])
    logits, logits_masked = torch.randn(4, 10), torch.randn(4, 10)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(x, grad, k, logits, logits_masked), step(x, grad, k, logits, logits_masked)):
        assert torch.equal(got, want)


# ------------------------------------------------------------------------------------------ errors

def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_mask_errors_name_the_argument():
    x, s = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    _raises(TypeError, "x: expected a floating-point", smoot_ext.mask, x.long(), s, 2)
    _raises(TypeError, "score: expected a floating-point", smoot_ext.mask, x, s.int(), 2)
    _raises(ValueError, "score: expected x's shape", smoot_ext.mask, x, s[:, :, :3], 2)
    _raises(ValueError, "score: expected shape", smoot_ext.mask, x, s[:1], 2, unit="pixel")
    _raises(ValueError, "score: expected shape", smoot_ext.mask, x, s[:, :2], 2, unit="pixel")
    _raises(ValueError, r"k: expected 0 <= k <= M = 16, got 17", smoot_ext.mask, x, s, 17, unit="pixel")
    _raises(ValueError, r"k: expected 0 <= k <= M = 48, got -1", smoot_ext.mask, x, s, -1)
    _raises(ValueError, r"k: expected 0 <= k\[b\] <= M = 16", smoot_ext.mask, x, s,
            torch.tensor([3, 17]), unit="pixel")
    _raises(TypeError, "k: expected dtype torch.int32 or torch.int64, got torch.float32", smoot_ext.mask, x, s,
            torch.tensor([1.0, 2.0]))
    _raises(TypeError, "k: expected an int", smoot_ext.mask, x, s, 2.5)
    _raises(TypeError, "score: expected a tensor, got list", smoot_ext.mask, x, [0.0], 2)
    _raises(ValueError, r"k: expected shape \(2,\) to match x of shape \(2, 1, 48\), got \(3,\)", smoot_ext.mask,
            x, s, torch.tensor([1, 2, 3]))
    _raises(ValueError, "fill: expected one of", smoot_ext.mask, x, s, 2, fill="zeros")
    _raises(ValueError, "unit: expected one of", smoot_ext.mask, x, s, 2, unit="channel")
    _raises(ValueError, "x: unit='pixel' needs", smoot_ext.mask, x.flatten(1), s.flatten(1), 2, unit="pixel")
    _raises(ValueError, "backend: expected one of", smoot_ext.mask, x, s, 2, backend="fast")
    _raises(ValueError, "backend: 'cuda' is not available", smoot_ext.mask, x, s, 2, backend="cuda")
    _raises(ValueError, "score: expected a tensor on x's device", smoot_ext.mask, x, s.to("meta"), 2)
    _raises(ValueError, "offset: expected >= 0", smoot_ext.mask, x, s, 2, seed=1, offset=-4)


def test_update_k_errors_name_the_argument():
    logits, k = torch.randn(4, 10), torch.full((4,), 50)
    _raises(ValueError, "kmin: expected kmin <= kmax", smoot_ext.update_k, logits, logits, k, kmin=60, kmax=50)
    _raises(ValueError, "logits_masked: expected logits' shape", smoot_ext.update_k, logits, logits[:, :5], k,
            kmin=0, kmax=9)
    _raises(TypeError, "logits: expected a floating-point", smoot_ext.update_k, logits.long(), logits, k,
            kmin=0, kmax=9)
    _raises(TypeError, "k: expected dtype torch.int32 or torch.int64", smoot_ext.update_k, logits, logits,
            k.float(), kmin=0, kmax=9)
    _raises(TypeError, "k: expected a tensor, got list", smoot_ext.update_k, logits, logits, [50] * 4,
            kmin=0, kmax=9)
    _raises(ValueError, r"k: expected shape \(4,\)", smoot_ext.update_k, logits, logits, k[:2], kmin=0, kmax=9)
    _raises(ValueError, "n: expected >= 1", smoot_ext.update_k, logits, logits, k, n=0, kmin=0, kmax=9)


def test_empty_inputs():
    out, masked = smoot_ext.mask(torch.empty(0, 3, 4, 4), torch.empty(0, 3, 4, 4), 5, unit="pixel")
    assert out.shape == (0, 3, 4, 4) and masked.shape == (0, 4, 4)
    x = torch.randn(3, 2, 0, 4)
    out, masked = smoot_ext.mask(x, x, 0, unit="pixel")
    assert torch.equal(out, x) and masked.shape == (3, 0, 4)


@pytest.mark.skipif(torch.version.cuda is None, reason="torch was built without CUDA")
def test_cuda_kernels_registered_when_built():
    # Runs without a GPU too: registration happens when the library loads.
    if not smoot_ext.build_info()["built"]["cuda_kernels"]:
        pytest.skip("smoot_ext._C was built without its CUDA kernels (SMOOT_SKIP_CUDA or no nvcc)")
    assert "cuda" in smoot_ext.available_backends("cuda", "mask")
    assert "cuda" in smoot_ext.available_backends("cuda", "update_k")


def test_import_is_light_where_triton_cannot_run():
    # No GPU and no interpreter: the Triton ops are not registered, so neither triton nor
    # torch._dynamo/_inductor (seconds of import) is loaded by `import smoot_ext`.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    code = ("import sys, smoot_ext; "
            "print(sorted(m for m in ('triton', 'torch._dynamo', 'torch._inductor') if m in sys.modules)); "
            "print(smoot_ext.available_backends('cpu'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert "triton" not in out[1] and "reference" in out[1]
