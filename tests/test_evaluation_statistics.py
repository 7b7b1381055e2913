"""AUCs and intervals: trapezoid areas, the bootstrap's coverage, paired differences, seeds."""
import numpy as np
import pytest
from scipy import stats

from smoot_ext.evaluation.statistics import auc_convention, bootstrap, t_interval, trapezoid_auc, welch_interval


def test_trapezoid_auc_of_known_curves():
    assert trapezoid_auc([0, 0.5, 0.9], [100, 50, 10]) == pytest.approx(0.5 * 150 / 2 + 0.4 * 60 / 2)
    assert trapezoid_auc([i / 10 for i in range(10)], [100.0] * 10) == pytest.approx(90.0)
    per_image = trapezoid_auc([0, 0.5], np.array([[100, 0], [0, 0], [100, 100]]))
    np.testing.assert_allclose(per_image, [25.0, 0.0, 50.0])
    with pytest.raises(ValueError, match="one per level"):
        trapezoid_auc([0, 0.1, 0.2], [1.0, 2.0])


def test_the_auc_convention_says_range_units_and_zero():
    text = auc_convention([0.0, 0.1, 0.9])
    assert "x from 0 to 0.9" in text and "x = 0 included" in text and "at most 90" in text
    assert "not included" in auc_convention([0.1, 0.5])


def test_bootstrap_covers_the_true_mean_at_its_nominal_rate():
    """Many simulated test sets at once, one per column: per-image AUC-like values (a skewed
    distribution on [0, 90]) of 200 images; the 95% interval must cover the true mean about 95%
    of the time (the percentile bootstrap runs slightly under at this size)."""
    rng = np.random.default_rng(0)
    trials, n = 2000, 200
    a, b = 2.0, 5.0
    values = 90.0 * rng.beta(a, b, size=(n, trials))
    mean, lo, hi = bootstrap(values, resamples=1000, seed=1)
    truth = 90.0 * a / (a + b)
    covered = ((lo <= truth) & (truth <= hi)).mean()
    assert 0.925 <= covered <= 0.97, covered
    np.testing.assert_allclose(mean, values.mean(axis=0))
    # A narrow interval covers as often as its own level says: the level is honoured, not just wide.
    _, lo50, hi50 = bootstrap(values, resamples=1000, confidence=0.5, seed=1)
    assert 0.45 <= ((lo50 <= truth) & (truth <= hi50)).mean() <= 0.55


def test_bootstrap_is_seeded():
    values = np.random.default_rng(0).normal(size=(50, 3))
    a, b, c = (bootstrap(values, resamples=200, seed=s) for s in (4, 4, 5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_paired_differences_are_resolved_where_unpaired_ones_are_not():
    """Two models on the same images: most of their per-image variation is shared (the image's
    difficulty), so the paired interval of the difference is far narrower than either model's."""
    rng = np.random.default_rng(3)
    difficulty = rng.normal(50.0, 20.0, size=500)
    a = difficulty + rng.normal(0.0, 2.0, size=500)
    b = difficulty + 1.0 + rng.normal(0.0, 2.0, size=500)
    _, lo, hi = bootstrap(np.stack([a, b, b - a], axis=1), resamples=1000, seed=0)
    assert lo[2] > 0.0  # the paired difference is resolved
    assert hi[2] - lo[2] < 0.2 * (hi[0] - lo[0])
    assert lo[1] < hi[0]  # while the two models' own intervals overlap


def test_seed_intervals_match_scipy():
    rng = np.random.default_rng(1)
    v = rng.normal(30.0, 2.0, size=(3, 2))
    mean, lo, hi = t_interval(v, 0.95)
    for j in range(2):
        want = stats.t.interval(0.95, 2, loc=v[:, j].mean(), scale=stats.sem(v[:, j]))
        np.testing.assert_allclose([lo[j], hi[j]], want)
    a, b = rng.normal(30, 1, size=(3, 1)), rng.normal(32, 3, size=(4, 1))
    diff, lo, hi = welch_interval(a, b)
    want = stats.ttest_ind(b[:, 0], a[:, 0], equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose([diff[0], lo[0], hi[0]], [b.mean() - a.mean(), want.low, want.high])
    with pytest.raises(ValueError, match="at least 2"):
        t_interval(v[:1])
