"""Reader of CALM end-of-season thaw depths (Circumpolar Active Layer Monitoring) as ``alt``."""

from __future__ import annotations

from os import PathLike

import numpy as np
import pandas as pd
import xarray as xr

from .._checks import integer
from ._common import (
    LAT,
    LON,
    as_values,
    assemble,
    check_grid,
    drop_negative,
    find_columns,
    match_columns,
    points_to_grid,
    read_table,
    require_file,
)

__all__ = ["read_calm"]

_HINT = (
    "download the sites' thaw-depth tables from the CALM programme "
    "(https://www2.gwu.edu/~calm/data/north.htm) and save them as one CSV with columns "
    "site, lat, lon, year, alt (cm)"
)


def read_calm(path: str | PathLike[str], grid: xr.Dataset, month: int = 8) -> xr.Dataset:
    """Read a CALM-style table of end-of-season thaw depths as the target ``alt``.

    Columns ``site``, ``lat``, ``lon`` (degrees), ``year`` and ``alt`` (cm), matched without
    regard to case (``latitude``, ``longitude``, ``thaw_depth``, ``alt_cm`` are accepted too;
    ``site`` is optional, each distinct ``lat``/``lon`` is a site without it). Text entries
    (``"inundated"``, ``"-"``), fill values and negative depths count as missing.

    Several rows of one site and year are averaged first, then the sites that share a cell are
    averaged with equal weight. Each year's value lands at ``<year>-<month>-01``: CALM grids are
    probed near the end of the thaw season, when thaw depth is the active layer thickness.

    Parameters
    ----------
    path
        CSV (or Parquet) file.
    grid
        Target grid with ``y``, ``x`` coordinates in EPSG:3338 metres; its ``time``, if any,
        becomes the output's (otherwise the months from the first to the last year).
    month
        Month (1 to 12) that carries the end-of-season thaw depth.

    Returns
    -------
    xr.Dataset
        A cube with ``alt`` (``modality="in_situ"``, ``source="CALM"``), NaN in every other
        month and cell.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message says where CALM data come from).
    ValueError
        If ``month`` is not 1 to 12, columns are missing, every site lies outside the grid, or
        no row holds a valid thaw depth.
    """
    month = integer(
        "month", month, low=1, high=12, what="the calendar month (1 to 12) of the thaw depth"
    )
    check_grid(grid)
    path = require_file(path, _HINT)
    table = read_table(path)
    where = f"{path.name} (CALM)"
    cols = find_columns(
        table.columns,
        {
            "lat": LAT,
            "lon": LON,
            "year": ("year",),
            "alt": ("alt", "alt_cm", "thaw_depth", "thaw_depth_cm", "thaw"),
        },
        where,
    )
    site_col = match_columns(
        table.columns, {"site": "site", "site_code": "site", "site_name": "site"}
    )
    lat = as_values(table[cols["lat"]])
    lon = as_values(table[cols["lon"]])
    year = as_values(table[cols["year"]])
    alt = drop_negative(as_values(table[cols["alt"]]), where)
    if "site" in site_col:
        site = table[site_col["site"]].astype(str).str.strip().to_numpy()
    else:
        site = np.char.add(np.char.add(lat.astype(str), ","), lon.astype(str))

    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(year) & np.isfinite(alt)
    if not ok.any():
        raise ValueError(f"{where}: no row holds a valid thaw depth with its lat, lon and year")
    rows = pd.DataFrame({"site": site, "year": year, "lat": lat, "lon": lon, "alt": alt})[ok]
    # One value per site and year, so that a site probed twice does not outweigh its neighbour.
    sites = rows.groupby(["site", "year"], sort=False).mean().reset_index()

    dates = pd.DataFrame({"year": sites["year"].astype(int), "month": month, "day": 1})
    months = pd.DatetimeIndex(pd.to_datetime(dates)).as_unit("ns")
    time, fields = points_to_grid(
        grid,
        months,
        sites["lat"].to_numpy(),
        sites["lon"].to_numpy(),
        {"alt": sites["alt"].to_numpy()},
        where,
    )
    attrs = {"modality": "in_situ", "source": "CALM"}
    return assemble(grid, time, fields, attrs, where, history=f"read_calm({path.name!r})")
