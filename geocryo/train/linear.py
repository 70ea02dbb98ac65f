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

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..batching.channels import HISTORY
from ..models.network import departure_features, latest_inputs
from .trainer import _close

__all__ = ["FOLDS", "PENALTIES", "fit_departure", "fit_skip"]

#: Ridge penalties tried, as fractions of the number of observations of a target.
PENALTIES: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0)

#: Folds of cells for choosing the penalty.
FOLDS = 5


def _fold(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The cross-validation fold of cells (y, x): a fixed hash, so a cell keeps its fold."""
    mixed = (y.astype(np.int64) * 73856093) ^ (x.astype(np.int64) * 19349663)
    return mixed % FOLDS


def _moments(
    batches: Iterable, design: Callable[[Any], tuple[np.ndarray, np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per target and fold: X'X, X'y (X with a last column of ones), y'y and the count.

    ``design(batch)`` gives the batch's features ``(B, p, p, C)``, what to regress on them
    ``(B, p, p, K)`` and which of those values to use ``(B, p, p, K)`` bool.
    """
    gram = cross = squares = count = None
    iterator = iter(batches)
    try:
        for batch in iterator:
            x, y, use = design(batch)
            p = x.shape[1]
            x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
            x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
            if gram is None:
                c = x.shape[1]
                gram, cross = np.zeros((k, FOLDS, c, c)), np.zeros((k, FOLDS, c))
                squares, count = np.zeros((k, FOLDS)), np.zeros((k, FOLDS))
            rows = np.asarray(batch.y0)[:, None, None] + np.arange(p)[None, :, None]
            cols = np.asarray(batch.x0)[:, None, None] + np.arange(p)[None, None, :]
            fold = _fold(*np.broadcast_arrays(rows, cols)).reshape(-1)
            targets = np.asarray(y, np.float64).reshape(-1, k)
            use = np.asarray(use).reshape(-1, k)
            for j in range(k):
                for f in range(FOLDS):
                    pick = use[:, j] & (fold == f)
                    rows_f, values = x[pick], targets[pick, j]
                    gram[j, f] += rows_f.T @ rows_f
                    cross[j, f] += rows_f.T @ values
                    squares[j, f] += values @ values
                    count[j, f] += len(values)
    finally:
        _close(iterator)
    if gram is None:
        raise ValueError("the training stream has no batch to fit a linear map on")
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

    def design(batch):
        x = np.asarray(latest_inputs(batch.inputs, groups))[..., used]
        return x, batch.targets, np.asarray(batch.mask) > 0

    moments = _moments(train, design, k)
    return _ridge(moments, used, k, penalties)


def fit_departure(
    groups: Sequence[str],
    anchors: Sequence[tuple[int, int]],
    lead: int,
    targets: Sequence[str],
    train: Iterable,
    penalties: Sequence[float] = PENALTIES,
) -> dict[str, np.ndarray]:
    """Ridge regression of each target's departure from its climatology: the network's
    ``departure`` map.

    On the observed cells that have the target's climatology (the sites), the target less its
    climatology is regressed on :func:`~geocryo.models.network.departure_features`: the last
    month of every group but the history, and every target's latest departure from its own
    climatology. Penalties are chosen as in :func:`fit_skip`.

    Returns
    -------
    dict
        ``kernel`` (C + K, K) float32 and ``bias`` (K,); zeros for a target without a
        climatology.
    """
    if not len(penalties) or any(p < 0 for p in penalties):
        raise ValueError(f"penalties must be a non-empty sequence of numbers >= 0: {penalties}")
    k = len(targets)

    def design(batch):
        x = departure_features(batch.inputs, groups, anchors, lead)
        latest = np.asarray(batch.inputs[HISTORY][:, -1])
        y = np.zeros_like(np.asarray(batch.targets))
        use = np.zeros(y.shape, bool)
        for j, (_, clim) in enumerate(anchors):
            if clim < 0:
                continue
            y[..., j] = batch.targets[..., j] - latest[..., clim]
            use[..., j] = (np.asarray(batch.mask[..., j]) > 0) & (latest[..., clim + 1] < 0.5)
        return x, y, use

    gram, cross, squares, count = _moments(train, design, k)
    used = np.ones(gram.shape[-1] - 1, bool)
    return _ridge((gram, cross, squares, count), used, k, penalties)


def _ridge(moments, used: np.ndarray, k: int, penalties: Sequence[float]) -> dict:
    """Each target's ridge map from the moments, its penalty chosen by cross-validation."""
    gram, cross, squares, count = moments
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
