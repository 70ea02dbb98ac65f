"""Skill scores of gridded forecasts against the truth, masked and per target.

Every function takes :class:`xarray.Dataset` s of forecasts and truth on the cube's grid and
scores each target variable present in both, over the dims named in ``dims`` (all of time and
space by default; ``dims=("time",)`` gives a map per cell). A pair enters a score only where the
forecast and the truth are both finite and ``where`` (if given) is True: NaN is the cube's only
missing marker and is never scored as a value.

Deterministic scores (:data:`METRICS`) are masked sums and counts, so they reduce chunk by chunk
on dask-backed input and stay lazy until the caller computes them. (xskillscore's deterministic
metrics give the same numbers, which the tests check, but they need every reduced dim in a
single dask chunk, i.e. the whole cube in memory at once.) The CRPS of an ensemble is
xskillscore's :func:`xskillscore.crps_ensemble`, which only needs the member dim whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
import xskillscore as xs
from scipy.stats import norm

__all__ = [
    "METRICS",
    "coverage",
    "crps",
    "crps_normal",
    "ensemble_interval",
    "normal_interval",
    "reliability",
    "score",
    "score_table",
    "to_markdown",
]

#: The deterministic scores of :func:`score`, in the order of its ``metric`` dim.
METRICS: tuple[str, ...] = ("mae", "mse", "rmse", "r2", "bias")

#: How :func:`ensemble_interval` draws an interval from members.
INTERVALS: tuple[str, ...] = ("quantile", "normal")

#: Name of the extra metric :func:`score_table` adds.
RMSE_REDUCTION = "rmse_reduction"

DEFAULT_DIMS: tuple[str, ...] = ("time", "y", "x")

_LABELS = {
    "mae": "MAE",
    "mse": "MSE",
    "rmse": "RMSE",
    "r2": "R²",
    "bias": "bias",
    "crps": "CRPS",
    "coverage": "coverage",
    "coverage_50": "coverage 50 %",
    "spread": "spread",
    RMSE_REDUCTION: "RMSE reduction",
    "skill_vs_best": "vs best baseline",
}

#: Metrics shown as percentages.
_PERCENT = (RMSE_REDUCTION, "skill_vs_best")


# ---------------------------------------------------------------------------------------------
# Shared plumbing


def _dims(dims: str | Iterable[str]) -> list[str]:
    return [dims] if isinstance(dims, str) else list(dims)


def _check_dataset(ds: object, name: str) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset):
        hint = " (use da.to_dataset(name=...))" if isinstance(ds, xr.DataArray) else ""
        raise TypeError(f"{name} must be an xarray.Dataset{hint}, got {type(ds).__name__}")
    return ds


def _common_variables(**datasets: xr.Dataset) -> list[Hashable]:
    """Data variables present in every dataset, in the order of the last (the truth)."""
    for key, ds in datasets.items():
        _check_dataset(ds, key)
    *others, truth = datasets.values()
    names = [v for v in truth.data_vars if all(v in ds.data_vars for ds in others)]
    if not names:
        listing = "; ".join(f"{k}: {sorted(map(str, ds.data_vars))}" for k, ds in datasets.items())
        raise ValueError(f"no data variable is present in all of them ({listing})")
    return names


def _align(*datasets: xr.Dataset) -> tuple[xr.Dataset, ...]:
    """Inner-join the datasets on their indexes, refusing a join that leaves a dim empty.

    Non-index coordinates are dropped: arithmetic between two datasets would compare them, and
    comparing dask-backed ones (a lazy ``zone``) computes them. :func:`_with_coords` puts the
    truth's back on the results.
    """
    aligned = xr.align(*(ds.reset_coords(drop=True) for ds in datasets), join="inner")
    for dim, size in aligned[0].sizes.items():
        if size == 0 and any(ds.sizes.get(dim, 0) > 0 for ds in datasets):
            ranges = ", ".join(
                f"{ds[dim].values[0]}..{ds[dim].values[-1]}"
                for ds in datasets
                if dim in ds.indexes and ds.sizes[dim] > 0
            )
            raise ValueError(
                f"the inputs share no {dim!r} labels ({ranges}); select a common period or "
                f"put them on the same grid"
            )
    return aligned


def _with_coords(result: xr.Dataset, like: xr.Dataset) -> xr.Dataset:
    """``result`` with the coordinates of ``like`` that fit on its dims (lat, lon, zone...)."""
    extra = {}
    for name, coord in like.coords.items():
        if name in result.coords or not set(coord.dims) <= set(result.dims):
            continue
        # The inputs were inner-joined: take the labels that survived.
        labels = {d: result.indexes[d] for d in coord.dims if d in result.indexes}
        extra[name] = coord.reset_coords(drop=True).sel(labels)
    return result.assign_coords(extra)


def _check_where(where: xr.DataArray | None) -> xr.DataArray | None:
    if where is None:
        return None
    if not isinstance(where, xr.DataArray) or where.dtype != bool:
        dtype = getattr(where, "dtype", type(where).__name__)
        raise TypeError(
            f"where must be a boolean xarray.DataArray, got {dtype}; compare to get one, "
            "e.g. where=cube.zone == 1"
        )
    return where.reset_coords(drop=True)


def _valid(*arrays: xr.DataArray, where: xr.DataArray | None, dims: Sequence[str]) -> xr.DataArray:
    """True where every array is finite and ``where`` holds; checks ``dims`` exist."""
    valid = arrays[0].notnull()
    for array in arrays[1:]:
        valid = valid & array.notnull()
    if where is not None:
        valid = valid & where
    missing = [d for d in dims if d not in valid.dims]
    if missing:
        raise ValueError(
            f"cannot reduce over {missing}: the data has dims {tuple(valid.dims)}; "
            "pass dims= a subset of them"
        )
    return valid


def _count(valid: xr.DataArray, dims: Sequence[str]) -> xr.DataArray:
    """Number of valid points over ``dims``, NaN where there are none (so means become NaN)."""
    count = valid.sum(dims)
    return count.where(count > 0)


def _masked_mean(values: xr.DataArray, valid: xr.DataArray, dims: Sequence[str]) -> xr.DataArray:
    """Mean over ``dims`` of ``values`` where ``valid``; NaN where nothing is valid."""
    return values.where(valid, 0.0).sum(dims, skipna=False) / _count(valid, dims)


def _float(da: xr.DataArray) -> xr.DataArray:
    # Sums of float32 fields over a whole cube lose digits; score in float64.
    return da.astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Deterministic scores


def _scores(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    dims: Sequence[str],
    where: xr.DataArray | None,
) -> xr.DataArray:
    forecast, truth = _float(forecast), _float(truth)
    valid = _valid(forecast, truth, where=where, dims=dims)
    # One pass over the data: every score is a masked sum (zeros outside the mask) over a count.
    # Two-pass forms (the truth's mean first) would make dask hold the whole field in memory.
    count = _count(valid, dims)
    error = (forecast - truth).where(valid, 0.0)
    ss_res = (error**2).sum(dims, skipna=False)
    mae = abs(error).sum(dims, skipna=False) / count
    mse = ss_res / count
    bias = error.sum(dims, skipna=False) / count
    # R² = 1 - SS_res / SS_tot about the truth's own masked mean; dask's variance combines
    # per-chunk moments, so this stays one pass. Undefined (NaN) for a constant truth.
    ss_tot = truth.where(valid).var(dims) * count
    r2 = (1 - ss_res / ss_tot).where(ss_tot > 0)
    values = {"mae": mae, "mse": mse, "rmse": np.sqrt(mse), "r2": r2, "bias": bias}
    return xr.concat(
        [values[m] for m in METRICS], dim="metric", coords="minimal", compat="override"
    ).assign_coords(metric=list(METRICS))


def _result_attrs(truth: xr.DataArray, what: str) -> dict[str, str]:
    attrs = {"long_name": f"{what} of {truth.attrs.get('long_name', truth.name)}"}
    if "units" in truth.attrs:
        attrs["units"] = truth.attrs["units"]
    return attrs


def score(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    dims: str | Sequence[str] = DEFAULT_DIMS,
    where: xr.DataArray | None = None,
) -> xr.Dataset:
    """Deterministic skill of a forecast, per target variable present in both datasets.

    Parameters
    ----------
    forecast
        Forecast on the truth's grid (extra or missing time steps are fine: the two are inner-
        joined on their coordinates).
    truth
        Observed or true values.
    dims
        Dims to reduce over; the others (e.g. ``y``, ``x`` with ``dims=("time",)``) are kept.
    where
        Optional boolean mask broadcastable to the data (a zone, a test period, a set of sites):
        only pairs where it is True are scored.

    Returns
    -------
    xarray.Dataset
        One variable per target, over a ``metric`` dim holding :data:`METRICS`:
        ``mae`` = mean|f - t|, ``mse`` = mean (f - t)², ``rmse`` = √mse,
        ``r2`` = 1 - Σ(f - t)² / Σ(t - mean t)², ``bias`` = mean (f - t) (positive: the forecast
        is too high), all over the pairs where both are finite and ``where`` holds. NaN where
        there is no such pair (and ``r2`` where the truth is constant). ``units`` are the
        truth's (squared for ``mse``; ``r2`` has none). Lazy if the inputs are.
    """
    names = _common_variables(forecast=forecast, truth=truth)
    dims, where = _dims(dims), _check_where(where)
    forecast, aligned = _align(forecast[names], truth[names])
    out = xr.Dataset(attrs={"scored_over": ", ".join(dims)})
    for name in names:
        out[name] = _scores(forecast[name], aligned[name], dims, where)
        out[name].attrs = _result_attrs(truth[name], "skill")
    return _with_coords(out, truth)


def _groups(
    by: str | xr.DataArray, truth: xr.Dataset, forecasts: Iterable[xr.Dataset]
) -> tuple[xr.DataArray, list, list]:
    """The grouping field, its values and their labels (CF flag meanings where given)."""
    if isinstance(by, str):
        field = next(
            (ds[by] for ds in (truth, *forecasts) if by in ds.coords or by in ds.data_vars), None
        )
        if field is None:
            raise ValueError(
                f"by={by!r} is neither a coordinate nor a variable of the truth or forecasts; "
                f"the truth has coordinates {sorted(map(str, truth.coords))}"
            )
    elif isinstance(by, xr.DataArray):
        if by.name is None:
            raise ValueError("by must be named: the name becomes the grouping dim")
        field = by
    else:
        raise TypeError(f"by must be a coordinate name or a DataArray, got {type(by).__name__}")
    if "flag_values" in field.attrs:
        # CF flags give the groups without reading the field.
        values = list(np.atleast_1d(field.attrs["flag_values"]))
        meanings = str(field.attrs.get("flag_meanings", "")).split()
        labels = meanings if len(meanings) == len(values) else values
    else:
        # The one compute here: the distinct values of a (small) grouping field.
        values = [v for v in np.unique(np.asarray(field)) if not pd.isna(v)]
        labels = values
    return field, values, labels


def score_table(
    forecasts: Mapping[str, xr.Dataset],
    truth: xr.Dataset,
    *,
    reference: str | None = "persistence",
    by: str | xr.DataArray | None = None,
    dims: str | Sequence[str] = DEFAULT_DIMS,
    where: xr.DataArray | None = None,
) -> xr.Dataset:
    """Scores of several forecasts side by side, with their RMSE reduction against a reference.

    Parameters
    ----------
    forecasts
        Forecast datasets by model name (``"persistence"``, ``"climatology"``,
        ``"multimodal"``, ...): the rows of the table, in this order.
    truth
        Observed or true values.
    reference
        The model whose RMSE the others are measured against; ``None`` skips the reduction.
    by
        Optional grouping: the name of a coordinate or variable (e.g. ``"zone"``, a 2-D field
        on ``(y, x)``) or a named DataArray. Each of its values is scored separately along a
        dim of that name, labelled by the CF ``flag_meanings`` when the field has
        ``flag_values`` (``zone``: ``boreal``, ``tundra``), otherwise by its distinct values
        (which are then computed: keep grouping fields small).
    dims
        Dims to reduce over, as in :func:`score`.
    where
        Optional boolean mask, as in :func:`score`; combined with each group.

    Returns
    -------
    xarray.Dataset
        Per target variable, dims ``(model[, by], metric)`` plus any dims not reduced. The
        ``metric`` dim holds :data:`METRICS` and ``rmse_reduction`` =
        1 - rmse / rmse[reference] (0 for the reference, 1 for a perfect forecast, negative
        for a model worse than the reference). A variable a model does not forecast is NaN in
        its row. Lazy if the inputs are.
    """
    if not forecasts:
        raise ValueError("forecasts is empty; pass {model name: forecast dataset}")
    names = list(forecasts)
    if reference is not None and reference not in forecasts:
        raise ValueError(
            f"reference {reference!r} is not among the forecasts {names}; add it or pass "
            "reference=None"
        )
    where = _check_where(where)
    if by is None:
        rows = [score(forecasts[n], truth, dims=dims, where=where) for n in names]
    else:
        field, values, labels = _groups(by, truth, forecasts.values())
        group_dim = str(field.name)
        field = field.reset_coords(drop=True)
        rows = []
        for name in names:
            parts = []
            for value in values:
                mask = field == value
                parts.append(
                    score(
                        forecasts[name],
                        truth,
                        dims=dims,
                        where=mask if where is None else mask & where,
                    ).drop_vars(group_dim, errors="ignore")
                )
            rows.append(
                xr.concat(parts, dim=group_dim, join="outer").assign_coords({group_dim: labels})
            )
    table = xr.concat(rows, dim="model", join="outer").assign_coords(model=names)
    table.attrs = {**rows[0].attrs}
    for var in table.data_vars:
        table[var].attrs = next((row[var].attrs for row in rows if var in row), {})
    if reference is None:
        return table
    variables = {}
    for var, da in table.data_vars.items():
        rmse = da.sel(metric="rmse", drop=True)
        reduction = 1 - rmse / rmse.sel(model=reference, drop=True)
        variables[var] = xr.concat(
            [da, reduction.expand_dims(metric=[RMSE_REDUCTION])],
            dim="metric",
            coords="minimal",
            compat="override",
        ).assign_attrs(da.attrs)
    out = xr.Dataset(variables, attrs={**table.attrs, "reference": reference})
    return out.assign_coords(metric=[*METRICS, RMSE_REDUCTION])


# ---------------------------------------------------------------------------------------------
# Ensembles


def ensemble_interval(
    ensemble: xr.Dataset,
    level: float = 0.9,
    *,
    member_dim: str = "member",
    method: str = "quantile",
) -> tuple[xr.Dataset, xr.Dataset]:
    """The central ``level`` interval of an ensemble.

    Parameters
    ----------
    ensemble
        Forecasts with a ``member_dim``.
    level
        Probability inside the interval: 0.9 gives the 5 % and 95 % quantiles.
    member_dim
        Name of the ensemble dim.
    method
        ``"quantile"``: the members' own quantiles (needs many members: the widest interval
        ``E`` members span holds a calibrated truth only ``(E - 1) / (E + 1)`` of the time);
        ``"normal"``: the quantiles of a Gaussian with the members' mean and standard deviation
        (ddof 1), for small ensembles.

    Returns
    -------
    tuple of xarray.Dataset
        ``(lower, upper)``, without the member dim. Lazy if the ensemble is.
    """
    _check_dataset(ensemble, "ensemble")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (0.9 for a 90 % interval), got {level}")
    if member_dim not in ensemble.dims:
        raise ValueError(f"the ensemble has no {member_dim!r} dim: dims {tuple(ensemble.dims)}")
    if method not in INTERVALS:
        raise ValueError(f"method must be one of {INTERVALS}, got {method!r}")
    if ensemble.chunks:
        ensemble = ensemble.chunk({member_dim: -1})
    if method == "normal":
        if ensemble.sizes[member_dim] < 2:
            raise ValueError("a normal interval needs at least 2 members for their spread")
        return normal_interval(
            ensemble.mean(member_dim, keep_attrs=True), ensemble.std(member_dim, ddof=1), level
        )
    bounds = ensemble.quantile([(1 - level) / 2, (1 + level) / 2], dim=member_dim)
    lower = bounds.isel(quantile=0, drop=True)
    upper = bounds.isel(quantile=1, drop=True)
    return lower, upper


def normal_interval(
    mean: xr.Dataset, spread: xr.Dataset, level: float = 0.9
) -> tuple[xr.Dataset, xr.Dataset]:
    """The central ``level`` interval of a Gaussian: ``mean ± z · spread``.

    A variable of ``mean`` with a ``valid_min`` attribute (a bounded target) has its
    distribution censored there: neither end of its interval goes below ``valid_min``.

    Parameters
    ----------
    mean, spread
        The forecast's mean and standard deviation per target variable.
    level
        Probability inside the interval (z = 1.645 for 0.9).

    Returns
    -------
    tuple of xarray.Dataset
        ``(lower, upper)``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (0.9 for a 90 % interval), got {level}")
    z = float(norm.ppf(0.5 + level / 2))
    lower, upper = mean - z * spread, mean + z * spread
    for name, var in mean.data_vars.items():
        bound = var.attrs.get("valid_min")
        if bound is not None and name in lower.data_vars:
            lower[name] = np.maximum(lower[name], bound)
            upper[name] = np.maximum(upper[name], bound)
    return lower, upper


