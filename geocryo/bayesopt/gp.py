"""A Gaussian process on the unit cube: Matern-5/2 ARD kernel, standardised outputs, MAP fit.

>>> gp = fit_gp(x, y)                     # x (n, d) in [0, 1], y (n,), float64
>>> mean, var = gp.predict(x_new)         # in the units of y
>>> gp.hyperparameters.lengthscale        # (d,) on the unit cube

Outputs are standardised (zero mean, unit variance) before the fit; the kernel's lengthscales,
its amplitude and the noise variance are the maximum of the marginal likelihood times log-normal
priors (:class:`Prior`), found by L-BFGS-B from several starts at once. Everything runs in
float64 under :func:`float64` (:func:`jax.enable_x64`, locally: the rest of geocryo keeps
float32).

Observation arrays are padded to a power of two (at least 16 rows) with a mask, and the padded
rows are made inert (unit diagonal, no covariance, zero target), so the compiled functions are
reused as a search grows and the likelihood and posterior equal those of the real rows alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from .._checks import integer

__all__ = ["GP", "GPParams", "Prior", "fit_gp", "float64", "matern52", "padded_size"]

_SQRT5 = math.sqrt(5.0)


@cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


@contextmanager
def float64() -> Iterator[None]:
    """Run the GP's numerics: JAX in float64, and BLAS/LAPACK on one thread.

    The matrices are small (hundreds of rows), where threaded BLAS gains nothing and, on a busy
    machine, threads waiting for cores make a Cholesky factorisation a hundred times slower.
    """
    controller = _blas_controller()
    with jax.enable_x64(True):
        if controller is None:
            yield
        else:
            with controller.limit(limits=1, user_api="blas"):
                yield


def matern52(x1: jax.Array, x2: jax.Array, lengthscale: jax.Array, amplitude: jax.Array):
    """The Matern-5/2 covariance of one pair of points.

    ``amplitude * (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)`` with ``r`` the distance scaled
    by one lengthscale per coordinate (automatic relevance determination).
    """
    r2 = jnp.sum(((x1 - x2) / lengthscale) ** 2)
    r = jnp.sqrt(jnp.maximum(r2, 1e-36))  # sqrt has no gradient at 0; the kernel's is 0 there
    return amplitude * (1.0 + _SQRT5 * r + 5.0 / 3.0 * r2) * jnp.exp(-_SQRT5 * r)


def _cross(xa: jax.Array, xb: jax.Array, lengthscale, amplitude) -> jax.Array:
    """The covariance matrix between the rows of ``xa`` and of ``xb``."""
    pair = partial(matern52, lengthscale=lengthscale, amplitude=amplitude)
    return jax.vmap(lambda a: jax.vmap(lambda b: pair(a, b))(xb))(xa)


class GPParams(NamedTuple):
    """Kernel hyperparameters (for standardised outputs on the unit cube).

    Attributes
    ----------
    lengthscale
        ``(d,)``, one per coordinate of the cube.
    amplitude
        Signal variance.
    noise
        Observation noise variance.
    """

    lengthscale: np.ndarray
    amplitude: float
    noise: float


@dataclass(frozen=True)
class Prior:
    """Log-normal priors and bounds on the hyperparameters of a standardised GP.

    Each prior is given by its median and the standard deviation of its logarithm; the bounds
    keep L-BFGS-B away from degenerate kernels. The defaults suit functions that are smooth on
    the scale of the cube and observed with little noise (simulations, deterministic test
    functions, trained-model scores); raise ``noise_median`` for noisy objectives.
    """

    lengthscale_median: float = 0.3
    lengthscale_sigma: float = 1.0
    amplitude_median: float = 1.0
    amplitude_sigma: float = 1.0
    noise_median: float = 1e-4
    noise_sigma: float = 2.0
    lengthscale_bounds: tuple[float, float] = (0.01, 20.0)
    amplitude_bounds: tuple[float, float] = (0.01, 100.0)
    noise_bounds: tuple[float, float] = (1e-6, 1.0)

    def __post_init__(self) -> None:
        for name in ("lengthscale", "amplitude", "noise"):
            median = getattr(self, f"{name}_median")
            sigma = getattr(self, f"{name}_sigma")
            low, high = getattr(self, f"{name}_bounds")
            if not (median > 0 and sigma > 0 and 0 < low < high):
                raise ValueError(
                    f"Prior.{name}: median and sigma must be > 0 and bounds 0 < low < high, "
                    f"got median={median}, sigma={sigma}, bounds=({low}, {high})"
                )

    def _centre(self, d: int) -> np.ndarray:
        return np.log([self.lengthscale_median] * d + [self.amplitude_median, self.noise_median])

    def _sigma(self, d: int) -> np.ndarray:
        return np.array([self.lengthscale_sigma] * d + [self.amplitude_sigma, self.noise_sigma])

    def _bounds(self, d: int) -> np.ndarray:
        return np.log([self.lengthscale_bounds] * d + [self.amplitude_bounds, self.noise_bounds])

    def sample(self, d: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of the log-hyperparameters, clipped to the bounds: ``(n, d + 2)``."""
        theta = self._centre(d) + self._sigma(d) * rng.standard_normal((n, d + 2))
        bounds = self._bounds(d)
        return np.clip(theta, bounds[:, 0], bounds[:, 1])


