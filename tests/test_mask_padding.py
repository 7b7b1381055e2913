"""smoot_ext.mask(..., lengths=) on every backend: padding is never masked, never counted in k
and never in the fill's range or mean (docs/SPEC.md, Padding), with ties and all-equal scores.

Each backend runs its own unchanged smoot::mask through smoot_ext/padding.py; the result is
compared with reference.mask_padded, the row-by-row oracle written from SPEC.md.
"""
import pytest
import torch
from cases import ALL, assert_matches_reference, backends

import smoot_ext
from smoot_ext.checks import FILLS

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
every_backend = pytest.mark.parametrize("op", backends("mask", ALL, knobs=False), indirect=True)
B, T, D = 7, 13, 3
# Every length from none to full, twice the same one, and a single step.
LENGTHS = torch.tensor([0, 13, 5, 5, 1, 12, 9])
SEED, OFFSET = 2**40 + 7, 2**33 + 1


def _scores(kind: str, g: torch.Generator) -> torch.Tensor:
    if kind == "random":
        return torch.randn(B, T, D, generator=g)
    if kind == "all_equal":
        return torch.ones(B, T, D)
    if kind == "ties":  # three levels: ties everywhere, across the padding boundary too
        return torch.randint(0, 3, (B, T, D), generator=g).float()
    s = torch.randn(B, T, D, generator=g)  # "nan_inf": NaN and inf among the real scores
    s[:, ::4, 0] = float("nan")
    s[:, 1::5, 1] = float("inf")
    return s


def _case(kind: str, unit: str, seed: int = 0):
    """x, score, k (B,) in [0, real units] and the real units of each row; row 3 masks them all."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g) * 2 + 1
    score = _scores(kind, g)
    real = LENGTHS if unit == "pixel" else LENGTHS * D
    k = (torch.rand(B, generator=g) * (real + 1)).long().clamp(max=real)
    k[3] = real[3]
    return x, score, k, real


def _op_layout(t: torch.Tensor, unit: str) -> torch.Tensor:
    """(B, T, D) as the op's (B, G, M): steps as units, or elements as units."""
    return t.transpose(1, 2) if unit == "pixel" else t.reshape(t.shape[0], 1, -1)


@every_backend
@pytest.mark.parametrize("unit", ("pixel", "feature"))
@pytest.mark.parametrize("kind", ("random", "all_equal", "ties", "nan_inf"))
@pytest.mark.parametrize("fill", FILLS)
def test_matches_padded_reference(op, unit, kind, fill):
    x, score, k, real = _case(kind, unit)
    dev = op.device
    out, masked = smoot_ext.mask(x.to(dev), score.to(dev), k.to(dev), unit=unit, fill=fill, value=-4.0,
                                 seed=SEED, offset=OFFSET, backend=op.name, lengths=LENGTHS.to(dev))
    out, masked = out.cpu(), masked.cpu()
    steps = torch.arange(T) < LENGTHS.unsqueeze(1)                        # (B, T)
    padded = ~steps if unit == "pixel" else (~steps).unsqueeze(2).expand(B, T, D)
    assert not masked[padded].any(), "a padding unit was masked"
    assert torch.equal(out[~steps], x[~steps]), "padding values changed"
    assert torch.equal(masked.reshape(B, -1).sum(1), k), "k[b] units were not masked in row b"
    assert_matches_reference(_op_layout(out, unit), masked.reshape(B, -1), _op_layout(x, unit),
                             _op_layout(score, unit), k, fill=fill, value=-4.0, seed=SEED,
                             offset=OFFSET, real_units=real)


@every_backend
@pytest.mark.parametrize("fill", ("uniform", "mean"))
def test_padding_never_in_the_fill(op, fill):
    """Padding values and scores of any size change nothing at the real steps."""
    x, score, k, _ = _case("random", "pixel", seed=3)
    steps = (torch.arange(T) < LENGTHS.unsqueeze(1)).unsqueeze(2)
    wild_x = torch.where(steps, x, torch.tensor(1e6))
    wild_score = torch.where(steps, score, torch.tensor(-1e-9))  # lowest of all: would be masked first
    dev = op.device
    run = [smoot_ext.mask(a.to(dev), s.to(dev), k.to(dev), unit="pixel", fill=fill, seed=SEED,
                          backend=op.name, lengths=LENGTHS.to(dev)) for a, s in ((x, score), (wild_x, wild_score))]
    (out, masked), (wild_out, wild_masked) = [(o.cpu(), m.cpu()) for o, m in run]
    assert torch.equal(masked, wild_masked)
    assert torch.equal(out[steps.expand_as(x)], wild_out[steps.expand_as(x)])
    assert out[steps.expand_as(x)].abs().max() < 1e3


@every_backend
def test_full_lengths_are_the_plain_op(op):
    """lengths = T everywhere: the same bits as no lengths."""
    x, score, k, _ = _case("ties", "pixel", seed=5)
    dev = op.device
    full = torch.full((B,), T, device=dev)
    a = smoot_ext.mask(x.to(dev), score.to(dev), k.to(dev), unit="pixel", seed=SEED, backend=op.name)
    b = smoot_ext.mask(x.to(dev), score.to(dev), k.to(dev), unit="pixel", seed=SEED, backend=op.name,
                       lengths=full)
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])


def test_gradient_passes_padding_and_kept_units():
    x, score, k, _ = _case("random", "pixel", seed=1)
    x.requires_grad_(True)
    out, masked = smoot_ext.mask(x, score, k, unit="pixel", seed=0, lengths=LENGTHS)
    out.sum().backward()
    expected = (~masked).float().unsqueeze(2).expand_as(x)  # padding is kept: gradient 1
    assert torch.equal(x.grad, expected)


@pytest.mark.parametrize("lengths, k, error, words", [
    ([1, 2], 1, TypeError, "lengths: expected a (3,) integer tensor, got list"),
    (torch.tensor([1.0, 2.0, 3.0]), 1, TypeError, "lengths: expected dtype torch.int32 or torch.int64"),
    (torch.tensor([1, 2]), 1, ValueError, "lengths: expected shape (3,), got (2,)"),
    (torch.tensor([1, 2, 5]), 1, ValueError, "lengths: expected 0 <= lengths[b] <= T = 4, got lengths[2] = 5"),
    (torch.tensor([1, 2, 3]), 2, ValueError, "k: expected k[b] <= the real units of row b, got k[0] = 2 with 1"),
])
def test_bad_lengths(lengths, k, error, words):
    x = torch.randn(3, 4, 2)
    with pytest.raises(error) as e:
        smoot_ext.mask(x, x, k, unit="pixel", lengths=lengths)
    assert words in str(e.value)


def test_lengths_need_sequences():
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"lengths: expected \(B, T, D\) input, got x of shape \(2, 1, 4, 4\)"):
        smoot_ext.mask(x, x, 1, unit="pixel", lengths=torch.tensor([1, 2]))
