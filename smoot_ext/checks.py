"""Argument checks of ``smoot::mask`` and ``smoot::update_k`` (docs/SPEC.md, Errors) for the
backends written in Python: the Triton kernels, the reference and the fake (meta) rules.

They raise what ``csrc/common/checks.h`` raises for the C++ kernels, in the same order and word
for word (a test feeds the same bad inputs to every backend), so the C++ side prints shapes as
Python tuples, dtypes as ``torch.<name>`` and floats as ``repr`` does.
"""
from __future__ import annotations

import math

import torch

MASK_OP = "smoot::mask"
UPDATE_K_OP = "smoot::update_k"
FILLS = ("uniform", "constant", "mean")  # SPEC.md mask step 4; csrc/common/fill.h numbers them
ROUNDINGS = ("floor", "trunc")  # SPEC.md update_k step 4; csrc/common/rounding.h numbers them
INDEX_DTYPES = (torch.int32, torch.int64)


def _fail(error: type[Exception], op: str, arg: str, what: str):
    """``<op>: <argument>: <what was expected>, got <what came>``, as SMOOT_CHECK_* in C++."""
    raise error(f"{op}: {arg}: {what}")


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def _same_device(op: str, name: str, t: torch.Tensor, first_name: str, first: torch.Tensor) -> None:
    if t.device != first.device:
        _fail(ValueError, op, name, f"expected a tensor on {first_name} device {first.device}, "
                                    f"got one on {t.device}")


def _rank(op: str, name: str, t: torch.Tensor, dim: int, layout: str) -> None:
    if t.dim() != dim:
        _fail(ValueError, op, name, f"expected a {dim}-D {layout} tensor, got shape {_shape(t)}")


def _floating(op: str, name: str, t: torch.Tensor) -> None:
    if not t.is_floating_point():
        _fail(TypeError, op, name, f"expected a floating-point dtype, got {t.dtype}")


def _index_dtype(op: str, name: str, t: torch.Tensor) -> None:
    if t.dtype not in INDEX_DTYPES:
        _fail(TypeError, op, name, f"expected dtype torch.int32 or torch.int64, got {t.dtype}")


def check_mask(x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, *, fill: str,
               offset: int) -> tuple[int, int, int, int]:
    """Everything about ``smoot::mask``'s arguments but the values of k; returns (B, G, S, M)."""
    _same_device(MASK_OP, "score", score, "x's", x)
    _same_device(MASK_OP, "k", k, "x's", x)
    _rank(MASK_OP, "x", x, 3, "(B, G, M)")
    _rank(MASK_OP, "score", score, 3, "(B, S, M)")
    _rank(MASK_OP, "k", k, 1, "(B,)")
    _floating(MASK_OP, "x", x)
    _floating(MASK_OP, "score", score)
    _index_dtype(MASK_OP, "k", k)
    B, G, M = x.shape
    S = score.shape[1]
    if score.shape[0] != B or score.shape[2] != M or S < 1:
        _fail(ValueError, MASK_OP, "score", f"expected shape ({B}, S, {M}) with S >= 1 to match x of "
                                            f"shape {_shape(x)}, got {_shape(score)}")
    if k.shape[0] != B:
        _fail(ValueError, MASK_OP, "k", f"expected shape ({B},) to match x of shape {_shape(x)}, "
                                        f"got {_shape(k)}")
    if fill not in FILLS:
        _fail(ValueError, MASK_OP, "fill", f"expected one of 'uniform', 'constant', 'mean', got '{fill}'")
    if offset < 0:
        _fail(ValueError, MASK_OP, "offset", f"expected >= 0, got {offset}")
    return B, G, S, M


def check_per_row(op: str, name: str, ok: torch.Tensor, expected: str, got) -> None:
    """Every row's ``ok``: on the host for CPU tensors, as the C++ CPU kernel does, naming the
    first bad row as ``got(b)``; on the device otherwise (no host sync in a training step, no
    graph break under torch.compile)."""
    if ok.numel() == 0:
        return
    if ok.device.type == "cpu" and not torch.compiler.is_compiling():
        bad = (~ok).nonzero()
        if bad.numel():
            _fail(ValueError, op, name, f"{expected}, got {got(int(bad[0, 0]))}")
    else:
        torch._assert_async(ok.all(), f"{op}: {name}: {expected}")


def check_mask_k(k: torch.Tensor, M: int) -> None:
    """0 <= k[b] <= M (see check_per_row for where it is checked)."""
    check_per_row(MASK_OP, "k", (k >= 0) & (k <= M), f"expected 0 <= k[b] <= M = {M}",
                  lambda b: f"k[{b}] = {int(k[b])}")


def check_mask_k_flag(ok: torch.Tensor, k: torch.Tensor, M: int) -> None:
    """check_mask_k after kernels that read k themselves and cleared ``ok`` (one int32, 1 = every
    k in range) for a k outside [0, M]: the same error, naming the first bad row, on the host for
    CPU tensors; on the device one assert on the flag (no sync, nothing else launched)."""
    if ok.device.type == "cpu" and not torch.compiler.is_compiling():
        if not ok.item():
            check_mask_k(k, M)
            raise AssertionError(f"{MASK_OP}: the kernels flagged a k outside [0, {M}] that the host check passed")
    else:
        torch._assert_async(ok, f"{MASK_OP}: k: expected 0 <= k[b] <= M = {M}")


def check_update_k(logits: torch.Tensor, logits_masked: torch.Tensor, k: torch.Tensor, *,
                   alpha: float, mu: float, n: int, kmin: int, kmax: int,
                   rounding: str = "floor") -> tuple[int, int]:
    """All of ``smoot::update_k``'s arguments; returns (B, C)."""
    _same_device(UPDATE_K_OP, "logits_masked", logits_masked, "logits'", logits)
    _same_device(UPDATE_K_OP, "k", k, "logits'", logits)
    _rank(UPDATE_K_OP, "logits", logits, 2, "(B, C)")
    _rank(UPDATE_K_OP, "k", k, 1, "(B,)")
    _floating(UPDATE_K_OP, "logits", logits)
    _floating(UPDATE_K_OP, "logits_masked", logits_masked)
    _index_dtype(UPDATE_K_OP, "k", k)
    if logits_masked.shape != logits.shape:
        _fail(ValueError, UPDATE_K_OP, "logits_masked", f"expected logits' shape {_shape(logits)}, "
                                                        f"got {_shape(logits_masked)}")
    B, C = logits.shape
    if C < 1:
        _fail(ValueError, UPDATE_K_OP, "logits", f"expected C >= 1 classes, got shape {_shape(logits)}")
    if k.shape[0] != B:
        _fail(ValueError, UPDATE_K_OP, "k", f"expected shape ({B},) to match logits of shape "
                                            f"{_shape(logits)}, got {_shape(k)}")
    if n < 1:
        _fail(ValueError, UPDATE_K_OP, "n", f"expected >= 1, got {n}")
    if kmin > kmax:
        _fail(ValueError, UPDATE_K_OP, "kmin", f"expected kmin <= kmax, got kmin = {kmin} > kmax = {kmax}")
    alpha, mu = float(alpha), float(mu)
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        _fail(ValueError, UPDATE_K_OP, "alpha", f"expected a finite number in [0, 1], got {alpha!r}")
    if not math.isfinite(mu):
        _fail(ValueError, UPDATE_K_OP, "mu", f"expected a finite number, got {mu!r}")
    if rounding not in ROUNDINGS:
        _fail(ValueError, UPDATE_K_OP, "rounding", f"expected one of 'floor', 'trunc', got '{rounding}'")
    return B, C
