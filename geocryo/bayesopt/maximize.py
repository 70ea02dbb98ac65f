"""Maximising an acquisition over the unit cube: quasi-random candidates polished by gradients.

1. Score a fixed number of candidates in one compiled call: a scrambled Sobol set over the whole
   cube, plus Gaussian perturbations of the best observations at two scales (exploitation needs
   points near the incumbent that a space-filling set rarely hits in a small box).
2. Polish the best few with L-BFGS-B on their summed (negated) acquisition, with
   :func:`jax.value_and_grad`, inside the cube's bounds.
3. Snap the polished points and the best raw candidates onto valid configurations
   (:meth:`~geocryo.bayesopt.space.Space.snap`), score them again, and return the best that is not
   a duplicate of an excluded point (observations and pending trials).

The candidate count and the polished count are fixed, and observation arrays are padded by the
GP, so each compiled function is built once per padded size.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from .acquisition import log_ei, ucb
from .gp import GP, _predict, float64
from .space import Space

__all__ = ["acquisition_values", "maximize"]


@partial(jax.jit, static_argnames="kind")
def _acquisition(xq, x, mask, chol, alpha, theta, best, kappa, kind):
    mean, var = _predict(xq, x, mask, chol, alpha, theta)
    std = jnp.sqrt(var)
    if kind == "ucb":
        return ucb(mean, std, kappa)
    return log_ei(mean, std, best)


@partial(jax.jit, static_argnames="kind")
def _negated_sum_and_grad(flat, x, mask, chol, alpha, theta, best, kappa, kind):
    def total(f):
        xq = f.reshape(-1, x.shape[1])
        return -jnp.sum(_acquisition(xq, x, mask, chol, alpha, theta, best, kappa, kind))

    value, grad = jax.value_and_grad(total)(flat)
    return value, jnp.where(jnp.isfinite(grad), grad, 0.0)


def acquisition_values(
    gp: GP, xq: np.ndarray, best: float, *, kind: str = "log_ei", kappa: float = 2.0
) -> np.ndarray:
    """The acquisition at the rows of ``xq``; ``best`` in the GP's standardised units."""
    xq = np.atleast_2d(np.asarray(xq, dtype=np.float64))
    with float64():
        values = _acquisition(xq, *gp.arrays(), float(best), float(kappa), kind)
        return np.asarray(values)


def _duplicate(point: np.ndarray, others: np.ndarray, tol: float) -> bool:
    return others.size > 0 and bool(np.any(np.max(np.abs(others - point), axis=1) <= tol))


def maximize(
    gp: GP,
    space: Space,
    best: float,
    rng: np.random.Generator,
    *,
    kind: str = "log_ei",
    kappa: float = 2.0,
    exclude: np.ndarray | None = None,
    n_candidates: int = 2048,
    n_local: int = 512,
    n_polish: int = 8,
    maxiter: int = 100,
    tol: float = 1e-9,
) -> np.ndarray | None:
    """The point of the cube with the largest acquisition, snapped to a valid configuration.

    Parameters
    ----------
    gp
        The fitted (possibly fantasy-conditioned) GP.
    space
        Where points are snapped to valid configurations.
    best
        The incumbent in the GP's standardised units (for log EI).
    rng
        Randomness of the candidates.
    kind, kappa
        ``"log_ei"`` or ``"ucb"``, and the UCB's multiplier of the standard deviation.
    exclude
        ``(k, width)`` points never to return (observed and pending ones).
    n_candidates, n_local, n_polish, maxiter
        Sobol candidates (a power of two), perturbations of the best observations, candidates
        polished by L-BFGS-B, and its iterations.
    tol
        Points closer than this (max-norm) to an excluded one are duplicates.

    Returns
    -------
    np.ndarray or None
        ``(width,)``; ``None`` when every scored point duplicates an excluded one.
    """
    d = space.width
    exclude = np.zeros((0, d)) if exclude is None else np.atleast_2d(exclude)
    sobol = qmc.Sobol(d, scramble=True, rng=rng).random(n_candidates)
    order = np.argsort(gp.y)[:4]
    centres = gp.x[order[rng.integers(0, len(order), n_local)]]
    scales = np.where(np.arange(n_local) % 2 == 0, 0.01, 0.1)[:, None]
    local = np.clip(centres + scales * rng.standard_normal((n_local, d)), 0.0, 1.0)
    candidates = np.vstack([sobol, local])
    scores = acquisition_values(gp, candidates, best, kind=kind, kappa=kappa)
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    ranked = np.argsort(-scores)
    starts = candidates[ranked[:n_polish]]

    arrays = gp.arrays()
    shape = starts.shape
    with float64():

        def objective(flat):
            value, grad = _negated_sum_and_grad(flat, *arrays, float(best), float(kappa), kind)
            return float(value), np.asarray(grad, dtype=np.float64)

        result = minimize(
            objective,
            starts.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * starts.size,
            options={"maxiter": maxiter},
        )
    polished = np.clip(result.x.reshape(shape), 0.0, 1.0)

    # Snap and re-score: the polished points, then the raw candidates in order of their score.
    pool = np.vstack([polished, candidates[ranked[: 8 * n_polish]]])
    snapped = space.snap(pool)
    values = acquisition_values(gp, snapped, best, kind=kind, kappa=kappa)
    values = np.where(np.isfinite(values), values, -np.inf)
    for i in np.argsort(-values, kind="stable"):
        if not _duplicate(snapped[i], exclude, tol):
            return snapped[i]
    # Every top point is taken (a small discrete space): try the remaining candidates.
    for i in ranked[8 * n_polish :]:
        point = space.snap(candidates[i])
        if not _duplicate(point, exclude, tol):
            return point
    return None
