"""Reference forecasts that a learned model has to beat.

Three baselines, each a function of the observed record alone:

- :func:`persistence` (naive persistence): the value ``lead`` months ago predicts this month;
- :func:`seasonal_persistence`: the same month last year predicts this month;
- :func:`climatology`: the mean of each calendar month over the training period predicts every
  year's same month.

They take and return an :class:`xarray.Dataset` (or :class:`xarray.DataArray`) on the cube's
grid, stay lazy on dask-backed input, and leave NaN wherever there is no history to draw on.
Lags are calendar months, not array positions, so a missing month in the time axis gives a NaN
forecast rather than a value from the wrong month. Variables without a ``time`` dim (static
fields) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from .._checks import integer

__all__ = [
    "BASELINES",
    "baseline_forecasts",
    "climatology",
    "persistence",
    "seasonal_persistence",
]

T = TypeVar("T", xr.Dataset, xr.DataArray)
_MONTHS = "a positive whole number of months"

_TIME = "time"


def _time_index(obs: xr.Dataset | xr.DataArray) -> pd.DatetimeIndex:
    if _TIME not in obs.dims:
        raise ValueError(
            f"a baseline needs a {_TIME!r} dim, got dims {tuple(obs.dims)}; "
            "pass the time-varying targets (e.g. cube[['alt', 'ch4_flux', 'co2_flux']])"
        )
    index = obs.indexes.get(_TIME)
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            f"{_TIME!r} must be a datetime64 coordinate of month starts, got "
            f"{type(index).__name__ if index is not None else 'no coordinate'}; "
            "decode times with xr.decode_cf or assign_coords(time=pd.date_range(..., freq='MS'))"
        )
    return index


def _per_variable(obs: T, func: Callable[[xr.DataArray], xr.DataArray]) -> T:
    """Apply ``func`` to every time-varying variable; pass the others through."""
    if isinstance(obs, xr.DataArray):
        return func(obs)
    if not isinstance(obs, xr.Dataset):
        raise TypeError(f"obs must be an xarray Dataset or DataArray, got {type(obs).__name__}")
    _time_index(obs)
    out = obs.copy()
    for name, var in obs.data_vars.items():
        if _TIME in var.dims:
            out[name] = func(var)
    return out


def _lagged(da: xr.DataArray, months: int) -> xr.DataArray:
    """``out[t] = da[t - months]`` by calendar month, NaN where that month is not in ``da``."""
    time = _time_index(da)
    source = (time - pd.DateOffset(months=months)).as_unit(time.unit)
    positions = time.get_indexer(source)
    expected = np.arange(time.size) - months
    if np.array_equal(positions, np.where(expected >= 0, expected, -1)):
        # Regular monthly axis: a plain shift keeps the chunks and the graph small.
        out = da.shift({_TIME: months})
    else:
        out = da.reindex({_TIME: source}).assign_coords({_TIME: time})
    return out


def _describe(out: T, text: str) -> T:
    out.attrs = {**out.attrs, "baseline": text}
    return out


def persistence(obs: T, lead: int = 1) -> T:
    """Naive persistence: the value at month ``t`` predicts month ``t + lead``.

    Parameters
    ----------
    obs
        Observed record with a ``time`` dim of month starts.
    lead
        Forecast lead in months (``h``): ``forecast[t] = obs[t - lead]``.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The forecast on ``obs``'s grid and time axis, NaN for the first ``lead`` months (no
        history) and wherever month ``t - lead`` is missing. Lazy if ``obs`` is.

    Examples
    --------
    >>> obs = xr.DataArray([1.0, 2.0, 3.0], dims="time",
    ...                    coords={"time": pd.date_range("2000-01", periods=3, freq="MS")})
    >>> persistence(obs).values
    array([nan,  1.,  2.])
    """
    lead = integer("lead", lead, low=1, what=_MONTHS)
    out = _per_variable(obs, lambda da: _lagged(da, lead))
    return _describe(out, f"naive persistence, lead {lead} month{'s' * (lead != 1)}")


def seasonal_persistence(obs: T, period: int = 12) -> T:
    """Seasonal persistence: the same month ``period`` months earlier predicts this month.

    Parameters
    ----------
    obs
        Observed record with a ``time`` dim of month starts.
    period
        Length of the seasonal cycle in months: ``forecast[t] = obs[t - period]``.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The forecast on ``obs``'s grid and time axis, NaN during the first ``period`` months
        and wherever last year's month is missing. Lazy if ``obs`` is.
    """
    period = integer("period", period, low=1, what=_MONTHS)
    out = _per_variable(obs, lambda da: _lagged(da, period))
    return _describe(out, f"seasonal persistence, period {period} months")


def _training_times(time: pd.DatetimeIndex, train: pd.DatetimeIndex | slice) -> np.ndarray:
    if isinstance(train, slice):
        positions = time.slice_indexer(train.start, train.stop, train.step)
        selected = np.zeros(time.size, dtype=bool)
        selected[positions] = True
    else:
        try:
            selected = time.isin(pd.DatetimeIndex(train))
        except (TypeError, ValueError) as err:
            raise TypeError(
                "train must be a slice of dates (slice('2000-01', '2014-12')) or a "
                f"pd.DatetimeIndex of training months, got {type(train).__name__}"
            ) from err
    if not selected.any():
        raise ValueError(
            f"train {train!r} selects no month of obs, which covers "
            f"{time[0]:%Y-%m} to {time[-1]:%Y-%m}; pick training months inside that range"
        )
    return selected


def climatology(obs: T, train: pd.DatetimeIndex | slice) -> T:
    """Climatology of the training period: each cell's mean of each calendar month.

    Only the training months enter the means, so the forecast of a test month never sees that
    month (or any other test month). NaNs in the training record are skipped.

    Parameters
    ----------
    obs
        Observed record with a ``time`` dim of month starts.
    train
        The training months: a slice of dates, e.g. ``slice("2000-01", "2014-12")``, or a
        :class:`pandas.DatetimeIndex` of months.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The forecast on ``obs``'s grid and whole time axis (training and test months alike):
        ``forecast[t]`` is the training mean of ``t``'s calendar month, NaN where that cell has
        no finite training value in that month. Lazy if ``obs`` is.
    """
    selected = _training_times(_time_index(obs), train)

    def one(da: xr.DataArray) -> xr.DataArray:
        training = da.isel({_TIME: selected})
        # Keep the float dtype: integer counts or booleans would average to float64 anyway.
        means = training.groupby(f"{_TIME}.month").mean(_TIME, skipna=True, keep_attrs=True)
        means = means.reindex(month=np.arange(1, 13))
        out = means.sel(month=da[_TIME].dt.month).drop_vars("month").transpose(*da.dims)
        if da.chunks is not None:
            # Selecting months leaves one chunk per month; give back the input's chunks.
            out = out.chunk(dict(zip(da.dims, da.chunks, strict=True)))
        return out

    out = _per_variable(obs, one)
    index = _time_index(obs)[selected]
    return _describe(out, f"climatology of {index[0]:%Y-%m} to {index[-1]:%Y-%m}")


#: Baselines by the name they carry in a score table.
BASELINES: dict[str, Callable[..., xr.Dataset | xr.DataArray]] = {
    "persistence": persistence,
    "seasonal_persistence": seasonal_persistence,
    "climatology": climatology,
}


def baseline_forecasts(
    obs: T,
    train: pd.DatetimeIndex | slice,
    *,
    lead: int = 1,
    period: int = 12,
    names: Sequence[str] | None = None,
) -> dict[str, T]:
    """Every baseline's forecast of ``obs``, ready for
    :func:`geocryo.evaluation.metrics.score_table`.

    Parameters
    ----------
    obs
        Observed record with a ``time`` dim of month starts.
    train
        Training months, for :func:`climatology`.
    lead
        Lead in months, for :func:`persistence`.
    period
        Seasonal period in months, for :func:`seasonal_persistence`.
    names
        Which of :data:`BASELINES` to build; all of them by default.

    Returns
    -------
    dict of str to xarray.Dataset or xarray.DataArray
        Forecasts by baseline name, in the order of ``names``. Lazy if ``obs`` is.
    """
    names = list(BASELINES) if names is None else list(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    arguments = {
        "persistence": {"lead": lead},
        "seasonal_persistence": {"period": period},
        "climatology": {"train": train},
    }
    return {name: BASELINES[name](obs, **arguments[name]) for name in names}
