"""The statistics behind a preprocessing plan: what is fitted, and the pass that fits it.

The plan of one variable is a :class:`VariablePlan`: its scaling (mean and standard deviation),
its per-pixel linear trend when detrending, and its principal-component projection when it has a
dim besides time, y and x. The fitted values are plain numpy arrays and floats.

Each many-band variable's PCA (dask-ml, exact SVD) is one compute; everything else comes from one
more, shared by all variables (so a synthetic or stored chunk is read once): per-pixel sums of
each time-varying variable (count, sums of t, v, t², tv, v²) give the per-pixel trends *and* the
statistics of the detrended values without a second pass; other variables use dask's NaN-aware
mean and variance (the reductions :class:`dask_ml.preprocessing.StandardScaler` uses, done here
all at once instead of one compute per variable); the PCAs' band means come along, and the
statistics of their scores follow from the fit itself.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ..cube import TARGETS

__all__ = ["Projection", "Scaling", "Trend", "VariablePlan", "fit_plans", "month_offsets"]

_CORE = ("time", "y", "x")
#: Fallback reasons recorded in the statistics when a variable cannot be scaled by its data.
CONSTANT = "constant: std 0 in the training period, std set to 1"
UNOBSERVED = "unobserved: no value in the training period, mean 0 and std 1"


@dataclass(frozen=True)
class Scaling:
    """Standardisation of one output variable: ``(value - mean) / std``."""

    mean: float
    std: float
    count: int  # observed (non-NaN) training values the statistics came from
    fallback: str = ""  # why std (and mean) are not the data's; empty when they are


@dataclass(frozen=True)
class Trend:
    """A per-pixel linear trend ``intercept + slope * t``, t in months since the plan's origin.

    Pixels with too few observed training months (``local`` False) carry the variable's trend
    fitted over all pixels together.
    """

    intercept: np.ndarray  # (y, x) float64, value at the origin month
    slope: np.ndarray  # (y, x) float64, per month
    local: np.ndarray  # (y, x) bool


@dataclass(frozen=True)
class Projection:
    """Principal components of a many-band variable: ``(value - mean) @ components.T``."""

    dim: str  # the reduced dim, e.g. "band"
    coord: np.ndarray  # its coordinate values, checked on transform
    mean: np.ndarray  # (features,) float64
    components: np.ndarray  # (k, features) float64, unit rows, sign fixed
    explained_variance: np.ndarray  # (k,)
    explained_variance_ratio: np.ndarray  # (k,) of the total variance over all bands
    n_samples: int  # training pixels (rows) without NaN the PCA was fitted on


@dataclass(frozen=True)
class VariablePlan:
    """Everything fitted for one input variable."""

    name: str  # input name
    output: str  # output name (``<name>_pc`` when projected)
    dims: tuple[str, ...]  # input dims
    attrs: dict  # input attrs
    scaling: Scaling
    trend: Trend | None = None
    projection: Projection | None = None


def month_offsets(time, origin: pd.Period) -> np.ndarray:
    """Whole months from ``origin`` to each of ``time`` (float64, negative before it)."""
    months = pd.DatetimeIndex(np.asarray(time)).to_period("M")
    return (months.asi8 - origin.ordinal).astype(np.float64)


def _extra_dims(name: str, var: xr.DataArray) -> list[str]:
    if not {"y", "x"} <= set(var.dims):
        raise ValueError(f"preprocess: variable {name!r} has dims {var.dims}; it needs 'y' and 'x'")
    extra = [d for d in var.dims if d not in _CORE]
    if len(extra) > 1:
        raise ValueError(
            f"preprocess: variable {name!r} has more than one dim besides time, y and x "
            f"({extra}); reduce it to one (e.g. stack them) before preprocessing"
        )
    if not np.issubdtype(var.dtype, np.floating):
        raise ValueError(
            f"preprocess: variable {name!r} has dtype {var.dtype}; cast it to float with NaN "
            "for missing values"
        )
    return extra


def select_variables(cube: xr.Dataset, variables: tuple[str, ...] | None) -> list[str]:
    """The variables a plan covers, in the cube's order: ``variables`` (or all) plus targets."""
    present = [str(name) for name in cube.data_vars]
    if variables is None:
        return present
    missing = [name for name in variables if name not in cube.data_vars]
    if missing:
        raise KeyError(
            f"PreprocessConfig.variables names {missing}, which the cube does not have; "
            f"it has {present}"
        )
    wanted = set(variables) | set(TARGETS)
    return [name for name in present if name in wanted]


def _as_dask(var: xr.DataArray) -> da.Array:
    data = var.data
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data), chunks=-1)


