"""The trend of the active layer thickness, cell by cell."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["thaw_trend", "trend_summary"]


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


def trend_summary(alt: xr.DataArray, *, min_years: int = 3) -> dict[str, float]:
    """The domain's active layer trend, its standard error, and whether the record can tell.

    The active layer thickness of each complete year (as in :func:`thaw_trend`) is averaged
    over the cells that have every such year, and a straight line is fitted through those
    yearly means.

    Parameters
    ----------
    alt
        Monthly thaw depth [cm] on (time, y, x).
    min_years
        Fewest complete years for a trend.

    Returns
    -------
    dict
        ``trend`` and ``stderr`` (cm per decade, the ordinary least-squares slope and its
        standard error), ``years`` (how many), and ``significant``: True where the trend is
        at least twice its standard error, i.e. the record is long enough to tell its sign.
        NaN trend (and ``significant`` False) with fewer than ``min_years`` years.
    """
    if "time" not in alt.dims:
        raise ValueError(f"alt needs a 'time' dim to have a trend, got dims {alt.dims}")
    complete = alt.notnull().resample(time="YS").sum() == 12
    annual = alt.resample(time="YS").max().where(complete)
    space = [d for d in annual.dims if d != "time"]
    years_ok = annual.notnull().any(space).values
    annual = annual.isel(time=np.flatnonzero(years_ok))
    cells = annual.notnull().all("time")
    series = np.asarray(annual.where(cells).mean(space))
    x = annual["time"].dt.year.values.astype(np.float64)
    n = int(np.isfinite(series).sum())
    if n < max(min_years, 3):
        return {"trend": np.nan, "stderr": np.nan, "years": n, "significant": False}
    ok = np.isfinite(series)
    x, y = x[ok], series[ok]
    dx = x - x.mean()
    slope = float(dx @ (y - y.mean()) / (dx @ dx))
    residual = y - y.mean() - slope * dx
    stderr = float(np.sqrt(residual @ residual / (n - 2) / (dx @ dx)))
    return {
        "trend": 10 * slope,
        "stderr": 10 * stderr,
        "years": n,
        "significant": bool(abs(slope) >= 2 * stderr),
    }
