"""The closed-form start of the network's linear skip: ridge regression on the training windows.

:class:`~geocryo.models.network.GeoCryoNet`'s skip maps the last look-back month of every
input channel linearly to the targets. That map has a closed form: :func:`fit_skip` fits it by
ridge regression on the observed targets of the training batches. The ensemble then starts from
it (see :class:`~geocryo.train.Trainer`'s ``initial``) and the recurrent encoders learn what it
misses.

The penalty of each target is chosen by cross-validation over cells: the observed cells (the
sites) are dealt into folds, and each fold is predicted by the map fitted on the others. The
model forecasts every cell of the grid from a few dozen sites, so what matters is how a map
carries to cells it was not fitted on; a validation period at the same sites cannot tell.

The target history is left out of the fit (its weights start at 0): at the few cells with a site
it is the best predictor there is, and a map fitted there would lean on it, while the cells the
model forecasts mostly have none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..batching.channels import HISTORY
from ..models.network import latest_inputs
from .trainer import _close

__all__ = ["FOLDS", "PENALTIES", "fit_skip"]

#: Ridge penalties tried, as fractions of the number of observations of a target.
PENALTIES: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0)

#: Folds of cells for choosing the penalty.
FOLDS = 5


def _fold(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The cross-validation fold of cells (y, x): a fixed hash, so a cell keeps its fold."""
    mixed = (y.astype(np.int64) * 73856093) ^ (x.astype(np.int64) * 19349663)
    return mixed % FOLDS


def _moments(
    batches: Iterable, groups: Sequence[str], used: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per target and fold: X'X, X'y (X with a last column of ones), y'y and the count."""
    c = int(used.sum()) + 1
    gram = np.zeros((k, FOLDS, c, c))
    cross = np.zeros((k, FOLDS, c))
    squares = np.zeros((k, FOLDS))
    count = np.zeros((k, FOLDS))
    iterator = iter(batches)
    try:
        for batch in iterator:
            x = np.asarray(latest_inputs(batch.inputs, groups), np.float64)
            p = x.shape[1]
            x = x.reshape(-1, x.shape[-1])[:, used]
            x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
            rows = np.asarray(batch.y0)[:, None, None] + np.arange(p)[None, :, None]
            cols = np.asarray(batch.x0)[:, None, None] + np.arange(p)[None, None, :]
            fold = _fold(*np.broadcast_arrays(rows, cols)).reshape(-1)
            targets = np.asarray(batch.targets, np.float64).reshape(-1, k)
            mask = np.asarray(batch.mask).reshape(-1, k) > 0
            for j in range(k):
                for f in range(FOLDS):
                    pick = mask[:, j] & (fold == f)
                    rows_f, y = x[pick], targets[pick, j]
                    gram[j, f] += rows_f.T @ rows_f
                    cross[j, f] += rows_f.T @ y
                    squares[j, f] += y @ y
                    count[j, f] += len(y)
    finally:
        _close(iterator)
    return gram, cross, squares, count


def _one_standard_error(penalties: Sequence[float], errors: np.ndarray) -> int:
    """The largest penalty whose mean fold error is within a standard error of the least.

    The one-standard-error rule (Hastie, Tibshirani and Friedman, *The Elements of Statistical
    Learning*, 7.10): among penalties the folds cannot tell apart, the strongest. The sites
    cover only part of the range of the inputs that the grid's cells span, and a weaker penalty
    lets the map extrapolate wildly into the rest.
    """
    mean = errors.mean(axis=1)
    least = int(np.argmin(mean))
    folds = errors.shape[1]
    spread = errors[least].std(ddof=1) / np.sqrt(folds) if folds > 1 else 0.0
    within = [i for i in range(len(penalties)) if mean[i] <= mean[least] + spread]
    return max(within, key=lambda i: penalties[i])


def _solve(gram: np.ndarray, cross: np.ndarray, penalty: float) -> np.ndarray:
    eye = np.eye(len(gram))
    eye[-1, -1] = 0.0  # the intercept is free
    return np.linalg.lstsq(gram + penalty * eye, cross, rcond=None)[0]


def fit_skip(
    groups: Sequence[str],
    channels: Mapping[str, Sequence[str]],
    targets: Sequence[str],
    train: Iterable,
    penalties: Sequence[float] = PENALTIES,
) -> dict[str, np.ndarray]:
    """Ridge regression of the targets on the last input month: the skip's ``kernel`` and ``bias``.

    Parameters
    ----------
    groups, channels, targets
        The network's input groups (in order), each group's channel names, and its targets.
    train
        Training batches (:class:`~geocryo.batching.Batch`), read once.
    penalties
        Penalties to try, as fractions of a target's number of observations (the intercept is
        not penalised). Each target takes the strongest whose error, cross-validated over
        :data:`FOLDS` folds of cells, is within one standard error of the least.

    Returns
    -------
    dict
        ``kernel`` (C, K) float32, rows in :func:`~geocryo.models.network.latest_inputs` order,
        0 on the target-history channels (and for a target never observed); ``bias`` (K,).
    """
    if not len(penalties) or any(p < 0 for p in penalties):
        raise ValueError(f"penalties must be a non-empty sequence of numbers >= 0: {penalties}")
    sizes = [len(channels[g]) for g in groups]
    used = np.concatenate(
        [np.full(n, g != HISTORY or len(groups) == 1) for g, n in zip(groups, sizes, strict=True)]
    )
    k = len(targets)
    gram, cross, squares, count = _moments(train, groups, used, k)
    kernel = np.zeros((len(used), k), np.float32)
    bias = np.zeros(k, np.float32)
    for j in range(k):
        total = count[j].sum()
        if total == 0:
            continue
        folds = np.flatnonzero(count[j] > 0)
        errors = np.empty((len(penalties), len(folds)))  # each fold's mean squared error
        for i, penalty in enumerate(penalties):
            for n, f in enumerate(folds):
                rest = total - count[j, f]
                w = _solve(
                    gram[j].sum(0) - gram[j, f], cross[j].sum(0) - cross[j, f], penalty * rest
                )
                sse = w @ gram[j, f] @ w - 2 * w @ cross[j, f] + squares[j, f]
                errors[i, n] = sse / count[j, f]
        best = penalties[_one_standard_error(penalties, errors)]
        w = _solve(gram[j].sum(0), cross[j].sum(0), best * total)
        kernel[used, j] = w[:-1]
        bias[j] = w[-1]
    return {"kernel": kernel, "bias": bias}
