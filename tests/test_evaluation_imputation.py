"""The fills of removed units; ROAD's noisy linear imputation against a per-image scipy solve."""
import numpy as np
import pytest
import torch
from scipy.sparse import lil_matrix
from scipy.sparse.linalg import spsolve

from smoot_ext.evaluation.imputation import IMPUTATIONS, Imputation, noisy_linear_impute, remove

# ROAD's neighbour weights (Rong et al., ICML 2022), written out here, not taken from the library.
WEIGHTS = {(di, dj): (1 / 12 if di and dj else 1 / 6) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj}


def road_reference(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's imputation of one (C, H, W) image as its definition reads, one sparse equation per
    removed pixel: sum_j w_j (v - v_j) = 0 over the in-image neighbours j (kept ones known)."""
    c, h, w = img.shape
    ids = -np.ones((h, w), dtype=int)
    ids[removed] = np.arange(removed.sum())
    n = int(removed.sum())
    a = lil_matrix((n, n))
    b = np.zeros((n, c))
    for i, j in zip(*np.nonzero(removed)):
        row = ids[i, j]
        for (di, dj), weight in WEIGHTS.items():
            ni, nj = i + di, j + dj
            if not (0 <= ni < h and 0 <= nj < w):
                continue
            a[row, row] += weight
            if removed[ni, nj]:
                a[row, ids[ni, nj]] -= weight
            else:
                b[row] += weight * img[:, ni, nj]
    out = img.copy()
    if n:
        out[:, removed] = spsolve(a.tocsc(), b).reshape(n, c).T
    return out


def _masks(b, h, w, seed):
    """Random removals of many sizes, plus one that leaves a single kept pixel in a corner."""
    g = torch.Generator().manual_seed(seed)
    share = torch.linspace(0.05, 0.95, b).view(b, 1, 1)
    m = torch.rand(b, h, w, generator=g) < share
    m[-1] = True
    m[-1, 0, 0] = False
    return m


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_road_matches_a_per_image_scipy_solve(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 11, 9, generator=g).to(dtype)
    removed = _masks(8, 11, 9, seed=1)
    got = noisy_linear_impute(x, removed.unsqueeze(1).expand_as(x), noise=0.0)
    for i in range(len(x)):
        want = road_reference(x[i].double().numpy(), removed[i].numpy())
        np.testing.assert_allclose(got[i].double().numpy(), want, atol=1e-5, rtol=0)
    assert torch.equal(got[~removed.unsqueeze(1).expand_as(x)], x[~removed.unsqueeze(1).expand_as(x)])


def test_road_per_channel_masks_solve_each_channel_alone():
    """unit="feature" removes channels separately: each channel is its own system."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 2, 7, 7, generator=g, dtype=torch.float64)
    removed = torch.rand(3, 2, 7, 7, generator=g) < 0.6
    got = noisy_linear_impute(x, removed, noise=0.0)
    for i in range(3):
        for c in range(2):
            want = road_reference(x[i, c:c + 1].numpy(), removed[i, c].numpy())
            np.testing.assert_allclose(got[i, c:c + 1].numpy(), want, atol=1e-5, rtol=0)


def test_road_noise_is_gaussian_of_the_given_std_at_removed_pixels_only():
    x = torch.rand(64, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    removed = (torch.rand(64, 1, 12, 12, generator=torch.Generator().manual_seed(1)) < 0.5)
    clean = noisy_linear_impute(x, removed, noise=0.0)
    noisy = noisy_linear_impute(x, removed, noise=0.05, generator=torch.Generator().manual_seed(2))
    d = (noisy - clean)[removed]
    assert abs(d.std().item() - 0.05) < 0.005 and abs(d.mean().item()) < 0.005
    assert torch.equal(noisy[~removed], x[~removed])
    again = noisy_linear_impute(x, removed, noise=0.05, generator=torch.Generator().manual_seed(2))
    assert torch.equal(noisy, again)


def test_road_refuses_what_is_not_an_image_grid():
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="removed: expected"):
        noisy_linear_impute(x, torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="fill: road needs NCHW"):
        remove(torch.rand(2, 5, 3), torch.rand(2, 5, 1), 2, Imputation("road"), unit="pixel")


@pytest.mark.parametrize("fill", list(IMPUTATIONS))
def test_every_fill_changes_only_the_removed_units(fill):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 6, 6, generator=g)
    score = torch.rand(4, 1, 6, 6, generator=g)
    out, removed = remove(x, score, 10, Imputation(fill, (0.1, 0.2, 0.3), noise=0.0), unit="pixel", seed=1)
    where = removed.unsqueeze(1).expand_as(x)
    assert removed.sum().item() == 4 * 10
    assert torch.equal(out[~where], x[~where])
    assert (out[where] != x[where]).all()
    if fill == "constant":
        assert torch.equal(out[:, :, removed[0]][0], torch.tensor([[0.1], [0.2], [0.3]]).expand(3, 10))
    if fill == "mean":  # the mean of the image's kept values, per channel
        kept = x[0][:, ~removed[0]].mean(1, keepdim=True)
        torch.testing.assert_close(out[0][:, removed[0]], kept.expand(3, 10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_road_on_the_gpu_matches_the_cpu():
    x = torch.rand(16, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    removed = _masks(16, 20, 20, seed=1).unsqueeze(1).expand_as(x)
    cpu = noisy_linear_impute(x, removed, noise=0.0)
    gpu = noisy_linear_impute(x.cuda(), removed.cuda(), noise=0.0)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=0)


def _adversarial_scores(b, m, gen):
    """Few distinct values (many ties), with +-0, +-inf, NaN of both signs and payloads, denormals
    and the extremes of float32 among them, in random places."""
    f = torch.finfo(torch.float32)
    bits = torch.tensor([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], dtype=torch.int64).to(torch.int32)
    nans = bits.view(torch.float32)
    pool = torch.cat([torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, f.tiny, -f.tiny, f.tiny / 4, -f.tiny / 4, f.max, -f.max,
                                    f.eps, float("inf"), float("-inf")]), nans])
    return pool[torch.randint(0, len(pool), (b, m), generator=gen)]


