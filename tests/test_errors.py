"""Bad arguments give every backend's op the same error, type and message word for word
(docs/SPEC.md, Errors): csrc/common/checks.h for the C++ kernels, smoot_ext/checks.py for the
Triton kernels, the reference and the fake rules ("fake": meta tensors, what torch.compile traces).
"""
import pytest
import torch
from cases import ALL, backends

import smoot_ext


def _args(op: str, change: dict | None = None) -> tuple[dict, dict]:
    """Good (tensors, options) of `op`, with `change` applied to either."""
    if op == "mask":
        tensors, options = dict(x=torch.randn(2, 3, 10), score=torch.randn(2, 1, 10), k=torch.tensor([3, 4])), {}
    else:
        tensors = dict(logits=torch.randn(3, 10), logits_masked=torch.randn(3, 10), k=torch.tensor([4, 5, 6]))
        options = dict(alpha=0.9, mu=10.0, n=5, kmin=2, kmax=8)
    for name, value in (change or {}).items():
        (tensors if name in tensors else options)[name] = value
    return tensors, options


def _params(op: str, values) -> list:
    """(backend, value) params: every backend of `op` once (the knobs do not touch the checks),
    and the fake rules."""
    return [pytest.param(b.values[0], v, marks=b.marks, id=f"{v}-{b.id}")
            for b in backends(op, ALL + ("fake",), knobs=False) for v in values]


def _on(op, tensors: dict) -> list:
    return [t.to(op.device) for t in tensors.values()]


# name: (change to the good arguments, error, message after "smoot::<op>: ")
MASK = {
    "x_rank": (dict(x=torch.randn(2, 10)), ValueError, "x: expected a 3-D (B, G, M) tensor, got shape (2, 10)"),
    "score_rank": (dict(score=torch.randn(2, 10)), ValueError,
                   "score: expected a 3-D (B, S, M) tensor, got shape (2, 10)"),
    "k_rank": (dict(k=torch.tensor([[3, 4]])), ValueError, "k: expected a 1-D (B,) tensor, got shape (1, 2)"),
    "x_int": (dict(x=torch.ones(2, 3, 10, dtype=torch.int32)), TypeError,
              "x: expected a floating-point dtype, got torch.int32"),
    "score_int": (dict(score=torch.ones(2, 1, 10, dtype=torch.int64)), TypeError,
                  "score: expected a floating-point dtype, got torch.int64"),
    "k_float": (dict(k=torch.tensor([3.0, 4.0])), TypeError,
                "k: expected dtype torch.int32 or torch.int64, got torch.float32"),
    # dtype names on both sides: torch's own spelling, not ATen's (Half, BFloat16, Byte, Bool)
    "x_bool": (dict(x=torch.ones(2, 3, 10, dtype=torch.bool)), TypeError,
               "x: expected a floating-point dtype, got torch.bool"),
    "k_half": (dict(k=torch.tensor([3, 4], dtype=torch.float16)), TypeError,
               "k: expected dtype torch.int32 or torch.int64, got torch.float16"),
    "k_bfloat16": (dict(k=torch.tensor([3, 4], dtype=torch.bfloat16)), TypeError,
                   "k: expected dtype torch.int32 or torch.int64, got torch.bfloat16"),
    "k_uint8": (dict(k=torch.tensor([3, 4], dtype=torch.uint8)), TypeError,
                "k: expected dtype torch.int32 or torch.int64, got torch.uint8"),
    "k_complex": (dict(k=torch.tensor([3, 4], dtype=torch.complex64)), TypeError,
                  "k: expected dtype torch.int32 or torch.int64, got torch.complex64"),
    "score_B": (dict(score=torch.randn(3, 1, 10)), ValueError,
                "score: expected shape (2, S, 10) with S >= 1 to match x of shape (2, 3, 10), got (3, 1, 10)"),
    "score_M": (dict(score=torch.randn(2, 1, 11)), ValueError,
                "score: expected shape (2, S, 10) with S >= 1 to match x of shape (2, 3, 10), got (2, 1, 11)"),
    "score_S0": (dict(score=torch.randn(2, 0, 10)), ValueError,
                 "score: expected shape (2, S, 10) with S >= 1 to match x of shape (2, 3, 10), got (2, 0, 10)"),
    "k_B": (dict(k=torch.tensor([3, 4, 5])), ValueError,
            "k: expected shape (2,) to match x of shape (2, 3, 10), got (3,)"),
    "fill": (dict(fill="median"), ValueError, "fill: expected one of 'uniform', 'constant', 'mean', got 'median'"),
    "offset_negative": (dict(seed=1, offset=-4), ValueError, "offset: expected >= 0, got -4"),
}
# The values of k: checked on the host for CPU tensors. (On a GPU they are checked on the device,
# and a device-side assert ends the CUDA context: no test can catch it in this process.)
MASK_K_VALUES = {
    "k_negative": (torch.tensor([3, -1]), "k: expected 0 <= k[b] <= M = 10, got k[1] = -1"),
    "k_above_M": (torch.tensor([11, 4]), "k: expected 0 <= k[b] <= M = 10, got k[0] = 11"),
    "k_wraps_int32": (torch.tensor([3, 2**32 + 3]), "k: expected 0 <= k[b] <= M = 10, got k[1] = 4294967299"),
}
UPDATE_K = {
    "logits_rank": (dict(logits=torch.randn(3, 10, 1)), ValueError,
                    "logits: expected a 2-D (B, C) tensor, got shape (3, 10, 1)"),
    "k_rank": (dict(k=torch.tensor([[4, 5, 6]])), ValueError, "k: expected a 1-D (B,) tensor, got shape (1, 3)"),
    "logits_int": (dict(logits=torch.ones(3, 10, dtype=torch.int64)), TypeError,
                   "logits: expected a floating-point dtype, got torch.int64"),
    "masked_int": (dict(logits_masked=torch.ones(3, 10, dtype=torch.int32)), TypeError,
                   "logits_masked: expected a floating-point dtype, got torch.int32"),
    "k_float": (dict(k=torch.tensor([4.0, 5.0, 6.0])), TypeError,
                "k: expected dtype torch.int32 or torch.int64, got torch.float32"),
    "masked_shape": (dict(logits_masked=torch.randn(3, 11)), ValueError,
                     "logits_masked: expected logits' shape (3, 10), got (3, 11)"),
    "no_classes": (dict(logits=torch.randn(3, 0), logits_masked=torch.randn(3, 0)), ValueError,
                   "logits: expected C >= 1 classes, got shape (3, 0)"),
    "no_classes_no_rows": (dict(logits=torch.randn(0, 0), logits_masked=torch.randn(0, 0),
                                k=torch.zeros(0, dtype=torch.int64)), ValueError,
                           "logits: expected C >= 1 classes, got shape (0, 0)"),
    "k_shape": (dict(k=torch.tensor([4, 5])), ValueError,
                "k: expected shape (3,) to match logits of shape (3, 10), got (2,)"),
    "n_zero": (dict(n=0), ValueError, "n: expected >= 1, got 0"),
    "kmin_above_kmax": (dict(kmin=9, kmax=8), ValueError, "kmin: expected kmin <= kmax, got kmin = 9 > kmax = 8"),
    "mu_inf": (dict(mu=float("inf")), ValueError, "mu: expected a finite number, got inf"),
    "mu_minus_inf": (dict(mu=float("-inf")), ValueError, "mu: expected a finite number, got -inf"),
    "mu_nan": (dict(mu=float("nan")), ValueError, "mu: expected a finite number, got nan"),
    "rounding": (dict(rounding="round"), ValueError, "rounding: expected one of 'floor', 'trunc', got 'round'"),
    "rounding_case": (dict(rounding="Floor"), ValueError, "rounding: expected one of 'floor', 'trunc', got 'Floor'"),
}
# Bad alphas, printed as Python's repr prints them (fixed and scientific notation, both signs).
for alpha in (float("nan"), float("inf"), -float("inf"), 1.0000001, 1.5, 2.0, -0.5, -1e-300, -0.0001,
              -3e-05, 1e16, 123456789.125, 1e22, 1.7976931348623157e308):
    UPDATE_K[f"alpha_{alpha!r}"] = (dict(alpha=alpha), ValueError,
                                    f"alpha: expected a finite number in [0, 1], got {alpha!r}")
