"""Skill of fitted models against baselines, at the observed sites and on the complete field.

>>> from geocryo.evaluation import evaluate, to_markdown
>>> table = evaluate({"teacher_forcing": m1, "multimodal": m2}, cube, truth)  # doctest: +SKIP
>>> print(to_markdown(table, scope="sites"))  # doctest: +SKIP

:func:`evaluate` scores every row (naive persistence, seasonal persistence, climatology and each
model) on the same pairs, per target, in two scopes:

``sites``
    Against the cube's in situ observations: the site-months of the evaluated period where the
    target was observed. The baselines are built from the same observations, as a forecaster at
    those sites would build them.
``field``
    Against the complete truth (only when one is given, e.g. the synthetic Alaska's): every
    cell and month of the period. The baselines are built from the truth itself, an oracle that
    favours them.

Within a scope, a pair enters every row's score only where every row has a forecast (and the
reference a value), so the rows are compared on identical pairs; the number of pairs is kept
beside the scores. Scores are also split by ecological zone (the cube's ``zone`` flags, boreal
and tundra on the synthetic Alaska). Models are scored with every member: the deterministic
scores on the members' mean, and the ensemble's CRPS and calibration (the share of the
reference inside the central 90 % interval of the members) on the members themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from .._progress import dask_progress
from ..cube import TARGETS, observation_variance
from ..forecast import MEMBER, Forecaster, forecast_period
from ..preprocess.plan import SPREAD_SUFFIX
from . import baselines as _baselines
from . import metrics

__all__ = [
    "BASELINES",
    "EXTRA_METRICS",
    "SCOPES",
    "SKILL_VS_BEST",
    "against_best",
    "evaluate",
]

#: The baseline rows, in table order.
BASELINES: tuple[str, ...] = ("persistence", "seasonal_persistence", "climatology")

#: The scopes :func:`evaluate` scores in, in order.
SCOPES: tuple[str, ...] = ("sites", "field")

#: Metrics :func:`evaluate` adds to those of :func:`geocryo.evaluation.metrics.score_table`:
#: the CRPS, the coverage of the central ``level`` interval and of the central 50 % one, and the
#: spread (to set beside the RMSE).
EXTRA_METRICS: tuple[str, ...] = ("crps", "coverage", "coverage_50", "spread")

#: The metric of :func:`against_best`: RMSE reduction against the best baseline.
SKILL_VS_BEST = "skill_vs_best"

#: Label of the zone row that pools every cell.
ALL = "all"


# ---------------------------------------------------------------------------------------------
# Inputs


def _models(model: Forecaster | Mapping[str, Forecaster] | None) -> dict[str, Forecaster]:
    if model is None:
        return {}
    if isinstance(model, Forecaster):
        return {model.mode: model}
    if isinstance(model, Mapping):
        for name, value in model.items():
            if not isinstance(value, Forecaster):
                raise TypeError(
                    f"model {name!r} is a {type(value).__name__}, not a fitted Forecaster; "
                    "pass precomputed forecasts as predictions={name: dataset}"
                )
        return dict(model)
    raise TypeError(
        "model must be a Forecaster, a dict of named Forecasters or None, got "
        f"{type(model).__name__}"
    )


def _periods(
    models: dict[str, Forecaster], periods: Mapping[str, pd.DatetimeIndex] | None
) -> dict[str, pd.DatetimeIndex]:
    if periods is not None:
        return {k: pd.DatetimeIndex(v) for k, v in periods.items()}
    if not models:
        raise ValueError(
            "without a fitted model, pass periods= the split's months, e.g. "
            "geocryo.TimeSplit().periods(cube.time)"
        )
    (first, reference), *others = models.items()
    for name, other in others:
        for part in ("train", "test"):
            if not reference.periods[part].equals(other.periods[part]):
                raise ValueError(
                    f"models {first!r} and {name!r} were fitted with different {part} periods; "
                    "fit them with the same split (and look-back) to compare them"
                )
    return dict(reference.periods)


def _months(split: str | pd.DatetimeIndex, periods: dict[str, pd.DatetimeIndex]):
    if isinstance(split, str):
        if split not in periods:
            raise ValueError(f"split must be one of {sorted(periods)}, got {split!r}")
        return periods[split]
    return pd.DatetimeIndex(split)


def _check_covers(ds: xr.Dataset, months: pd.DatetimeIndex, what: str) -> None:
    missing = months.difference(ds.indexes["time"])
    if len(missing):
        raise ValueError(
            f"{what} lacks {len(missing)} of the evaluated months ({missing[0]:%Y-%m} first); "
            f"it covers {ds.indexes['time'][0]:%Y-%m} to {ds.indexes['time'][-1]:%Y-%m}"
        )


def _zones(*sources: xr.Dataset) -> dict[str, xr.DataArray | None]:
    """``{"all": None, label: mask}`` from the first ``zone`` field found, CF flags as labels."""
    zones: dict[str, xr.DataArray | None] = {ALL: None}
    field = next((ds["zone"] for ds in sources if ds is not None and "zone" in ds.variables), None)
    if field is None:
        return zones
    field = field.reset_coords(drop=True)
    if "flag_values" in field.attrs:
        values = list(np.atleast_1d(field.attrs["flag_values"]))
        meanings = str(field.attrs.get("flag_meanings", "")).split()
        labels = meanings if len(meanings) == len(values) else [str(v) for v in values]
    else:
        values = [v for v in np.unique(np.asarray(field)) if not pd.isna(v)]
        labels = [str(v) for v in values]
    for value, label in zip(values, labels, strict=True):
        zones[label] = field == value
    return zones


# ---------------------------------------------------------------------------------------------
# Scoring


def against_best(table: xr.Dataset, baselines: Sequence[str]) -> xr.Dataset:
    """``table`` with each row's RMSE reduction against the best baseline of its scope and zone.

    Adds the metric :data:`SKILL_VS_BEST` (1 - rmse / rmse of the baseline with the least RMSE,
    per target, scope and zone: positive where a row beats every baseline) and, per target, a
    coordinate ``<target>_best_baseline`` on (scope, zone) naming that baseline. A table
    without baselines is returned as it is.
    """
    baselines = [b for b in baselines if b in table["model"].values]
    if not baselines:
        return table
    variables, coords = {}, {}
    for name, da in table.data_vars.items():
        rmse = da.sel(metric="rmse", drop=True)
        ranked = rmse.sel(model=baselines)
        filled = ranked.fillna(np.inf)
        best = ranked.min("model")
        which = xr.DataArray(
            np.asarray(baselines, dtype=object)[filled.argmin("model").values],
            dims=filled.isel(model=0, drop=True).dims,
        )
        which = which.where(np.isfinite(best), "none")
        reduction = (1 - rmse / best).expand_dims(metric=[SKILL_VS_BEST])
        variables[name] = xr.concat(
            [da, reduction.transpose(*da.dims)], dim="metric", coords="minimal", compat="override"
        ).assign_attrs(da.attrs)
        coords[f"{name}_best_baseline"] = which.astype(str).assign_attrs(
            long_name=f"the baseline with the least RMSE for {name}"
        )
    out = xr.Dataset(variables, coords={k: v for k, v in table.coords.items() if k != "metric"})
    return out.assign_coords(coords).assign_attrs(table.attrs)


def _ensemble_mean(forecast: xr.Dataset) -> xr.Dataset:
    """The deterministic forecast of a row: its members' mean, or the row as it is."""
    if MEMBER not in forecast.dims:
        return forecast
    return forecast.mean(MEMBER, keep_attrs=True)


