"""Backends, inputs and comparisons shared by the op tests: each backend (C++ CPU, CUDA, Triton)
is checked against smoot_ext.reference on the same random, adversarial and real inputs.

A test takes the backends it runs on as a parameter of the ``op`` fixture (tests/conftest.py):
``backends(op, names)`` lists them, each skipped with the reason where it cannot run, and with
one run per setting of the backend's own knob (the CPU row loops' ISA, the CUDA launch plan).
"""
from __future__ import annotations

import dataclasses
import functools
import re

import pytest
import torch

import smoot_ext
from smoot_ext import reference

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_INT_VIEW = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
             torch.float64: torch.int64}


def random_case(B: int, G: int, S: int, M: int, *, dtype=torch.float32, score_dtype=None,
                k: str | int = "random", seed: int = 0, abs: bool = True) -> dict:
    """x (B,G,M), score (B,S,M) and k (B,) on the CPU; k="random" draws k[b] in [0, M]."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(B, G, M, generator=g) * 3 + 1).to(dtype)
    score = torch.randn(B, S, M, generator=g).to(score_dtype or dtype)
    if k == "random":
        kk = torch.randint(0, M + 1, (B,), generator=g)
    else:
        kk = torch.full((B,), int(k), dtype=torch.int64)
    return dict(x=x, score=score, k=kk, abs=abs)


def adversarial_cases(dtype=torch.float32) -> dict[str, dict]:
    """Named inputs that break careless selection or fill code (ties, NaN, +-0, +-inf, k edges)."""
    B, G, S, M = 6, 2, 3, 257
    base = random_case(B, G, S, M, dtype=dtype, seed=7)
    x, k = base["x"], base["k"]
    varying = torch.tensor([0, M, 1, M - 1, M // 2, 3])
    cases = {}
    cases["all_equal"] = dict(x=x, score=torch.ones(B, S, M, dtype=dtype), k=varying)
    cases["all_zero"] = dict(x=x, score=torch.zeros(B, S, M, dtype=dtype), k=varying)
    zeros = base["score"].clone()
    zeros[:, :, ::2] = 0.0
    zeros[:, :, 1::4] = -0.0
    cases["many_zeros_signed_zero"] = dict(x=x, score=zeros, k=k, abs=False)
    special = base["score"].clone()
    special[:, 0, ::5] = float("nan")
    special[:, 1, 1::7] = float("inf")
    special[:, 2, 2::11] = float("-inf")
    cases["nan_inf_abs"] = dict(x=x, score=special, k=varying)
    cases["nan_inf_signed"] = dict(x=x, score=special, k=varying, abs=False)
    cases["k_zero"] = dict(x=x, score=base["score"], k=torch.zeros(B, dtype=torch.int64))
    cases["k_all"] = dict(x=x, score=base["score"], k=torch.full((B,), M, dtype=torch.int32))
    few_levels = torch.randint(0, 3, (B, S, M), generator=torch.Generator().manual_seed(3)).to(dtype)
    cases["three_levels_ties"] = dict(x=x, score=few_levels, k=varying)
    cases["constant_x"] = dict(x=torch.full_like(x, 2.5), score=base["score"], k=k)
    nan_x = x.clone()
    nan_x[1, 0, 5] = float("nan")
    cases["nan_in_x"] = dict(x=nan_x, score=base["score"], k=torch.full((B,), 3))
    cases["single_unit"] = dict(**random_case(5, 3, 1, 1, dtype=dtype, seed=2))
    cases["empty_batch"] = dict(**random_case(0, 2, 2, 9, dtype=dtype))
    cases["zero_units"] = dict(x=torch.empty(3, 2, 0, dtype=dtype), score=torch.empty(3, 1, 0, dtype=dtype),
                               k=torch.zeros(3, dtype=torch.int64))
    return cases


def digits_case(dtype=torch.float32) -> dict:
    """Real 8x8 digit images scored by the input gradient of a fixed random linear classifier."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images[:64], dtype=torch.float32).view(64, 1, 64) / 16
    w = torch.randn(10, 64, generator=torch.Generator().manual_seed(0))
    score = w[torch.tensor(labels[:64])].view(64, 1, 64)  # d logit_y / d x for a linear model
    k = torch.full((64,), 32, dtype=torch.int64)
    return dict(x=x.to(dtype), score=score.to(dtype), k=k)


def _ordered(t: torch.Tensor) -> torch.Tensor:
    """Floats as integers whose difference counts ulps (sign-magnitude -> two's complement)."""
    bits = t.view(_INT_VIEW[t.dtype]).to(torch.int64)
    top = {torch.int16: 0x7FFF, torch.int32: 0x7FFFFFFF, torch.int64: 0x7FFFFFFFFFFFFFFF}
    return torch.where(bits < 0, -(bits & top[_INT_VIEW[t.dtype]]), bits)