def coverage(
    lower: xr.Dataset,
    upper: xr.Dataset,
    truth: xr.Dataset,
    *,
    dims: str | Sequence[str] = DEFAULT_DIMS,
    where: xr.DataArray | None = None,
) -> xr.Dataset:
    """Share of the finite truth that falls inside ``[lower, upper]`` (bounds included).

    A calibrated 90 % interval covers about 0.9 of the truth; less means an over-confident
    ensemble, more an under-confident one.

    Parameters
    ----------
    lower, upper
        Interval bounds per target variable (see :func:`ensemble_interval`).
    truth
        Observed or true values.
    dims
        Dims to reduce over.
    where
        Optional boolean mask of the pairs to score.

    Returns
    -------
    xarray.Dataset
        The covered fraction (0 to 1) per target variable present in all three inputs, over
        the points where the truth and both bounds are finite; NaN where there are none.
    """
    names = _common_variables(lower=lower, upper=upper, truth=truth)
    dims, where = _dims(dims), _check_where(where)
    lower, upper, aligned = _align(lower[names], upper[names], truth[names])
    out = xr.Dataset(attrs={"scored_over": ", ".join(dims)})
    for name in names:
        t, lo, hi = aligned[name], lower[name], upper[name]
        valid = _valid(t, lo, hi, where=where, dims=dims)
        inside = ((t >= lo) & (t <= hi)).astype(np.float64)
        out[name] = _masked_mean(inside, valid, dims)
        out[name].attrs = {"long_name": f"interval coverage of {name}", "units": "1"}
    return _with_coords(out, truth)