BAD = {"mask": MASK, "update_k": UPDATE_K}


@pytest.mark.parametrize("op, name", _params("mask", sorted(MASK)) + _params("update_k", sorted(UPDATE_K)),
                         indirect=["op"])
def test_bad_argument(op, name):
    change, error, message = BAD[op.backend.op][name]
    tensors, options = _args(op.backend.op, change)
    with pytest.raises(error) as e:
        op.fn(*_on(op, tensors), **options)
    assert str(e.value) == f"smoot::{op.backend.op}: {message}"


@pytest.mark.parametrize("op, arg", _params("mask", (1, 2)) + _params("update_k", (1, 2)), indirect=["op"])
def test_tensor_on_another_device(op, arg):
    # The 2nd or 3rd tensor elsewhere: on meta, and CPU <-> GPU where there is a GPU.
    if op.device == "meta":
        others = ["cpu"]
    else:
        others = ["meta"] + (["cpu" if op.device == "cuda" else "cuda"] if torch.cuda.is_available() else [])
    for other in others:
        tensors, options = _args(op.backend.op)
        names = list(tensors)
        placed = _on(op, tensors)
        placed[arg] = tensors[names[arg]].to(other)
        with pytest.raises(ValueError) as e:
            op.fn(*placed, **options)
        first = names[0] + ("'" if names[0].endswith("s") else "'s")
        assert str(e.value) == (f"smoot::{op.backend.op}: {names[arg]}: expected a tensor on {first} device "
                                f"{placed[0].device}, got one on {placed[arg].device}")


@pytest.mark.parametrize("op, name", _params("mask", sorted(MASK_K_VALUES)), indirect=["op"])
def test_mask_k_values(op, name):
    if op.device != "cpu":
        pytest.skip(f"k's values on {op.device} tensors are checked on the device, or not at all (fake)")
    k, message = MASK_K_VALUES[name]
    tensors, options = _args("mask", dict(k=k))
    with pytest.raises(ValueError) as e:
        op.fn(*_on(op, tensors), **options)
    assert str(e.value) == "smoot::mask: " + message


@pytest.mark.parametrize("op, alpha", _params("update_k", (0.0, 1.0, -0.0)), indirect=["op"])
def test_update_k_alpha_bounds_are_valid(op, alpha):
    tensors, options = _args("update_k", dict(alpha=alpha))
    k_new, delta = op.fn(*_on(op, tensors), **options)
    assert k_new.shape == delta.shape == (3,)


def test_public_api_passes_the_op_errors_on():
    x, s = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError) as e:
        smoot_ext.mask(x, s, 2, fill="zeros")
    assert str(e.value) == "smoot::mask: fill: expected one of 'uniform', 'constant', 'mean', got 'zeros'"
    with pytest.raises(ValueError) as e:
        smoot_ext.update_k(torch.randn(4, 10), torch.randn(4, 10), torch.full((4,), 5), alpha=float("nan"),
                           kmin=0, kmax=9)
    assert str(e.value) == "smoot::update_k: alpha: expected a finite number in [0, 1], got nan"
