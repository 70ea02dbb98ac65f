"""Acquisition functions: plain functions of a posterior mean and standard deviation.

Both are written for **minimisation** and are to be **maximised**:

- :func:`log_ei`, the logarithm of the expected improvement below the best value,
  ``EI = s h(z)`` with ``z = (best - m) / s`` and ``h(z) = z Phi(z) + phi(z)``. Far from the
  incumbent ``h`` underflows to 0 in floating point (``z < -38`` in float64) and EI gives a flat,
  gradient-free landscape; ``log h`` is computed without ever forming ``h`` there, so it stays
  finite, smooth and increasing in ``z`` for any ``z``.
- :func:`ucb`, the upper confidence bound of ``-f``: ``-(m - kappa s)``.

They take JAX or NumPy arrays and are differentiable with :func:`jax.grad`.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import log_ndtr

__all__ = ["ACQUISITIONS", "log_ei", "log_h", "ucb"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
#: Below this z, 1 - |z| Phi(z) / phi(z) comes from its asymptotic series, sum over k >= 1 of
#: (-1)^(k+1) (2k - 1)!! / z^(2k), cut after 12 terms (relative error below 1e-12 there).
_ASYMPTOTIC = -10.0
_SERIES = tuple((-1) ** (k + 1) * math.prod(range(1, 2 * k, 2)) for k in range(1, 13))


def _log1mexp(a):
    """log(1 - exp(a)) for a < 0, accurate for a near 0 and for a very negative."""
    return jnp.where(a > -math.log(2), jnp.log(-jnp.expm1(a)), jnp.log1p(-jnp.exp(a)))


def log_h(z):
    """``log(z Phi(z) + phi(z))``, stable for every finite ``z``.

    Three regimes: for ``z > -1`` the sum is formed directly (it is above 0.08); for
    ``-10 < z <= -1`` it is ``log phi(z) + log(1 - |z| Phi(z) / phi(z))`` with the ratio from
    :func:`~jax.scipy.special.log_ndtr`; below, the bracket is the asymptotic series
    ``1/z^2 - 3/z^4 + 15/z^6 - ...``. Each branch sees safe inputs only (the "double where"), so
    gradients are finite everywhere.
    """
    z = jnp.asarray(z)
    upper = z > -1.0
    z_up = jnp.where(upper, z, 0.0)
    direct = jnp.log(z_up * jnp.exp(log_ndtr(z_up)) + jnp.exp(-0.5 * z_up * z_up - _LOG_SQRT_2PI))

    middle = (~upper) & (z > _ASYMPTOTIC)
    z_mid = jnp.where(middle, z, -2.0)
    log_ratio = jnp.log(-z_mid) + log_ndtr(z_mid) + 0.5 * z_mid * z_mid + _LOG_SQRT_2PI
    mid = -0.5 * z_mid * z_mid - _LOG_SQRT_2PI + _log1mexp(jnp.minimum(log_ratio, -1e-300))

    z_low = jnp.where(z <= _ASYMPTOTIC, z, 2 * _ASYMPTOTIC)
    w = 1.0 / (z_low * z_low)
    series = jnp.zeros_like(w)
    for coefficient in reversed(_SERIES):  # Horner in w
        series = w * (coefficient + series)
    low = -0.5 * z_low * z_low - _LOG_SQRT_2PI + jnp.log(series)

    return jnp.where(upper, direct, jnp.where(middle, mid, low))


def log_ei(mean, std, best):
    """Log expected improvement below ``best`` (minimisation), stable where EI underflows.

    Parameters
    ----------
    mean, std
        Posterior mean and standard deviation (``std > 0``), broadcast together.
    best
        The incumbent: the lowest value observed (or its posterior mean).

    Returns
    -------
    array
        ``log(E[max(best - f, 0)])``.
    """
    std = jnp.asarray(std)
    return log_h((best - mean) / std) + jnp.log(std)


def ucb(mean, std, kappa=2.0):
    """Upper confidence bound of ``-f``, ``kappa * std - mean`` (to maximise when minimising f)."""
    return kappa * jnp.asarray(std) - mean


#: Acquisitions by name, as the :class:`~geocryo.bayesopt.Optimizer` takes them.
ACQUISITIONS: tuple[str, ...] = ("log_ei", "ucb")