def _ensemble_scores(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    where: xr.DataArray,
    level: float,
    observed: dict | None = None,
) -> xr.DataArray:
    """``crps``, ``coverage``, ``coverage_50`` and ``spread`` of one row's forecast of one target.

    A row with a predictive spread ``<target>_std`` (a model's calibrated forecast, with or
    without its members) is scored as a Gaussian with the members' mean and that spread; a row
    with members alone as a Gaussian with their mean and spread; a row with neither is a
    one-member ensemble: its CRPS is its MAE, and it has no interval or spread. ``observed``:
    the target's attributes when ``truth`` is observations, whose declared measurement error
    (:func:`geocryo.cube.observation_variance`) then widens a predictive spread.
    """
    name = next(n for n in forecast.data_vars if not str(n).endswith(SPREAD_SUFFIX))
    std = f"{name}{SPREAD_SUFFIX}"
    nan = xr.DataArray(np.nan)
    covered = covered_50 = spread = nan
    mean = _ensemble_mean(forecast[[name]])
    if std in forecast.data_vars:
        sd = forecast[[std]].rename({std: name})
        if observed is not None:
            # Against observations, the distribution of an observation: the truth's, widened
            # by the measurement error the target declares.
            error = observation_variance(observed, mean[name])
            sd = np.sqrt(sd**2 + error)
        crps = metrics.crps_normal(mean, sd, truth, where=where)
        intervals = {q: metrics.normal_interval(mean, sd, q) for q in (level, 0.5)}
        variance = sd[name] ** 2
    elif MEMBER in forecast.dims and forecast.sizes[MEMBER] > 1:
        ensemble = forecast[[name]]
        crps = metrics.crps(ensemble, truth, where=where)
        intervals = {
            q: metrics.ensemble_interval(ensemble, q, method="normal") for q in (level, 0.5)
        }
        variance = ensemble[name].var(MEMBER, ddof=1)
    else:
        ensemble = forecast[[name]]
        if MEMBER not in ensemble.dims:
            ensemble = ensemble.expand_dims({MEMBER: 1})
        crps, intervals = metrics.crps(ensemble, truth, where=where), None
    if intervals is not None:
        covered, covered_50 = (
            metrics.coverage(*intervals[q], truth, where=where)[name].reset_coords(drop=True)
            for q in (level, 0.5)
        )
        spread = np.sqrt(variance.where(where).mean()).reset_coords(drop=True)
    values = [crps[name].reset_coords(drop=True), covered, covered_50, spread]
    return xr.concat(values, dim="metric", coords="minimal", compat="override").assign_coords(
        metric=list(EXTRA_METRICS)
    )