#: Nominal levels of the central intervals in a reliability diagram.
RELIABILITY_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def reliability(
    mean: xr.Dataset,
    spread: xr.Dataset,
    truth: xr.Dataset,
    *,
    levels: Sequence[float] = RELIABILITY_LEVELS,
    dims: str | Sequence[str] = DEFAULT_DIMS,
    where: xr.DataArray | None = None,
) -> xr.Dataset:
    """Observed coverage of a Gaussian forecast's central intervals at each nominal level.

    The data of a reliability diagram: a calibrated forecast's curve lies on the diagonal,
    an over-confident one below it.

    Parameters
    ----------
    mean, spread
        The forecast's mean and predictive standard deviation per target variable (a
        ``valid_min`` on the mean censors the intervals there, see :func:`normal_interval`).
    truth
        Observed or true values.
    levels
        Nominal probabilities of the intervals.
    dims, where
        As in :func:`coverage`.

    Returns
    -------
    xarray.Dataset
        Per target, the covered share on a ``level`` dim.
    """
    parts = [
        coverage(*normal_interval(mean, spread, q), truth, dims=dims, where=where) for q in levels
    ]
    out = xr.concat(parts, dim="level").assign_coords(level=[float(q) for q in levels])
    out["level"].attrs = {"long_name": "nominal coverage of the central interval", "units": "1"}
    return out


