"""Reader of the GeoCryoAI monthly 1-km table (ORNL DAAC 2371): the published system's outputs."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import numpy as np
import pandas as pd
import xarray as xr

from ._common import (
    LAT,
    LON,
    as_values,
    assemble,
    check_grid,
    conversion_factor,
    covering_grid,
    drop_negative,
    find_columns,
    match_columns,
    month_starts,
    parse_times,
    points_to_grid,
    read_table,
    require_file,
    warn,
)

__all__ = ["GEOCRYOAI_SOURCE", "GEOCRYOAI_UNITS", "read_geocryoai"]

#: ``source`` attribute of the variables read from the GeoCryoAI release.
GEOCRYOAI_SOURCE = "GeoCryoAI (ORNL DAAC 2371)"

#: Units assumed for the GeoCryoAI table's value columns (override with ``units=``).
GEOCRYOAI_UNITS: dict[str, str] = {"alt": "cm", "fc": "umol m-2 s-1", "fch4": "nmol m-2 s-1"}

_TARGETS = {"alt": "alt", "fc": "co2_flux", "fch4": "ch4_flux"}

_HINT = (
    "download the GeoCryoAI release from the ORNL DAAC "
    "(https://doi.org/10.3334/ORNLDAAC/2371, free NASA Earthdata login) and pass its monthly "
    "1-km table (CSV or Parquet with columns datetime, lat, lon, alt, fc, fch4)"
)


def read_geocryoai(
    path: str | PathLike[str],
    grid: xr.Dataset | None = None,
    resolution: float = 1000.0,
    *,
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Read the GeoCryoAI monthly 1-km table (ORNL DAAC, doi:10.3334/ORNLDAAC/2371).

    The table has one row per month and 1-km pixel with columns ``datetime``, ``lat``, ``lon``
    (degrees) and the values ``alt``, ``fc``, ``fch4``; column names are matched without regard
    to case and ``latitude``/``longitude``/``date`` are accepted. ``alt`` becomes the target
    ``alt``, ``fc`` becomes ``co2_flux`` and ``fch4`` becomes ``ch4_flux``; a value column the
    file lacks is left out of the cube. Rows landing in the same month and cell are averaged.

    Units (an assumption, see below): thaw depth in cm, CO2 flux in umol CO2 m-2 s-1, CH4 flux
    in nmol CH4 m-2 s-1, the cube's own, so nothing is converted by default
    (:data:`GEOCRYOAI_UNITS`). These are the units in which the system's papers report their
    errors (Gay et al. 2023, Environ. Res. Lett. 18 125001: ALT RMSE in cm; the fluxes in the
    AmeriFlux units the inputs come in); the release's own table of units was not at hand when
    this was written. If a file differs, say so with ``units``, e.g.
    ``units={"alt": "m", "fch4": "mg CH4 m-2 d-1"}``; :data:`geocryo.readers.UNIT_CONVERSIONS`
    lists what is supported. Fluxes are taken as positive to the atmosphere, as in AmeriFlux.

    With ``grid=None`` the cell centres lie on multiples of ``resolution``; a table whose pixel
    centres sit half a cell off them (at 500 m on a 1-km raster) would then have pixels share
    cells, which is warned about: pass a grid that matches the table instead.

    These are gridded outputs of the published system, not observations: every variable has
    ``modality="process_model"`` and ``source=GEOCRYOAI_SOURCE``.

    Parameters
    ----------
    path
        CSV (optionally compressed) or Parquet (``.parquet``, ``.pq``) file.
    grid
        Target grid with ``y``, ``x`` coordinates in EPSG:3338 metres (from
        :func:`geocryo.grid.grid` or an existing cube); its ``time``, if any, becomes the
        output's. ``None`` builds a grid covering every row at ``resolution``.
    resolution
        Cell size in metres of the grid built when ``grid`` is None; cell centres lie on
        multiples of it.
    units
        Units of the file's value columns, by column name (``alt``, ``fc``, ``fch4``), where
        they differ from :data:`GEOCRYOAI_UNITS`.

    Returns
    -------
    xr.Dataset
        A cube with ``alt``, ``co2_flux`` and ``ch4_flux`` (those the file has) on ``grid``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message says where to download the release).
    ValueError
        If required columns are missing, a unit is not supported, every row lies outside the
        grid, or no row holds a valid value.
    """
    path = require_file(path, _HINT)
    if grid is not None:
        check_grid(grid)
    factors = _factors(units)  # before reading: a wrong unit need not wait for a large table
    table = read_table(path)
    where = f"{path.name} (GeoCryoAI)"
    cols = find_columns(
        table.columns, {"datetime": ("datetime", "date", "time"), "lat": LAT, "lon": LON}, where
    )
    present = match_columns(table.columns, {column: column for column in _TARGETS})
    if not present:
        raise ValueError(
            f"{where}: no value column found; expected at least one of alt, fc, fch4 "
            f"(found columns {list(table.columns)})"
        )

    months = month_starts(parse_times(table[cols["datetime"]]))
    lat = as_values(table[cols["lat"]])
    lon = as_values(table[cols["lon"]])
    values = {
        _TARGETS[name]: as_values(table[col]) * factors[name] for name, col in present.items()
    }
    keep = _placed(months, lat, lon, where)
    months, lat, lon = months[keep], lat[keep], lon[keep]
    values = {name: v[keep] for name, v in values.items()}
    if "alt" in values:
        values["alt"] = drop_negative(values["alt"], where)

    snapped = None
    if grid is None:
        grid, snapped = covering_grid(lat, lon, resolution), resolution
    time, fields = points_to_grid(grid, months, lat, lon, values, where, snapped=snapped)
    attrs = {"modality": "process_model", "source": GEOCRYOAI_SOURCE}
    return assemble(grid, time, fields, attrs, where, history=f"read_geocryoai({path.name!r})")


def _factors(units: Mapping[str, str] | None) -> dict[str, float]:
    """Factor into the cube's unit for each value column, from ``units`` or the defaults."""
    units = dict(units or {})
    unknown = set(units) - set(GEOCRYOAI_UNITS)
    if unknown:
        raise ValueError(
            f"units= names columns {sorted(unknown)}; the GeoCryoAI value columns are "
            f"{', '.join(GEOCRYOAI_UNITS)}"
        )
    return {
        column: conversion_factor(_TARGETS[column], units.get(column, default), column)
        for column, default in GEOCRYOAI_UNITS.items()
    }


def _placed(months: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray, where: str) -> np.ndarray:
    """Mask of the rows with a date, lat and lon; the others are dropped with a warning."""
    keep = np.asarray(~pd.isna(months) & np.isfinite(lat) & np.isfinite(lon))
    if not keep.any():
        raise ValueError(f"{where}: no row has a valid date, lat and lon")
    if not keep.all():
        warn(f"{where}: {int((~keep).sum())} row(s) without a valid date, lat or lon dropped")
    return keep
