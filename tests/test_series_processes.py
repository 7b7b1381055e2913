"""smoot_ext.data.processes against timesynth 0.2.4 as the benchmark calls it: each reference
below restates a timesynth sampler step by step, drawing from numpy's global legacy stream in
timesynth's order (irregular times first; per step the noise before the signal in the looped AR
and CAR; signal before noise in the vectorised ones); the port, fed the same draws, must give
the same series. timesynth itself does not import here (jitcdde) and its AR/CAR fail on numpy 2,
hence the restatements. Then statistics that follow from the definitions."""
import numpy as np
import pytest
from scipy import special

from smoot_ext.data import processes as P

T = 50
SEEDS = range(5)


def _reference_times():
    """TimeSampler(stop_time=20).sample_irregular_time(num_points=2 T, keep_percentage=50)."""
    grid = np.linspace(0, 20, 2 * T)
    kept = grid[np.sort(np.random.choice(2 * T, size=T, replace=False))]
    return np.sort(kept + np.random.normal(0, 20 / (2 * T), size=T))


def _port_times(rs):
    """The same draws for the port: choice without replacement is a permutation's head."""
    keep = np.sort(rs.permutation(2 * T)[:T])
    return P.irregular_times(keep, rs.standard_normal(T), T)


def _matern_reference(times):
    """timesynth's Matern(nu=3/2) covariance, one pair at a time."""
    def k(a, b):
        if a - b == 0:
            return 1.0
        r = np.sqrt(3.0) * np.abs(a - b)
        return (np.power(2, -0.5) / special.gamma(1.5)) * np.power(r, 1.5) * special.kv(1.5, r)
    return np.vectorize(k)(*np.meshgrid(times, times))


def _ref_harmonic():
    t = _reference_times()
    return np.sin(2 * np.pi * 2.0 * t) + np.random.normal(0, 0.3, T)


def _port_harmonic(rs):
    return P.harmonic(_port_times(rs)) + 0.3 * rs.standard_normal(T)


def _ref_gp():
    t = _reference_times()
    cov = _matern_reference(t) + 1e-12 * np.eye(T)
    return np.random.multivariate_normal(np.zeros(T), cov) + np.random.normal(0, 0.3, T)


def _port_gp(rs):
    t = _port_times(rs)
    return P.gaussian_process(t, rs.standard_normal(T)) + 0.3 * rs.standard_normal(T)


def _ref_pseudo_periodic():
    t = _reference_times()
    freq, amp = np.random.normal(2.0, 0.01, T), np.random.normal(1.0, 0.5, T)
    return amp * np.sin(freq * t) + np.random.normal(0, 0.3, T)


def _port_pseudo_periodic(rs):
    t = _port_times(rs)
    return P.pseudo_periodic(t, rs.standard_normal(T), rs.standard_normal(T)) + 0.3 * rs.standard_normal(T)


def _ref_ar():
    _reference_times()  # drawn by the benchmark, unused by AR
    out, x = [], 0.0
    for _ in range(T):
        noise = np.random.normal(0, 0.3)
        x = 0.9 * x + np.random.normal(0, 0.5)
        out.append(x + noise)
    return np.array(out)


def _port_ar(rs):
    _port_times(rs)
    z = rs.standard_normal(2 * T)
    return P.autoregressive(z[1::2]) + 0.3 * z[0::2]


def _ref_car():
    t = _reference_times()
    out, x = [], 0.01
    for k in range(T):
        noise = np.random.normal(0, 0.3)
        if k:
            d = 0.9 ** (t[k] - t[k - 1])
            x = d * x + 0.01 * np.sqrt(1 - d) * np.random.normal(0, 1)
        out.append(x + noise)
    return np.array(out)


def _port_car(rs):
    t = _port_times(rs)
    z = rs.standard_normal(2 * T - 1)  # noise, then noise and innovation at each later step
    return P.car(t, z[2::2]) + 0.3 * np.concatenate([z[:1], z[1::2]])


def _ref_narma():
    """NARMA(order=10) as timesynth computes it, its a1 term included."""
    _reference_times()
    own = np.random.RandomState(42)
    u = np.concatenate([own.uniform(0, 0.5, 10), own.uniform(0, 0.5, T)])
    y = np.zeros(10 + T)
    for k in range(10, 10 + T):
        y[k] = 0.3 * y[k - 1] + 0.05 * y[k - 1] * np.sum(y[k - 10:10]) + 1.5 * u[k - 10] * u[k] + 0.1
    return y[10:] + np.random.normal(0, 0.3, T)


def _port_narma(rs):
    _port_times(rs)
    return P.narma(T) + 0.3 * rs.standard_normal(T)


PAIRS = {"harmonic": (_ref_harmonic, _port_harmonic), "gp": (_ref_gp, _port_gp),
         "pseudo-periodic": (_ref_pseudo_periodic, _port_pseudo_periodic), "ar": (_ref_ar, _port_ar),
         "car": (_ref_car, _port_car), "narma": (_ref_narma, _port_narma)}