def crps(
    ensemble: xr.Dataset,
    truth: xr.Dataset,
    *,
    member_dim: str = "member",
    dims: str | Sequence[str] = DEFAULT_DIMS,
    where: xr.DataArray | None = None,
) -> xr.Dataset:
    """Continuous ranked probability score of an ensemble, per target variable.

    CRPS = E|X - t| - ½ E|X - X'| over the ensemble's members X, X' (:func:`xskillscore.
    crps_ensemble`), averaged over ``dims``. It is in the target's units, lower is better, and
    for a one-member ensemble it is the MAE.

    Parameters
    ----------
    ensemble
        Forecasts with a ``member_dim``.
    truth
        Observed or true values.
    member_dim
        Name of the ensemble dim.
    dims
        Dims to average over.
    where
        Optional boolean mask of the points to score.

    Returns
    -------
    xarray.Dataset
        Mean CRPS per target variable present in both, over the points where the truth and
        every member are finite (and ``where`` holds); NaN where there are none. Lazy if the
        inputs are.
    """
    names = _common_variables(ensemble=ensemble, truth=truth)
    dims, where = _dims(dims), _check_where(where)
    if member_dim in dims:
        raise ValueError(f"dims must not include the member dim {member_dim!r}")
    ensemble, aligned = _align(ensemble[names], truth[names])
    out = xr.Dataset(attrs={"scored_over": ", ".join(dims)})
    for name in names:
        members, t = _float(ensemble[name]), _float(aligned[name])
        if member_dim not in members.dims:
            raise ValueError(
                f"ensemble variable {name!r} has no {member_dim!r} dim (dims {members.dims}); "
                "pass member_dim= the name of the ensemble dim"
            )
        if members.chunks is not None:
            members = members.chunk({member_dim: -1})
        valid = _valid(t, where=where, dims=dims) & members.notnull().all(member_dim)
        # Score only valid points, so no NaN member ever reaches properscoring.
        pointwise = xs.crps_ensemble(
            t.where(valid), members.where(valid, 0.0), member_dim=member_dim, dim=[]
        )
        out[name] = _masked_mean(pointwise, valid, dims)
        out[name].attrs = _result_attrs(truth[name], "CRPS")
    return _with_coords(out, truth)


