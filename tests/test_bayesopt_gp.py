"""The Gaussian process: posterior and likelihood against a direct NumPy computation, MAP fit."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from geocryo.bayesopt import GP, fit_gp
from geocryo.bayesopt.gp import padded_size


def matern52_numpy(a, b, lengthscale, amplitude):
    r = np.sqrt((((a[:, None, :] - b[None, :, :]) / lengthscale) ** 2).sum(-1))
    return amplitude * (1 + math.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-math.sqrt(5) * r)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.random((7, 2))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + 3.0
    theta = np.log([0.4, 0.7, 1.3, 1e-3])  # lengthscales, amplitude, noise variance
    return x, y, theta


def test_posterior_equals_direct_numpy(data):
    x, y, theta = data
    gp = GP(x, y, theta)
    xq = np.random.default_rng(2).random((5, 2))
    mean, var = gp.predict(xq)

    lengthscale, amplitude, noise = np.exp(theta[:2]), math.exp(theta[2]), math.exp(theta[3])
    mu, sd = y.mean(), y.std()
    z = (y - mu) / sd
    k = matern52_numpy(x, x, lengthscale, amplitude) + noise * np.eye(len(x))
    kq = matern52_numpy(xq, x, lengthscale, amplitude)
    expected_mean = mu + sd * kq @ np.linalg.solve(k, z)
    expected_var = sd**2 * (amplitude - np.einsum("ij,ji->i", kq, np.linalg.solve(k, kq.T)))

    assert mean.dtype == np.float64
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-10)
    np.testing.assert_allclose(var, expected_var, rtol=1e-8)
    # 7 observations are padded to 16 rows; the padding must not show in the likelihood.
    assert padded_size(7) == 16
    _, logdet = np.linalg.slogdet(k)
    expected_ll = -0.5 * z @ np.linalg.solve(k, z) - 0.5 * logdet - 3.5 * math.log(2 * math.pi)
    assert gp.log_marginal_likelihood() == pytest.approx(expected_ll, rel=1e-10)


def test_posterior_interpolates_noiseless_observations(data):
    x, y, theta = data
    gp = GP(x, y, np.r_[theta[:3], math.log(1e-8)])
    mean, var = gp.predict(x)
    np.testing.assert_allclose(mean, y, atol=1e-5)
    assert np.all(var < 1e-6 * y.var())


def test_condition_adds_observations_with_fixed_hyperparameters(data):
    x, y, theta = data
    gp = GP(x[:5], y[:5], theta)
    more = gp.condition(x[5:], y[5:])
    assert more.n == 7 and np.array_equal(more.theta, gp.theta)
    assert (more.y_mean, more.y_scale) == (gp.y_mean, gp.y_scale)
    # Near a new observation the posterior variance shrinks.
    assert more.predict(x[5:6])[1][0] < gp.predict(x[5:6])[1][0]


def test_map_fit_finds_relevance_and_predicts_a_smooth_function():
    rng = np.random.default_rng(0)
    x = rng.random((30, 2))
    f = lambda x: np.sin(5 * x[:, 0]) + 0.5 * x[:, 0]  # noqa: E731  (x1 is irrelevant)
    gp = fit_gp(x, f(x), seed=0)
    lengthscale = gp.hyperparameters.lengthscale
    assert lengthscale[1] > 5 * lengthscale[0]
    xq = rng.random((200, 2))
    rmse = np.sqrt(np.mean((gp.predict(xq)[0] - f(xq)) ** 2))
    assert rmse < 0.02 * np.ptp(f(xq))
    # Float64 stays inside the GP: JAX's default is still float32 for everyone else.
    assert jnp.zeros(1).dtype == jnp.float32


def test_fit_refuses_bad_data():
    with pytest.raises(ValueError, match="finite"):
        fit_gp(np.zeros((3, 1)), np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        fit_gp(np.zeros((3, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="restarts"):
        fit_gp(np.zeros((3, 1)), np.zeros(3), restarts=0)
