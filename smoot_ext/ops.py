"""Public API of the masking ops: layouts, backend choice, op registration.

``mask`` and ``update_k`` take ordinary layouts (NCHW images, (B, T, D) token sequences, flat
(B, D) features), bring them to the ops' (B, G, M) layout of docs/SPEC.md, and call one backend:

- ``"cpu"``: the C++ kernel (``torch.ops.smoot.mask`` on CPU tensors),
- ``"cuda"``: the CUDA C++ kernel (``torch.ops.smoot.mask`` on CUDA tensors),
- ``"triton"``: the Triton kernel (``torch.ops.smoot.mask_triton``),
- ``"reference"``: the pure-PyTorch oracle (:mod:`smoot_ext.reference`),
- ``"auto"``: the fastest one available for the tensors' device.

The ops check their own arguments (csrc/common/checks.h, smoot_ext/checks.py: one wording on
every backend); this module checks only what is its own: units, backends and Python types.
"""
from __future__ import annotations

import importlib.util
import math
import os

import torch

from . import _autograd, padding, reference
from .checks import FILLS  # noqa: F401  (the fills mask() takes; the trainer and its CLI read them here)

BACKENDS = ("auto", "cpu", "cuda", "triton", "reference")
UNITS = ("feature", "pixel")

torch.library.register_fake("smoot::mask")(_autograd.fake_mask)
torch.library.register_fake("smoot::update_k")(_autograd.fake_update_k)
_autograd.setup_mask_autograd("smoot::mask")

# The Triton backend needs triton itself (absent on some CPU-only installs) and a GPU or
# Triton's CPU interpreter. Where it cannot run, its ops are not registered: that import pulls in
# torch._inductor, seconds of start-up that would buy nothing.
_HAS_TRITON = (importlib.util.find_spec("triton") is not None
               and importlib.util.find_spec(".triton", __package__) is not None
               and (os.environ.get("TRITON_INTERPRET") == "1" or torch.cuda.is_available()))
if _HAS_TRITON:
    from . import triton as _triton_ops  # noqa: F401  (registers smoot::mask_triton, ...)


# Which C++ kernels _C registered, read once: registrations are fixed once imported, and a
# dict of constants is something torch.compile traces without a graph break.
_KERNELS = {(op, key): torch._C._dispatch_has_kernel_for_dispatch_key(f"smoot::{op}", key)
            for op in ("mask", "update_k") for key in ("CPU", "CUDA")}