def crps_normal(
    mean: xr.Dataset,
    spread: xr.Dataset,
    truth: xr.Dataset,
    *,
    dims: str | Sequence[str] = DEFAULT_DIMS,
    where: xr.DataArray | None = None,
) -> xr.Dataset:
    """CRPS of a Gaussian forecast (a mean and a standard deviation), per target variable.

    For a forecast summarised by its members' mean and spread, as ``geocryo predict`` stores
    it (:func:`xskillscore.crps_gaussian`, averaged over ``dims``). In the target's units, lower
    is better; with zero spread it is the absolute error.

    Parameters
    ----------
    mean, spread
        The forecast's mean and standard deviation per target variable.
    truth
        Observed or true values.
    dims
        Dims to average over.
    where
        Optional boolean mask of the points to score.
    """
    names = _common_variables(mean=mean, spread=spread, truth=truth)
    dims, where = _dims(dims), _check_where(where)
    mean, spread, aligned = _align(mean[names], spread[names], truth[names])
    out = xr.Dataset(attrs={"scored_over": ", ".join(dims)})
    for name in names:
        mu, sigma, t = _float(mean[name]), _float(spread[name]), _float(aligned[name])
        valid = _valid(t, mu, sigma, where=where, dims=dims)
        pointwise = xs.crps_gaussian(
            t.where(valid), mu.where(valid, 0.0), sigma.where(valid, 1.0), dim=[]
        )
        out[name] = _masked_mean(pointwise, valid, dims)
        out[name].attrs = _result_attrs(truth[name], "CRPS")
    return _with_coords(out, truth)