def padded_size(n: int, minimum: int = 16) -> int:
    """Rows the compiled functions see for ``n`` observations: a power of two >= ``minimum``."""
    return max(minimum, 1 << max(0, int(n) - 1).bit_length())


def _unpack(theta: jax.Array, d: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    return jnp.exp(theta[:d]), jnp.exp(theta[d]), jnp.exp(theta[d + 1])


def _gram(x, mask, lengthscale, amplitude, noise):
    """Noisy covariance of the observations; padded rows become rows of the identity."""
    k = _cross(x, x, lengthscale, amplitude) * (mask[:, None] * mask[None, :])
    return k + jnp.diag(noise * mask + (1.0 - mask))


def _log_likelihood(theta, x, y, mask):
    """Log marginal likelihood of the (standardised) observations; padded rows add nothing."""
    lengthscale, amplitude, noise = _unpack(theta, x.shape[1])
    chol = jnp.linalg.cholesky(_gram(x, mask, lengthscale, amplitude, noise))
    alpha = jax.scipy.linalg.cho_solve((chol, True), y)
    n = jnp.sum(mask)
    return -0.5 * y @ alpha - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * n * math.log(2 * math.pi)


def _neg_log_posterior(theta, x, y, mask, centre, sigma):
    """Negative log marginal likelihood plus negative log prior (of the log-hyperparameters)."""
    nll = -_log_likelihood(theta, x, y, mask)
    nlp = 0.5 * jnp.sum(((theta - centre) / sigma) ** 2)
    # A failed Cholesky (NaN) must not win: make it the worst value with no gradient.
    value = nll + nlp
    return jnp.where(jnp.isfinite(value), value, 1e10)


@jax.jit
def _batched_objective(thetas, x, y, mask, centre, sigma):
    """Sum over restarts of the negative log posterior and its gradient, one row per start."""

    def one(theta):
        return jax.value_and_grad(_neg_log_posterior)(theta, x, y, mask, centre, sigma)

    values, grads = jax.vmap(one)(thetas)
    grads = jnp.where(jnp.isfinite(grads), grads, 0.0)
    return values, grads


_jit_log_likelihood = jax.jit(_log_likelihood)


@jax.jit
def _factor(theta, x, y, mask):
    d = x.shape[1]
    lengthscale, amplitude, noise = _unpack(theta, d)
    chol = jnp.linalg.cholesky(_gram(x, mask, lengthscale, amplitude, noise))
    alpha = jax.scipy.linalg.cho_solve((chol, True), y)
    return chol, alpha


@jax.jit
def _predict(xq, x, mask, chol, alpha, theta):
    """Posterior mean and variance (standardised units) at the rows of ``xq``."""
    lengthscale, amplitude, _ = _unpack(theta, x.shape[1])
    kq = _cross(xq, x, lengthscale, amplitude) * mask[None, :]
    mean = kq @ alpha
    v = jax.scipy.linalg.solve_triangular(chol, kq.T, lower=True)
    var = jnp.maximum(amplitude - jnp.sum(v * v, axis=0), 1e-12 * amplitude)
    return mean, var


class GP:
    """A fitted Gaussian process: data, hyperparameters, and the factorised covariance.

    Build it with :func:`fit_gp`; :meth:`condition` adds observations without refitting the
    hyperparameters (for fantasies in batch suggestions).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        theta: np.ndarray,
        y_mean: float | None = None,
        y_scale: float | None = None,
    ) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.n, self.dim = x.shape
        self.x, self.y = x, y
        self.theta = np.asarray(theta, dtype=np.float64)
        if y_mean is None:
            y_mean, y_scale = _standardisation(y)
        self.y_mean, self.y_scale = float(y_mean), float(y_scale)
        size = padded_size(self.n)
        self._x = np.zeros((size, self.dim))
        self._x[: self.n] = x
        self._mask = np.zeros(size)
        self._mask[: self.n] = 1.0
        self._z = np.zeros(size)
        self._z[: self.n] = (y - self.y_mean) / self.y_scale
        with float64():
            chol, alpha = _factor(self.theta, self._x, self._z, self._mask)
            self._chol, self._alpha = np.asarray(chol), np.asarray(alpha)

    @property
    def hyperparameters(self) -> GPParams:
        """Lengthscales, amplitude and noise variance (standardised outputs)."""
        d = self.dim
        return GPParams(
            np.exp(self.theta[:d]), float(np.exp(self.theta[d])), float(np.exp(self.theta[d + 1]))
        )

    def predict(self, xq: np.ndarray, *, standardised: bool = False):
        """Posterior mean and variance of the latent function at the rows of ``xq``.

        Parameters
        ----------
        xq
            ``(m, d)`` points of the cube.
        standardised
            Return them in the standardised units the GP was fitted in instead of y's.

        Returns
        -------
        mean, var : np.ndarray
            ``(m,)`` each.
        """
        xq = np.atleast_2d(np.asarray(xq, dtype=np.float64))
        with float64():
            mean, var = _predict(xq, *self.arrays())
            mean, var = np.asarray(mean), np.asarray(var)
        if standardised:
            return mean, var
        return self.y_mean + self.y_scale * mean, var * self.y_scale**2

    def log_marginal_likelihood(self) -> float:
        """log p(y | hyperparameters) of the standardised observations."""
        with float64():
            return float(_jit_log_likelihood(self.theta, self._x, self._z, self._mask))

    def arrays(self) -> tuple[np.ndarray, ...]:
        """``(x, mask, chol, alpha, theta)``: the padded arrays the compiled functions take."""
        return self._x, self._mask, self._chol, self._alpha, self.theta

    def standardise(self, y: np.ndarray | float) -> np.ndarray:
        """Values of y in the GP's standardised units."""
        return (np.asarray(y, dtype=np.float64) - self.y_mean) / self.y_scale

    def condition(self, x_new: np.ndarray, y_new: np.ndarray) -> GP:
        """The same GP (hyperparameters and standardisation) with more observations."""
        x_new = np.atleast_2d(np.asarray(x_new, dtype=np.float64))
        y_new = np.atleast_1d(np.asarray(y_new, dtype=np.float64))
        return GP(
            np.vstack([self.x, x_new]),
            np.concatenate([self.y, y_new]),
            self.theta,
            self.y_mean,
            self.y_scale,
        )


def _standardisation(y: np.ndarray) -> tuple[float, float]:
    scale = float(np.std(y))
    if not np.isfinite(scale) or scale < 1e-12 * max(1.0, float(np.max(np.abs(y)))):
        scale = 1.0  # constant observations: nothing to scale
    return float(np.mean(y)), scale


def fit_gp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    prior: Prior | None = None,
    restarts: int = 3,
    init: np.ndarray | None = None,
    seed: int | np.random.Generator = 0,
    maxiter: int = 200,
) -> GP:
    """Fit the hyperparameters of a GP to observations by maximum a posteriori.

    Parameters
    ----------
    x
        ``(n, d)`` inputs in the unit cube.
    y
        ``(n,)`` finite outputs; standardised inside.
    prior
        Priors and bounds of the hyperparameters (default :class:`Prior`).
    restarts
        Starting points for L-BFGS-B, optimised together: ``init`` (when given), the priors'
        medians, and draws from the priors for the rest.
    init
        Log-hyperparameters to start from, e.g. the previous fit's ``GP.theta``.
    seed
        Seed (or generator) of the random starts.
    maxiter
        L-BFGS-B iterations at most.

    Returns
    -------
    GP
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
    if x.shape[0] < 1:
        raise ValueError("a GP needs at least one observation")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite; leave failed evaluations out of the fit")
    restarts = integer("restarts", restarts, low=1)
    prior = prior or Prior()
    rng = np.random.default_rng(seed)
    n, d = x.shape
    bounds = prior._bounds(d)
    starts = [prior._centre(d)]
    if init is not None:
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (d + 2,):
            raise ValueError(f"init must hold {d + 2} log-hyperparameters, got {init.shape}")
        starts.insert(0, np.clip(init, bounds[:, 0], bounds[:, 1]))
    if restarts > len(starts):
        starts.extend(prior.sample(d, restarts - len(starts), rng))
    thetas = np.stack(starts[:restarts])

    y_mean, y_scale = _standardisation(y)
    size = padded_size(n)
    xp = np.zeros((size, d))
    xp[:n] = x
    mask = np.zeros(size)
    mask[:n] = 1.0
    z = np.zeros(size)
    z[:n] = (y - y_mean) / y_scale
    centre, sigma = prior._centre(d), prior._sigma(d)
    shape = thetas.shape

    with float64():
        args = (xp, z, mask, centre, sigma)

        def objective(flat):
            values, grads = _batched_objective(flat.reshape(shape), *args)
            return float(np.sum(values)), np.asarray(grads, dtype=np.float64).ravel()

        result = minimize(
            objective,
            thetas.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=np.tile(bounds, (shape[0], 1)),
            # The MAP needs no more precision than this: the acquisition barely moves.
            options={"maxiter": maxiter, "ftol": 1e-6},
        )
        final = result.x.reshape(shape)
        values, _ = _batched_objective(final, *args)
        best = final[int(np.argmin(np.asarray(values)))]
    return GP(x, y, best, y_mean, y_scale)