def test_every_process_has_a_reference():
    assert set(PAIRS) == set(P.PROCESSES)


@pytest.mark.parametrize("process", P.PROCESSES)
def test_port_gives_timesynths_series_for_the_same_draws(process):
    reference, port = PAIRS[process]
    state = np.random.get_state()
    try:
        for seed in SEEDS:
            np.random.seed(seed)
            expected = reference()
            got = port(np.random.RandomState(seed))
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, err_msg=f"seed {seed}")
    finally:
        np.random.set_state(state)


def test_irregular_times_are_sorted_jittered_grid_points():
    rs = np.random.RandomState(0)
    t = _port_times(rs)
    assert t.shape == (T,) and (np.diff(t) >= 0).all()
    assert -1.0 < t.min() and t.max() < 21.0  # grid [0, 20] moved by N(0, 0.2)


def test_ar_variance_and_autocorrelation_follow_ar1():
    x = P.autoregressive(np.random.default_rng(0).standard_normal((40000, T)))
    t = np.arange(1, T + 1)
    expected = 0.25 * (1 - 0.81 ** t) / (1 - 0.81)  # from x_0 = 0: 1.316 at the stationary end
    np.testing.assert_allclose(x.var(0), expected, rtol=0.05)
    lag1 = np.corrcoef(x[:, -2], x[:, -1])[0, 1]
    assert abs(lag1 - 0.9) < 0.01


def test_car_variance_follows_its_update():
    times = np.broadcast_to(np.arange(T) * 0.4, (40000, T))
    x = P.car(times, np.random.default_rng(1).standard_normal((40000, T - 1)))
    d = 0.9 ** 0.4
    # v = d^2 v + sigma^2 (1 - d): stationary v = sigma^2 / (1 + d), sd 0.0071 for dt 0.4
    assert abs(x[:, -1].var() / (1e-4 / (1 + d)) - 1) < 0.05
    assert abs(x[:, -1].mean() - 0.01 * 0.9 ** (0.4 * (T - 1))) < 1e-4  # the start, decayed
    assert x[:, 0].var() == 0 and (x[:, 0] == 0.01).all()


def test_gp_covariance_is_matern_three_halves():
    times = np.linspace(0, 10, 20)
    r = np.sqrt(3) * np.abs(times[:, None] - times[None, :])
    closed = (1 + r) * np.exp(-r)
    np.testing.assert_allclose(P.matern(times), closed, atol=1e-12)
    x = P.gaussian_process(times, np.random.default_rng(2).standard_normal((30000, 20)))
    assert np.abs(np.cov(x.T) - closed).max() < 0.04


def test_harmonic_frequency_is_two():
    times = np.arange(256) / 16  # 16 samples a unit of time
    spectrum = np.abs(np.fft.rfft(P.harmonic(times)))
    assert np.fft.rfftfreq(256, 1 / 16)[spectrum.argmax()] == 2.0


def test_pseudo_periodic_amplitude_and_frequency_spread():
    rng = np.random.default_rng(3)
    times = np.full(200000, np.pi / 4)  # sin(2 t) = 1 at the mean frequency
    x = P.pseudo_periodic(times, rng.standard_normal(200000), rng.standard_normal(200000))
    assert abs(x.mean() - 1.0) < 0.01 and abs(x.std() - 0.5) < 0.01


def test_narma_is_one_fixed_curve_near_its_mean():
    y = P.narma(T)
    assert np.array_equal(y, P.narma(T))
    # y = 0.3 y + 1.5 E[u]^2 + 0.1 on average: 0.277
    assert abs(y[10:].mean() - (0.1 + 1.5 * 0.25 ** 2) / 0.7) < 0.05
    assert (y >= 0.1).all() and (y <= (0.1 + 1.5 * 0.25) / 0.7).all()  # u u in [0, 0.25]


@pytest.mark.parametrize("process", P.PROCESSES)
def test_background_shape_and_noise(process):
    x = P.background(process, np.random.default_rng(4), 30, T, 8)
    assert x.shape == (30, T, 8) and np.isfinite(x).all()
    if process == "narma":  # the one deterministic signal: what is left is the noise
        resid = x - P.narma(T)[None, :, None]
        assert abs(resid.std() - 0.3) < 0.01
    # features of a sample share its times: for harmonic also its curve (correlation
    # 0.5 / (0.5 + 0.09) = 0.85 between two features), for gp only the kernel (independent paths)
    corr = np.mean([np.corrcoef(s[:, 0], s[:, 1])[0, 1] for s in x])
    if process == "harmonic":
        assert corr > 0.75
    if process == "gp":
        assert abs(corr) < 0.15


def test_background_rejects_an_unknown_process():
    with pytest.raises(ValueError, match="process: expected one of harmonic, .* got 'sine'"):
        P.background("sine", np.random.default_rng(0), 2, T, 2)