def _fix_signs(components: np.ndarray) -> np.ndarray:
    # An SVD fixes each component only up to its sign; make the largest loading positive so the
    # same data give the same components whatever the chunking or backend.
    rows = np.arange(len(components))
    signs = np.sign(components[rows, np.argmax(np.abs(components), axis=1)])
    return components * np.where(signs == 0, 1.0, signs)[:, None]


def fit_projection(name: str, var: xr.DataArray, dim: str, k: int) -> tuple[dict, da.Array]:
    """dask-ml PCA of ``var`` with pixels (and months) as samples and ``dim`` as features.

    Rows with a NaN in any band are left out. One compute, the SVD; the band means it centres
    on are returned lazily, to come with the other statistics (dask-ml's own ``mean_`` is lazy
    too, and reading it would be one more pass over the bands).

    Returns
    -------
    fields, mean
        The :class:`Projection` fields but ``mean``, and the lazy ``mean``.
    """
    from dask_ml.decomposition import PCA

    n_features = var.sizes[dim]
    k = min(k, n_features)
    order = [d for d in var.dims if d != dim] + [dim]
    pixels = _as_dask(var.transpose(*order)).rechunk({len(order) - 1: -1})
    # Each block's pixels become rows on their own: no reshape across chunks, no rechunking.
    blocks = [pixels.blocks[i].reshape(-1, n_features) for i in np.ndindex(pixels.numblocks[:-1])]
    rows = da.concatenate(blocks).astype(np.float64)
    rows = rows[~da.isnan(rows).any(axis=1)]
    mean = rows.mean(axis=0)
    # svd_solver="full" is the exact tall-skinny QR + SVD; "auto" may pick a randomized one.
    pca = PCA(n_components=k, svd_solver="full")
    try:
        pca.fit(rows - mean)
    except ValueError as err:
        raise ValueError(
            f"preprocess: PCA of {name!r} failed; it needs at least {k} training pixels with "
            f"every {dim} observed (PreprocessConfig.pca_components={k}): {err}"
        ) from err
    if pca.n_samples_ < 2:
        raise ValueError(
            f"preprocess: PCA of {name!r} has {pca.n_samples_} training pixels with every {dim} "
            "observed; it needs at least 2"
        )
    fields = {
        "dim": dim,
        "coord": np.asarray(var[dim].values),
        "components": _fix_signs(np.asarray(pca.components_, dtype=np.float64)),
        "explained_variance": np.asarray(pca.explained_variance_, dtype=np.float64),
        "explained_variance_ratio": np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
        "n_samples": int(pca.n_samples_),
    }
    return fields, mean


def _score_scaling(fields: dict) -> tuple[float, float, int]:
    """Mean, variance and count of the scores over the PCA's own samples, from its fit.

    The scores are centred by construction, and component j has variance
    ``explained_variance[j] * (n - 1) / n`` (ddof 0): no pass over the data is needed.
    """
    n, ev = fields["n_samples"], fields["explained_variance"]
    return 0.0, float(ev.sum() * (n - 1) / n / len(ev)), n * len(ev)


def project(var: xr.DataArray, projection: Projection, output_dtype) -> xr.DataArray:
    """Principal-component scores of ``var``: the ``dim`` axis becomes ``component``."""
    dim = projection.dim
    mean = xr.DataArray(projection.mean.astype(output_dtype), dims=[dim])
    weights = xr.DataArray(projection.components.astype(output_dtype), dims=["component", dim])
    var = var.drop_vars([c for c in var.coords if dim in var[c].dims])
    # Products summed by numpy over the bands, not a BLAS dot: BLAS splits its sums over as many
    # threads as it has, so the scores would differ in the last bits between the local scheduler
    # and single-threaded dask workers.
    scores = ((var - mean) * weights).sum(dim, skipna=False)  # a missing band: NaN scores
    order = [d for d in var.dims if d != dim]
    order.insert(order.index("y"), "component")
    return scores.transpose(*order)


def _moment_job(data: da.Array) -> dict[str, da.Array]:
    data = data.astype(np.float64)
    return {
        "count": (~da.isnan(data)).sum(),
        "mean": da.nanmean(data),
        "var": da.nanvar(data),
    }


