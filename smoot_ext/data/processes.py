"""The background processes of the time-series benchmark of Ismail et al. 2020, ported from the
timesynth 0.2.4 signals its generator samples, with the generator's settings.

Their generator draws one irregular time vector per sample (``TimeSampler(stop_time=20)``,
``sample_irregular_time(num_points=2 T, keep_percentage=50)``), samples every feature on it
independently, and adds ``GaussianNoise(std=0.3)``:

- ``harmonic``: ``Sinusoidal(frequency=2)``, sin(2 pi 2 t);
- ``gp``: ``GaussianProcess(kernel="Matern", nu=3/2)``, lengthscale 1, variance 1, drawn as
  numpy's ``multivariate_normal`` draws it (SVD of the covariance);
- ``pseudo-periodic``: ``PseudoPeriodic(frequency=2, freqSD=0.01, ampSD=0.5)``: a(t) sin(f(t) t),
  a ~ N(1, 0.5), f ~ N(2, 0.01) drawn anew at each time point (no 2 pi, as timesynth has it);
- ``ar``: ``AutoRegressive(ar_param=[0.9])``: x_t = 0.9 x_(t-1) + N(0, 0.5^2), from x_0 = 0, one
  step per sample whatever the times;
- ``car``: ``CAR(ar_param=0.9, sigma=0.01)``: x_1 = 0.01, then
  x_k = 0.9^dt x_(k-1) + 0.01 sqrt(1 - 0.9^dt) N(0, 1), dt the time between the samples;
- ``narma``: ``NARMA(order=10)``: y_k = 0.3 y_(k-1) + 1.5 u_(k-10) u_k + 0.1, u ~ U(0, 0.5).
  timesynth's extra term 0.05 y_(k-1) sum(y[k-10:10]) sums only the zero initial conditions, so
  it is always 0; and each NARMA object draws u from its own ``RandomState(42)``, so every feature
  of every sample has the same NARMA curve and only the noise differs. Both are kept: that is the
  benchmark's data.

Each process is a function of the random draws it consumes, so a test can feed it the draws
timesynth makes; :func:`background` draws them from a numpy ``Generator``.
"""
from __future__ import annotations

import numpy as np

STOP_TIME = 20.0
NOISE_SD = 0.3
PROCESSES = ("harmonic", "gp", "pseudo-periodic", "ar", "car", "narma")


def irregular_times(keep: np.ndarray, jitter: np.ndarray, steps: int, stop: float = STOP_TIME) -> np.ndarray:
    """timesynth's irregular times: the grid ``linspace(0, stop, 2 steps)`` at the sorted indices
    ``keep`` (..., steps), moved by ``jitter`` standard normals times the grid's resolution
    ``stop / (2 steps)``, then sorted (a large move can reorder two times)."""
    grid = np.linspace(0.0, stop, 2 * steps)
    return np.sort(grid[keep] + stop / (2 * steps) * jitter, axis=-1)


def harmonic(times: np.ndarray, frequency: float = 2.0, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency * times)


def pseudo_periodic(times: np.ndarray, freq_z: np.ndarray, amp_z: np.ndarray, frequency: float = 2.0,
                    freq_sd: float = 0.01, amplitude: float = 1.0, amp_sd: float = 0.5) -> np.ndarray:
    """``freq_z``, ``amp_z``: standard normals, one per time point, for frequency and amplitude."""
    return (amplitude + amp_sd * amp_z) * np.sin((frequency + freq_sd * freq_z) * times)


def matern(times: np.ndarray, nu: float = 1.5, lengthscale: float = 1.0, variance: float = 1.0) -> np.ndarray:
    """Covariance (..., T, T) of the Matern kernel at ``times`` (..., T), in timesynth's Bessel
    form and operation order: the covariance is nearly singular, so a change in the last bit (the
    closed form of nu = 3/2) turns the SVD's small directions and moves a draw by up to ~0.1."""
    from scipy import special  # here: scipy takes ~0.5 s to import, and only this background needs it

    r = np.sqrt(2 * nu) * np.abs(times[..., :, None] - times[..., None, :]) / lengthscale
    with np.errstate(invalid="ignore"):  # 0 * inf on the diagonal, replaced below
        cov = variance * (np.power(2, 1 - nu) / special.gamma(nu)) * np.power(r, nu) * special.kv(nu, r)
    return np.where(r == 0, variance, cov)


