"""The trend of the active layer thickness, cell by cell."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["thaw_trend"]


def thaw_trend(alt: xr.DataArray, *, min_years: int = 3) -> xr.DataArray:
    """Trend of the active layer thickness per cell, in cm per decade.

    The active layer thickness of a year is that year's largest monthly thaw depth; a year
    counts only if all twelve of its months are finite. The trend is the least-squares slope
    of a straight line through a cell's years.

    Parameters
    ----------
    alt
        Monthly thaw depth [cm] on (time, y, x), e.g. the truth or a model's forecast.
    min_years
        Cells with fewer complete years get NaN.

    Returns
    -------
    xarray.DataArray
        The slope on (y, x) in ``cm decade-1``, with the years used in ``attrs["years"]``.
    """
    if "time" not in alt.dims:
        raise ValueError(f"alt needs a 'time' dim to have a trend, got dims {alt.dims}")
    complete = alt.notnull().resample(time="YS").sum() == 12
    annual = alt.resample(time="YS").max().where(complete)
    years = annual["time"].dt.year.astype(np.float64)
    valid = annual.notnull()
    n = valid.sum("time")
    x = years.where(valid)
    x_mean = x.sum("time") / n
    y_mean = annual.sum("time") / n
    dx = (x - x_mean).where(valid, 0.0)
    slope = (dx * (annual - y_mean).where(valid, 0.0)).sum("time") / (dx**2).sum("time")
    trend = (10 * slope).where(n >= min_years)
    used = years.values[np.asarray(valid.any([d for d in valid.dims if d != "time"]))]
    return trend.rename("alt_trend").assign_attrs(
        long_name="trend of the active layer thickness (yearly maximum thaw depth)",
        units="cm decade-1",
        years=f"{int(used.min())}-{int(used.max())}" if used.size else "none",
    )