def ulp_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise distance in ulps of a's dtype (float64 fills are float32 values: ulps of fp32)."""
    if a.dtype == torch.float64:
        a, b = a.float(), b.float()
    d = (_ordered(a) - _ordered(b)).abs()
    both_nan = torch.isnan(a) & torch.isnan(b)
    return torch.where(both_nan, torch.zeros_like(d), d)


def assert_matches_reference(out, masked, x, score, k, *, abs=True, fill="uniform", value=0.0,
                             seed=0, offset=0, real_units=None, ref=None):
    """A backend's (out, mask) for (x, score, k) equals the reference's, as docs/SPEC.md demands:
    mask and kept values bit for bit, uniform/constant fills within 1 ulp, mean within 1e-5.
    With ``real_units`` (B,), the reference is SPEC's Padding (reference.mask_padded); ``ref``,
    the reference's (out, mask) for these arguments where the caller has it already."""
    x, score, k = x.cpu(), score.cpu(), k.cpu()
    out, masked = out.cpu(), masked.cpu()
    kw = dict(abs=abs, fill=fill, value=value, seed=seed, offset=offset)
    if ref is not None:
        ref_out, ref_mask = (t.cpu() for t in ref)
    elif real_units is None:
        ref_out, ref_mask = reference.mask(x, score, k, **kw)
    else:
        ref_out, ref_mask = reference.mask_padded(x, score, k, real_units.cpu(), **kw)
    assert masked.dtype == torch.bool and masked.shape == ref_mask.shape
    assert out.dtype == x.dtype and out.shape == x.shape
    bad = (masked != ref_mask).nonzero()
    assert bad.numel() == 0, f"mask differs from the reference at (b, m) = {bad[:5].tolist()}"
    kept = ~ref_mask.unsqueeze(1).expand_as(x)
    assert torch.equal(out[kept].view(_INT_VIEW[x.dtype]), x[kept].view(_INT_VIEW[x.dtype])), \
        "kept values are not copied bit for bit"
    filled, ref_filled = out[~kept], ref_out[~kept]
    if fill == "mean":
        torch.testing.assert_close(filled.float(), ref_filled.float(), equal_nan=True,
                                   rtol=max(1e-5, torch.finfo(x.dtype).eps), atol=1e-6)
    else:
        dist = ulp_distance(filled, ref_filled)
        assert dist.numel() == 0 or int(dist.max()) <= 1, (
            f"fill differs from the reference by up to {int(dist.max())} ulp "
            f"(first at {(dist > 1).nonzero()[:3].tolist()})")


def random_logits(B: int, C: int, dtype=torch.float32, seed: int = 0, scale: float = 3.0):
    """(logits, logits_masked): masking perturbs the logits by a third of their scale."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, C, generator=g) * scale
    masked = logits + torch.randn(B, C, generator=g) * scale / 3
    return logits.to(dtype), masked.to(dtype)


def assert_update_k_matches_reference(k_new, delta, logits, logits_masked, k, **kw):
    """docs/SPEC.md: delta within 1e-6; k_new equal except where mu * delta is within 1e-5 of an integer."""
    ref_k, ref_delta = reference.update_k(logits.cpu(), logits_masked.cpu(), k.cpu(), **kw)
    k_new, delta = k_new.cpu(), delta.cpu()
    assert k_new.dtype == k.dtype and delta.dtype == torch.float32
    assert k_new.shape == k.shape and delta.shape == k.shape
    torch.testing.assert_close(delta, ref_delta, rtol=0, atol=1e-6, equal_nan=True)
    step = kw["mu"] * ref_delta.double()
    near_integer = (step - step.round()).abs() < 1e-5
    bad = ((k_new != ref_k) & ~near_integer).nonzero()
    assert bad.numel() == 0, f"k_new differs at rows {bad[:5].flatten().tolist()}"


# ------------------------------------------------------------------------------------ backends

# Where each backend's tensors live: Triton runs on CPU tensors in its interpreter without a GPU.
# "fake" is the ops' fake rules: the op on meta tensors, as torch.compile traces it.
DEVICES = {"cpu": "cpu", "cuda": "cuda", "triton": "cuda" if torch.cuda.is_available() else "cpu",
           "reference": "cpu", "fake": "meta"}
# Each backend's own knob, one test run per setting: environment variables the kernels read on
# every call. (Triton's block sizes are per test: the triton_blocks marker.)
KNOBS = {"mask": {"cpu": ("SMOOT_CPU_ISA", ("baseline", "auto")),
                  "cuda": ("SMOOT_CUDA_MASK_PATH", ("row", "split"))},
         "update_k": {}}
KERNELS = ("cpu", "cuda", "triton")  # compared with the reference
ALL = KERNELS + ("reference",)       # for properties that need no reference to compare with


@dataclasses.dataclass(frozen=True)
class Backend:
    """One backend of one op ("mask" or "update_k"), with the setting of its knob if it has one."""
    name: str
    op: str
    setting: str | None = None

    @property
    def device(self) -> str:
        return DEVICES[self.name]

    @property
    def interpreted(self) -> bool:
        """Triton kernels run in the interpreter (numpy): correct, but far slower than a GPU."""
        return self.name == "triton" and self.device == "cpu"

    def __str__(self) -> str:
        return self.name if self.setting is None else f"{self.name}-{self.setting}"


@functools.cache
def why_missing(name: str, op: str) -> str | None:
    """Why backend `name` cannot run `op` here (None if it can)."""
    device = DEVICES[name]
    if name == "fake":
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return f"{name}: needs a CUDA GPU, and none is visible"
    if name not in smoot_ext.available_backends(device, op):
        return f"{name}: " + smoot_ext.build_info()["backends"][f"{op}/{device}"]["missing"][name]
    return None


def backends(op: str, names=ALL, knobs: bool = True) -> list:
    """pytest params (for the indirect ``op`` fixture) of the named backends of `op`: one per
    setting of a backend's knob, or one with the default setting if not `knobs`."""
    params = []
    for name in names:
        _, settings = KNOBS[op].get(name, (None, (None,))) if knobs else (None, (None,))
        why = why_missing(name, op)
        for setting in settings:
            b = Backend(name, op, setting)
            params.append(pytest.param(b, id=str(b), marks=pytest.mark.skipif(why is not None, reason=why or "")))
    return params