def _trend_job(data: da.Array, t: np.ndarray) -> da.Array:
    """Per-pixel sums (n, Σt, Σt², Σv, Σtv, Σv²) over observed months: shape (6, y, x)."""
    data = data.astype(np.float64)
    tt = da.from_array(t, chunks=(data.chunks[0],))[:, None, None]
    seen = ~da.isnan(data)
    values = da.where(seen, data, 0.0)
    at = da.where(seen, tt, 0.0)
    return da.stack(
        [
            seen.sum(axis=0, dtype=np.float64),
            at.sum(axis=0),
            (at * tt).sum(axis=0),
            values.sum(axis=0),
            (values * tt).sum(axis=0),
            (values * values).sum(axis=0),
        ]
    )


def _line(n, st, stt, sv, stv):
    """Least-squares intercept and slope from sums; degenerate fits get slope 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sxx = stt - st * st / n
        ok = (n >= 2) & (sxx > 0.25)  # two distinct whole months give sxx >= 0.5
        slope = np.where(ok, (stv - st * sv / n) / sxx, 0.0)
        intercept = np.where(n > 0, (sv - slope * st) / n, 0.0)
    return intercept, slope, ok


def _finish_trend(sums: np.ndarray, min_months: int) -> tuple[Trend, float, float, int]:
    n, st, stt, sv, stv, svv = sums
    a0, b0, _ = _line(*(np.asarray(s.sum()) for s in (n, st, stt, sv, stv)))
    a, b, ok = _line(n, st, stt, sv, stv)
    local = ok & (n >= min_months)
    a = np.where(local, a, a0)
    b = np.where(local, b, b0)
    # Residual sums of r = v - a - b t from the same sums: no second pass over the data.
    r1 = sv - a * n - b * st
    r2 = svv - 2 * a * sv - 2 * b * stv + a * a * n + 2 * a * b * st + b * b * stt
    total = int(np.rint(n.sum()))
    if total == 0:
        return Trend(a, b, local), np.nan, np.nan, 0
    mean = float(r1.sum() / total)
    var = max(float(r2.sum() / total) - mean * mean, 0.0)
    return Trend(a, b, local), mean, var, total


def _scaling(mean: float, var: float, count: int) -> Scaling:
    if count == 0 or not np.isfinite(mean):
        return Scaling(0.0, 1.0, 0, UNOBSERVED)
    std = float(np.sqrt(var))
    # Float32 data that are constant give exactly 0 in float64; allow rounding of the mean.
    if not np.isfinite(std) or std <= 1e-12 * max(1.0, abs(mean)):
        return Scaling(float(mean), 1.0, count, CONSTANT)
    return Scaling(float(mean), std, count)


@contextlib.contextmanager
def _quiet_empty_slices():
    # All-NaN variables are expected (a sensor not yet launched); they are reported once, below.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", r"Degrees of freedom <= 0", RuntimeWarning)
        warnings.filterwarnings("ignore", r"invalid value encountered", RuntimeWarning)
        yield


def fit_plans(
    cube: xr.Dataset,
    train_cube: xr.Dataset,
    names: list[str],
    *,
    detrend: bool,
    pca_components: int,
    trend_min_months: int,
    origin: pd.Period | None,
) -> dict[str, VariablePlan]:
    """Fit every variable's plan on ``train_cube``: the PCAs' SVDs first, then one compute."""
    pending: dict[str, dict] = {}
    jobs: dict[str, object] = {}
    for name in names:
        extra = _extra_dims(name, cube[name])
        if extra and pca_components > 0:
            pending[name], jobs[name] = fit_projection(
                name, train_cube[name], extra[0], pca_components
            )

    t = month_offsets(train_cube["time"].values, origin) if origin is not None else None
    for name in names:
        var = train_cube[name]
        if name in pending:
            continue
        if detrend and set(var.dims) == set(_CORE):
            jobs[name] = _trend_job(_as_dask(var.transpose(*_CORE)), t)
        else:
            jobs[name] = _moment_job(_as_dask(var))

    with _quiet_empty_slices():
        (computed,) = dask.compute(jobs)

    plans: dict[str, VariablePlan] = {}
    for name in names:
        result, trend, projection = computed[name], None, None
        if name in pending:
            projection = Projection(mean=np.asarray(result, dtype=np.float64), **pending[name])
            mean, var, count = _score_scaling(pending[name])
        elif isinstance(result, dict):
            mean, var, count = float(result["mean"]), float(result["var"]), int(result["count"])
        else:
            trend, mean, var, count = _finish_trend(np.asarray(result), trend_min_months)
        plans[name] = VariablePlan(
            name=name,
            output=f"{name}_pc" if projection is not None else name,
            dims=tuple(str(d) for d in cube[name].dims),
            attrs=dict(cube[name].attrs),
            scaling=_scaling(mean, var, count),
            trend=trend,
            projection=projection,
        )
    return plans