def available_backends(device: torch.device | str, op: str = "mask") -> list[str]:
    """Backends that can run ``op`` ("mask" or "update_k") on ``device``, fastest first
    (``backend="auto"`` takes the first)."""
    device = torch.device(device)
    found = []
    if device.type == "cpu" and _KERNELS[op, "CPU"]:
        found.append("cpu")
    if device.type == "cuda" and _KERNELS[op, "CUDA"]:
        found.append("cuda")
    if _HAS_TRITON and hasattr(torch.ops.smoot, f"{op}_triton") and (
            device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"):
        found.append("triton")
    found.append("reference")
    return found


def _resolve_backend(backend: str, device: torch.device, op: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    found = available_backends(device, op)
    if backend == "auto":
        return found[0]
    if backend not in found:
        raise ValueError(
            f"backend: {backend!r} is not available for tensors on {device} "
            f"(available: {found})")
    return backend


def num_units(x: torch.Tensor, unit: str = "feature") -> int:
    """M, the number of maskable units per sample of ``x`` under ``unit``."""
    if unit not in UNITS:
        raise ValueError(f"unit: expected one of {UNITS}, got {unit!r}")
    if x.dim() < 2:
        raise ValueError(f"x: expected a batch of shape (B, ...) with at least 2 dims, got {tuple(x.shape)}")
    if unit == "feature":
        return math.prod(x.shape[1:])
    if x.dim() == 4:
        return x.shape[2] * x.shape[3]
    if x.dim() == 3:
        return x.shape[1]
    raise ValueError(
        f"x: unit='pixel' needs NCHW (4-D) or (B, T, D) (3-D) input, got shape {tuple(x.shape)}")


def _to_units(x: torch.Tensor, score: torch.Tensor, unit: str):
    """(x3 (B,G,M), score3 (B,S,M), mask_shape, back): ``back`` maps an out (B,G,M) to x's layout."""
    M = num_units(x, unit)
    B = x.shape[0]
    if unit == "feature":
        if score.shape != x.shape:
            raise ValueError(f"score: expected x's shape {tuple(x.shape)} for unit='feature', "
                             f"got {tuple(score.shape)}")
        return (x.reshape(B, 1, M), score.reshape(B, 1, M), x.shape,
                lambda out: out.reshape(x.shape))
    if x.dim() == 4:  # NCHW: G = C channels per pixel
        B, C, H, W = x.shape
        if score.dim() != 4 or score.shape[0] != B or score.shape[2:] != x.shape[2:] \
                or score.shape[1] not in (1, C):
            raise ValueError(f"score: expected shape ({B}, {C} or 1, {H}, {W}) for unit='pixel', "
                             f"got {tuple(score.shape)}")
        return (x.reshape(B, C, M), score.reshape(B, score.shape[1], M), (B, H, W),
                lambda out: out.reshape(x.shape))
    B, T, D = x.shape  # (B, T, D): a token is a unit, G = D
    if score.dim() != 3 or score.shape[:2] != x.shape[:2] or score.shape[2] not in (1, D):
        raise ValueError(f"score: expected shape ({B}, {T}, {D} or 1) for unit='pixel', "
                         f"got {tuple(score.shape)}")
    return (x.transpose(1, 2), score.transpose(1, 2), (B, T),
            lambda out: out.transpose(1, 2))


def _k_tensor(k, B: int, M: int, device: torch.device) -> torch.Tensor:
    """k as the op's (B,) tensor; a tensor goes to the op as it is (the op checks it)."""
    if isinstance(k, torch.Tensor):
        return k
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k: expected an int or a ({B},) integer tensor, got {type(k).__name__}")
    # Checked here, not by the op: on a GPU the op checks k's values only on the device.
    if not 0 <= k <= M:
        raise ValueError(f"k: expected 0 <= k <= M = {M}, got {k}")
    return torch.full((B,), k, dtype=torch.int64, device=device)


def _check_tensors(**tensors) -> None:
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor, got {type(t).__name__}")


def _draw_seed_offset(generator: torch.Generator | None, numel: int) -> tuple[int, int]:
    """Seed and offset for one call, advancing ``generator`` (default: torch's CPU generator)."""
    gen = generator if generator is not None else torch.default_generator
    if gen.device.type == "cpu":
        seed = int(torch.randint(-2**63, 2**63 - 1, (), dtype=torch.int64, generator=gen))
        return seed, 0
    # A CUDA generator is already a Philox stream: reserve this call's counters in it.
    offset = gen.get_offset()
    gen.set_offset(offset + -(-numel // 4) * 4)
    return gen.initial_seed() & (2**63 - 1), offset


def mask(x: torch.Tensor, score: torch.Tensor, k, *, unit: str = "feature", abs: bool = True,
         fill: str = "uniform", value: float = 0.0, generator: torch.Generator | None = None,
         seed: int | None = None, offset: int | None = None, backend: str = "auto",
         lengths: torch.Tensor | None = None):
    """Mask the k least salient units of each sample of ``x``, ranked by ``score``.

    Args:
        x: a batch, NCHW, (B, T, D) or flat (B, D); floating point.
        score: the saliency of each element of x (typically the input gradient), of x's shape;
            for ``unit="pixel"`` its channel dimension may also be 1.
        k: how many units to mask per sample: an int or a (B,) int32/int64 tensor.
        unit: ``"feature"`` masks single elements; ``"pixel"`` masks all channels of a
            position together (NCHW: a pixel, (B, T, D): a token).
        abs: rank by |score| (True, the paper) or by the signed score.
        fill: ``"uniform"`` (random values in the kept range, the paper), ``"constant"``
            (``value``) or ``"mean"`` (the mean of the kept values).
        generator, seed, offset: the random stream: ``seed`` and ``offset`` if given, else drawn
            from ``generator`` (default: torch's default generator), which is advanced.
            Under ``torch.compile(fullgraph=True)``, pass ``seed`` (drawing one is a graph break).
        backend: one of ``"auto"``, ``"cpu"``, ``"cuda"``, ``"triton"``, ``"reference"``.
        lengths: for (B, T, D) input, a (B,) int tensor: sample b's first ``lengths[b]`` steps
            are real, the rest padding, which is never masked, never counted in k (``k[b]`` is
            at most the real units: lengths[b], times D for ``unit="feature"``) and never in the
            fill's range or mean (docs/SPEC.md, Padding).

    Returns:
        ``(out, mask)``: out has x's shape and dtype; mask is bool, True = masked, of x's shape
        for ``unit="feature"``, (B, H, W) or (B, T) for ``unit="pixel"``.
    """
    _check_tensors(x=x, score=score)
    x3, s3, mask_shape, back = _to_units(x, score, unit)
    B, G, M = x3.shape
    k = _k_tensor(k, B, M, x.device)
    if seed is None:
        if offset is not None:
            raise ValueError("offset: given without seed; pass both or neither")
        seed, offset = _draw_seed_offset(generator, B * G * M)
    offset = 0 if offset is None else offset
    kwargs = dict(abs=abs, fill=fill, value=float(value), seed=int(seed), offset=int(offset))
    chosen = _resolve_backend(backend, x.device, "mask")
    if chosen == "reference":
        op = reference.mask
    elif chosen == "triton":
        op = torch.ops.smoot.mask_triton
    else:
        op = torch.ops.smoot.mask
    x3, s3 = x3.contiguous(), s3.contiguous()
    if lengths is None:
        out, masked = op(x3, s3, k, **kwargs)
    else:
        if x.dim() != 3:
            raise ValueError(f"lengths: expected (B, T, D) input, got x of shape {tuple(x.shape)}")
        n = padding.check_lengths(lengths, B, x.shape[1], x.device)
        n = n if unit == "pixel" else n * x.shape[2]  # units of row b: steps, or their elements
        padding.check_k_within(k, n)
        out, masked = padding.mask_padded(op, x3, s3, k, n, **kwargs)
    return back(out), masked.reshape(mask_shape)


def update_k(logits: torch.Tensor, logits_masked: torch.Tensor, k: torch.Tensor, *,
             alpha: float = 0.95, mu: float = 10.0, n: int = 5, kmin: int, kmax: int,
             rounding: str = "floor", backend: str = "auto"):
    """SMOOT's per-sample k update (Algorithm 2, lines 3-6); returns ``(k_new, delta)``.

    ``delta = alpha * (q[c1] - p[c1]) + (1 - alpha) * mean_{i=2..n}(q[ci] - p[ci])`` with p, q
    the softmax of ``logits`` and ``logits_masked`` and c1, c2, ... the classes ranked by p;
    ``k_new = clamp(k + floor(mu * delta), kmin, kmax)``, as the paper writes it; with
    ``rounding="trunc"``, ``mu * delta`` is rounded toward zero instead (docs/SPEC.md, update_k).
    """
    _check_tensors(logits=logits, logits_masked=logits_masked, k=k)
    kwargs = dict(alpha=float(alpha), mu=float(mu), n=int(n), kmin=int(kmin), kmax=int(kmax),
                  rounding=rounding)
    chosen = _resolve_backend(backend, logits.device, "update_k")
    if chosen == "reference":
        return reference.update_k(logits, logits_masked, k, **kwargs)
    if chosen == "triton":
        return torch.ops.smoot.update_k_triton(logits.contiguous(), logits_masked.contiguous(), k, **kwargs)
    return torch.ops.smoot.update_k(logits.contiguous(), logits_masked.contiguous(), k, **kwargs)