@pytest.mark.parametrize("fill", ["constant", "constant3", "road", "uniform", "mean"])
@pytest.mark.parametrize("unit,shape", [("pixel", (5, 3, 6, 7)), ("pixel", (5, 1, 4, 4)), ("feature", (5, 2, 3, 4)),
                                        ("step", (5, 9, 3)), ("element", (5, 9, 3))])
@pytest.mark.parametrize("scores", ["random", "adversarial"])
def test_remove_levels_equals_remove_on_the_tiled_batch(fill, unit, shape, scores):
    """One ranking per sample for the constant fills must give, bit for bit, what the op gives
    on the batch tiled once per level: the same units (ties, NaN, +-0), fill and ROAD solve."""
    from smoot_ext.evaluation.imputation import remove_levels, tile
    from smoot_ext.evaluation.units import check_unit
    if fill == "road" and len(shape) != 4:
        pytest.skip("ROAD needs an image grid")
    if fill == "constant3" and (len(shape) != 4 or shape[1] != 3):
        pytest.skip("one value per channel needs 3 channels")
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(shape, generator=gen)
    u = check_unit(unit)
    B, M = shape[0], u.count(x)
    s = torch.randn(B, M, generator=gen) if scores == "random" else _adversarial_scores(B, M, gen)
    ks = torch.stack([torch.zeros(B, dtype=torch.int64), torch.full((B,), M),
                      *(torch.randint(0, M + 1, (B,), generator=gen) for _ in range(2))])
    imp = Imputation("constant", value=(0.1, -0.2, 0.3)) if fill == "constant3" else Imputation(fill, value=(-0.5,))
    got = remove_levels(x, s, ks, imp, unit=unit, seed=3)
    want, _ = remove(tile(x, 4), tile(s.reshape(u.score_shape(x)), 4), ks.reshape(-1), imp, unit=unit, seed=3)
    assert torch.equal(got, want)


@pytest.mark.parametrize("m", [0, 1, 2, 64, 5000])
@pytest.mark.parametrize("scores", ["random", "adversarial", "strided"])
def test_removal_ranks_keep_torch_sorts_stable_order(m, scores):
    """The CPU float32 ranking (one sort of int64 keys) must give each unit the place a stable
    torch.sort gives it: lowest first, ties (+-0 among them) by index, every NaN last."""
    from smoot_ext.evaluation.imputation import removal_ranks
    gen = torch.Generator().manual_seed(m)
    s = {"random": lambda: torch.randn(6, m, generator=gen),
         "adversarial": lambda: _adversarial_scores(6, m, gen),
         "strided": lambda: _adversarial_scores(m, 6, gen).T}[scores]()
    order = torch.sort(s, dim=1, stable=True).indices
    want = torch.empty_like(order).scatter_(1, order, torch.arange(m).expand_as(order))
    assert torch.equal(removal_ranks(s), want)
    assert torch.equal(removal_ranks(s.double()), want)  # the other path: torch's own sort