class Runner:
    """Calls one backend's op on the backend's device; what the ``op`` fixture gives a test."""

    def __init__(self, backend: Backend, triton_blocks: dict):
        self.backend, self.name, self.device = backend, backend.name, backend.device
        self.interpreted = backend.interpreted
        self.fn = self._op(triton_blocks)

    def _op(self, triton_blocks: dict):
        if self.name == "reference":
            return getattr(reference, self.backend.op)
        if self.name == "fake":
            return getattr(torch.ops.smoot, self.backend.op)
        if self.name == "triton":
            if self.backend.op == "mask" and triton_blocks:
                from smoot_ext.triton import mask as triton_mask

                return functools.partial(triton_mask.launch, **triton_blocks)
            return getattr(torch.ops.smoot, f"{self.backend.op}_triton")
        return getattr(torch.ops.smoot, self.backend.op)

    def __call__(self, *tensors, **kw):
        try:
            out = self.fn(*(t.to(self.device) for t in tensors), **kw)
        except ValueError as e:
            if self.backend.setting == "row":
                skip_if_row_plan_cannot_hold(e, tensors[0].shape[-1])
            raise
        if self.device == "cuda":
            torch.cuda.synchronize()  # an asynchronous error shows here, in the test that caused it
        return out


def skip_if_row_plan_cannot_hold(error: ValueError, M: int) -> None:
    """Skip, saying why, where the CUDA row plan (forced) refuses a row: it keeps the row's keys,
    4 bytes a unit, and a few KiB of block state in one block's shared memory, and the refusal
    must name this device's opt-in limit."""
    found = re.search(r"need (\d+) bytes of shared memory, the device allows (\d+)", str(error))
    if not found:
        return
    need, allows = map(int, found.groups())
    limit = torch.cuda.get_device_properties(torch.cuda.current_device()).shared_memory_per_block_optin
    assert allows == limit < need and 4 * M < need <= 4 * M + 16384, str(error)
    pytest.skip(f"the CUDA row plan needs {need} B of shared memory per block for M = {M}; "
                f"this GPU allows {limit} B")


def check(run: Runner, case: dict, **kw):
    """Mask a case (x, score, k and maybe abs) with one backend and compare with the reference;
    returns the backend's (out, mask), on its device."""
    kw = dict(abs=case.get("abs", True), **kw)
    out, masked = run(case["x"], case["score"], case["k"], **kw)
    assert out.device.type == masked.device.type == torch.device(run.device).type
    assert_matches_reference(out, masked, case["x"], case["score"], case["k"], **kw)
    return out, masked


def check_update_k(run: Runner, logits, logits_masked, k, **kw):
    """update_k with one backend, compared with the reference; returns (k_new, delta) on the CPU."""
    k_new, delta = run(logits, logits_masked, k, **kw)
    assert k_new.device.type == torch.device(run.device).type
    assert_update_k_matches_reference(k_new, delta, logits, logits_masked, k, **kw)
    return k_new.cpu(), delta.cpu()