def _scope_table(
    rows: dict[str, xr.Dataset],
    reference: xr.Dataset,
    target: str,
    zones: dict[str, xr.DataArray | None],
    level: float,
    observed: bool = False,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Scores (zone, model, metric) of one target in one scope, and the pairs per zone.

    Rows that do not forecast ``target`` get NaN and do not narrow the pairs of the others.
    """
    truth = reference[[target]]
    observed = dict(reference[target].attrs) if observed else None
    keep = [target, f"{target}{SPREAD_SUFFIX}"]
    forecasting = {
        name: ds[[v for v in keep if v in ds.data_vars]]
        for name, ds in rows.items()
        if target in ds.data_vars
    }
    if not forecasting:
        raise ValueError(f"no row forecasts {target!r}")
    point = {name: _ensemble_mean(ds[[target]]) for name, ds in forecasting.items()}
    common = truth[target].notnull()
    for forecast in point.values():
        common = common & forecast[target].notnull()
    common = common.reset_coords(drop=True)
    ref_name = "persistence" if "persistence" in forecasting else None
    per_zone, pairs = [], []
    for mask in zones.values():
        where = common if mask is None else common & mask
        table = metrics.score_table(
            point,
            truth,
            reference=ref_name,
            where=where,
        )[target].reindex(model=list(rows))
        if ref_name is None:
            nan = xr.full_like(table.isel(metric=0, drop=True), np.nan)
            table = xr.concat(
                [table, nan.expand_dims(metric=[metrics.RMSE_REDUCTION])], dim="metric"
            )
        extra = [
            _ensemble_scores(ds, truth, where, level, observed).expand_dims(model=[name])
            for name, ds in forecasting.items()
        ]
        extra = xr.concat(extra, dim="model").reindex(model=list(rows))
        table = xr.concat([table.reset_coords(drop=True), extra], dim="metric")
        per_zone.append(table)
        pairs.append(where.sum())
    labels = list(zones)
    return (
        xr.concat(per_zone, dim="zone").assign_coords(zone=labels),
        xr.concat(pairs, dim="zone").assign_coords(zone=labels),
    )


def evaluate(
    model: Forecaster | Mapping[str, Forecaster] | None,
    cube: xr.Dataset,
    truth: xr.Dataset | None = None,
    split: str | pd.DatetimeIndex = "test",
    *,
    baselines: Sequence[str] = BASELINES,
    predictions: Mapping[str, xr.Dataset] | None = None,
    periods: Mapping[str, pd.DatetimeIndex] | None = None,
    horizon: int | None = None,
    level: float = 0.9,
    progress: bool = True,
) -> xr.Dataset:
    """Score models and baselines per target, at the observed sites and on the complete field.

    Parameters
    ----------
    model
        A fitted :class:`~geocryo.Forecaster` (its row is named by its mode), a dict of them by
        row name (``{"teacher_forcing": m1, "multimodal": m2}``), or ``None`` when
        ``predictions`` holds every model row.
    cube
        The cube the models were fitted on: its in situ targets are the observations.
    truth
        Optional complete target fields (the synthetic Alaska's ``truth``): adds the ``field``
        scope.
    split
        Which of the models' periods to score (``"test"``, ``"val"``, ``"train"``), or the months
        themselves.
    baselines
        Baseline rows, from :data:`BASELINES`. What each sees at month ``t``, in the ``sites``
        scope (the cube's observations) and the ``field`` scope (the truth):
        ``persistence``, the value at ``t - horizon`` at that cell (NaN where it was not
        observed); ``seasonal_persistence``, the value at ``t - 12``; ``climatology``, the mean
        of that cell's values in ``t``'s calendar month over the training period.
    predictions
        Forecasts already computed, by row name: a model's forecast is used instead of
        predicting again (pass the ones drawn for figures), and a name that is no model adds a
        row. Each holds the targets on the cube's grid, with every member on a ``member`` dim
        (``model.predict(cube, members=True)``) to score the ensemble; a forecast without one
        is scored as a single member (its CRPS is its MAE, its coverage and spread NaN).
    periods
        The split's months by part (``train`` is needed for climatology); default: the
        models' own periods, which must agree.
    horizon
        Forecast horizon in months (default: the first model's lead, else 1); persistence
        uses the same.
    level
        Probability of the ensemble interval whose coverage is reported.
    progress
        Show progress bars while predicting and scoring.

    Returns
    -------
    xarray.Dataset
        One variable per target on (scope, zone, model, metric), in the target's units:

        - ``scope``: ``sites`` (against observations) and, with a truth, ``field``;
        - ``zone``: ``all`` and each zone of the cube's ``zone`` flags (``boreal``, ``tundra``);
        - ``model``: the baselines, then the models, in order;
        - ``metric``: ``mae``, ``mse``, ``rmse``, ``r2``, ``bias`` (forecast minus reference),
          ``rmse_reduction`` (1 - rmse / rmse of persistence), ``crps`` (of the members;
          the MAE for a row without members), ``coverage`` (share of the reference inside the
          members' central ``level`` interval, mean ± z · standard deviation of a Gaussian
          with the members' mean and spread, or the forecast's predictive spread
          ``<target>_std`` where it has one; NaN for rows without either), ``coverage_50``
          (the same for the central 50 % interval), ``spread`` (root mean square of the
          predictive standard deviation, to set beside the RMSE: about equal for a calibrated
          forecast) and ``skill_vs_best`` (1 - rmse / rmse of the best baseline of the scope
          and zone, the one named by the coordinate ``<target>_best_baseline``).

        Coordinates ``<target>_pairs`` on (scope, zone) count the pairs scored, the same for
        every row. A teacher-forcing model sees the target history only at the sites, so only
        its ``sites`` scores are a fair test of it.
    """
    models = _models(model)
    predictions = dict(predictions or {})
    periods = _periods(models, periods)
    months = _months(split, periods)
    if not len(months):
        raise ValueError(f"the {split!r} period has no months")
    first = next(iter(models.values()), None)
    horizon = int(horizon) if horizon is not None else (first.spec.lead if first else 1)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    if not models and not predictions and not baselines:
        raise ValueError("nothing to score: pass a model, predictions or baselines")
    clash = sorted((set(models) | set(predictions)) & set(baselines))
    if clash:
        raise ValueError(f"rows {clash} would replace the baselines of that name; rename them")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (0.9 for a 90 % interval), got {level}")
    _check_covers(cube, months, "the cube")

    names = [n for n in TARGETS if n in cube.data_vars]
    for name, forecaster in models.items():
        if name not in predictions:
            predictions[name] = forecast_period(
                forecaster, cube, months, horizon, members=True, progress=progress
            )
    for name, forecast in predictions.items():
        _check_covers(forecast, months, f"the forecast {name!r}")
    names = [n for n in names if any(n in ds.data_vars for ds in predictions.values())] or names
    if truth is not None:
        _check_covers(truth, months, "the truth")
        names = [n for n in names if n in truth.data_vars]
    if not names:
        raise ValueError(f"no target ({', '.join(TARGETS)}) is in both the cube and the forecasts")

    references = {"sites": cube[names]}
    if truth is not None:
        references["field"] = truth[names]
    zones = _zones(cube, truth)
    scopes = {}
    for scope, reference in references.items():
        made = _baselines.baseline_forecasts(
            reference, periods["train"], lead=horizon, names=list(baselines)
        )
        rows = {name: ds.sel(time=months) for name, ds in made.items()}
        for name, forecast in predictions.items():
            rows[name] = forecast.sel(time=months)
        scopes[scope] = (rows, reference.sel(time=months))

    variables, pairs = {}, {}
    for target in names:
        parts = [
            _scope_table(rows, ref, target, zones, level, observed=scope == "sites")
            for scope, (rows, ref) in scopes.items()
        ]
        table = xr.concat([p[0] for p in parts], dim="scope").assign_coords(scope=list(scopes))
        variables[target] = table.assign_attrs(
            long_name=f"skill of {cube[target].attrs.get('long_name', target)}",
            units=cube[target].attrs.get("units", ""),
        )
        pairs[f"{target}_pairs"] = xr.concat([p[1] for p in parts], dim="scope").assign_coords(
            scope=list(scopes)
        )
    out = xr.Dataset(variables).assign_coords(pairs)
    out = out.transpose("scope", "zone", "model", "metric")
    lazy = any(var.chunks is not None for var in out.variables.values())
    with dask_progress(progress and lazy, "scoring"):
        out = out.compute()
    out = against_best(out, [b for b in BASELINES if b in baselines])
    for key in pairs:
        out[key] = (
            out[key]
            .astype(np.int64)
            .assign_attrs(long_name=f"pairs scored for {key.removesuffix('_pairs')}", units="1")
        )
    out.attrs = {
        "title": "geocryo skill scores",
        "split": split if isinstance(split, str) else "months given",
        "period": f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}",
        "horizon": horizon,
        "level": level,
        "reference": "persistence" if "persistence" in baselines else "none",
        "interval": f"mean ± {norm.ppf(0.5 + level / 2):.3f} × ensemble standard deviation",
        "sites": "against the in situ observations; baselines built from the observations",
        "field": "against the complete truth; baselines built from the truth (an oracle)",
    }
    return out