def gaussian_process(times: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Zero-mean Matern-3/2 paths at ``times`` (..., T) from standard normals ``z`` (..., K, T):
    K paths per time vector, each ``z @ sqrt(s) V`` of the SVD of the covariance, as numpy's
    ``multivariate_normal`` computes it (timesynth adds 1e-12 to the diagonal)."""
    from threadpoolctl import threadpool_limits

    cov = matern(times) + 1e-12 * np.eye(times.shape[-1])
    with threadpool_limits(1):  # a thousand 50 x 50 SVDs: BLAS threads only contend (25x slower on 2 busy cores)
        _, s, vt = np.linalg.svd(cov)
    return z @ (np.sqrt(s)[..., :, None] * vt)


def autoregressive(z: np.ndarray, phi: float = 0.9, sigma: float = 0.5) -> np.ndarray:
    """AR(1) along the last axis from x_0 = 0: x_t = phi x_(t-1) + sigma z_t."""
    x = np.empty_like(z)
    prev = np.zeros(z.shape[:-1])
    for t in range(z.shape[-1]):
        prev = x[..., t] = phi * prev + sigma * z[..., t]
    return x


def car(times: np.ndarray, z: np.ndarray, phi: float = 0.9, sigma: float = 0.01,
        start: float = 0.01) -> np.ndarray:
    """Continuous AR(1) at ``times`` (..., T) from ``start``; ``z`` (..., T - 1) standard normals,
    one per later time (the first sample is ``start``, no draw)."""
    decay = phi ** np.diff(times, axis=-1)
    x = np.empty(z.shape[:-1] + (z.shape[-1] + 1,))
    x[..., 0] = start
    for k in range(1, x.shape[-1]):
        d = decay[..., k - 1]
        x[..., k] = d * x[..., k - 1] + sigma * np.sqrt(1 - d) * z[..., k - 1]
    return x


def narma(steps: int, order: int = 10, coefficients=(0.3, 0.05, 1.5, 0.1), seed: int = 42) -> np.ndarray:
    """timesynth's NARMA curve of ``steps`` values: its inputs u come from its own
    ``RandomState(seed)`` (``order`` initial ones, then one per step), its values start at ``order``
    zeros. The a1 term is left out because it is 0 in timesynth (see the module docstring)."""
    a0, _, a2, a3 = coefficients
    u = np.random.RandomState(seed).uniform(0, 0.5, order + steps)
    y = np.zeros(order + steps)
    for k in range(order, order + steps):
        y[k] = a0 * y[k - 1] + a2 * u[k - order] * u[k] + a3
    return y[order:]


def _times(rng: np.random.Generator, n: int, steps: int) -> np.ndarray:
    keep = np.sort(rng.random((n, 2 * steps)).argsort(axis=1)[:, :steps], axis=1)
    return irregular_times(keep, rng.standard_normal((n, steps)), steps)


def _paths(process: str, rng: np.random.Generator, n: int, steps: int, features: int) -> np.ndarray:
    """(n, features, steps) paths of ``process``, one time vector per sample shared by its features."""
    shape = (n, features, steps)
    if process == "ar":
        return autoregressive(rng.standard_normal(shape))
    if process == "narma":
        return np.broadcast_to(narma(steps), shape)
    times = _times(rng, n, steps)
    if process == "harmonic":
        return np.broadcast_to(harmonic(times)[:, None], shape)
    if process == "gp":
        return gaussian_process(times, rng.standard_normal(shape))
    if process == "pseudo-periodic":
        return pseudo_periodic(times[:, None], rng.standard_normal(shape), rng.standard_normal(shape))
    return car(times[:, None], rng.standard_normal((n, features, steps - 1)))


def background(process: str, rng: np.random.Generator, n: int, steps: int, features: int) -> np.ndarray:
    """(n, steps, features) float64: ``process`` (one of ``PROCESSES``) plus N(0, 0.3^2) noise."""
    if process not in PROCESSES:
        raise ValueError(f"process: expected one of {', '.join(PROCESSES)}, got {process!r}")
    paths = _paths(process, rng, n, steps, features)
    return (paths + NOISE_SD * rng.standard_normal(paths.shape)).transpose(0, 2, 1)
