"""Log expected improvement: equal to log(EI) where EI is representable, finite and ordered
where it underflows; UCB."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from geocryo.bayesopt import log_ei, ucb


def expected_improvement(mean, std, best):
    z = (best - mean) / std
    return std * (z * norm.cdf(z) + norm.pdf(z))


def test_log_ei_equals_log_of_ei_where_representable():
    with jax.enable_x64(True):
        z = np.linspace(3.0, -25.0, 2801)  # the direct formula loses ~z^2 eps to cancellation
        for std in (0.5, 1.0, 3.0):
            mean = -z * std
            ei = expected_improvement(mean, std, best=0.0)
            assert np.all(ei > 1e-300)
            got = np.asarray(log_ei(jnp.asarray(mean), std, 0.0))
            np.testing.assert_allclose(got, np.log(ei), rtol=1e-9)


def test_log_ei_is_finite_and_ordered_where_ei_underflows():
    with jax.enable_x64(True):
        z = -np.logspace(np.log10(40.0), 6, 400)  # EI < 1e-300 throughout
        mean = -z  # best 0, std 1
        assert np.all(expected_improvement(mean, 1.0, 0.0) == 0.0)
        got = np.asarray(log_ei(jnp.asarray(mean), 1.0, 0.0))
        assert np.all(np.isfinite(got))
        # A worse mean means less improvement: strictly decreasing along the grid.
        assert np.all(np.diff(got) < 0)
        # Far out, EI ~ phi(z) / z^2: check against the leading asymptotics.
        leading = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(-z)
        np.testing.assert_allclose(got, leading, rtol=1e-3)
        # Gradients exist everywhere (what the candidate polishing needs).
        grads = jax.vmap(jax.grad(lambda m: log_ei(m, 1.0, 0.0)))(jnp.asarray(mean))
        assert np.all(np.isfinite(np.asarray(grads))) and np.all(np.asarray(grads) < 0)


def test_log_ei_prefers_uncertainty_at_equal_mean():
    with jax.enable_x64(True):
        values = np.asarray(log_ei(1.0, jnp.array([0.1, 1.0, 10.0]), 0.0))
    assert np.all(np.diff(values) > 0)


def test_ucb():
    assert float(ucb(2.0, 0.5, kappa=2.0)) == pytest.approx(-1.0)
    assert float(ucb(2.0, 1.5, kappa=2.0)) > float(ucb(2.0, 0.5, kappa=2.0))