# ---------------------------------------------------------------------------------------------
# Reporting


def _format(value: float, fmt: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, fmt)


def to_markdown(table: xr.Dataset, floatfmt: str = ".3f", percentfmt: str = ".1f") -> str:
    """Render a score table as Markdown: one table per target, rows = models.

    Computes ``table`` if it is lazy (it is small: models x metrics x groups).

    Parameters
    ----------
    table
        Output of :func:`score_table` (or :func:`score`, one row): per variable a ``metric``
        dim, optionally ``model`` and grouping dims (each becomes a leading column).
    floatfmt
        Format of the scores.
    percentfmt
        Format of ``rmse_reduction``, shown as a percentage.

    Returns
    -------
    str
        Markdown, a ``### variable [units]`` heading and a pipe table per variable.
    """
    _check_dataset(table, "table")
    table = table.compute()
    blocks = []
    for name, da in table.data_vars.items():
        if "metric" not in da.dims:
            raise ValueError(f"{name!r} has no 'metric' dim; pass the output of score_table")
        if "model" not in da.dims:
            da = da.expand_dims(model=["forecast"])
        row_dims = ["model", *[d for d in da.dims if d not in ("model", "metric")]]
        metrics = [str(m) for m in da["metric"].values]
        header = [*row_dims, *[_LABELS.get(m, m) for m in metrics]]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        frame = da.transpose(*row_dims, "metric").to_series().unstack("metric")
        for key, row in frame.iterrows():
            keys = key if isinstance(key, tuple) else (key,)
            cells = [str(k) for k in keys]
            for metric in metrics:
                value = float(row[metric])
                if metric in _PERCENT:
                    text = _format(100 * value, percentfmt)
                    cells.append(text if text == "n/a" else f"{text} %")
                else:
                    cells.append(_format(value, floatfmt))
            lines.append("| " + " | ".join(cells) + " |")
        units = da.attrs.get("units")
        title = f"### {name}" + (f" [{units}]" if units else "")
        blocks.append("\n".join([title, "", *lines]))
    return "\n\n".join(blocks) + "\n"
