"""What the readers share: tables and columns, units, the monthly time axis, grid placement.

Every reader goes the same way: find its columns (:func:`find_columns`), turn them into float
values with every fill value as NaN (:func:`as_values`), stamp each row with its month
(:func:`parse_times`, :func:`month_starts`), average the rows into cells of the target grid
(:func:`points_to_grid`, or :func:`binned_mean` for one site) and hand the fields to
:func:`assemble`, which adds the CF attributes and the grid's coordinates and validates the cube.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from ..cube import SENTINELS, validate
from ..grid import CRS, grid_from_axes

_PACKAGE = __name__.rpartition(".")[0]  # geocryo.readers

#: Attributes of each variable a reader can make; the same words as the synthetic cube's, so
#: that read and synthetic variables line up.
ATTRS: dict[str, dict[str, str]] = {
    "alt": {
        "units": "cm",
        "long_name": "thaw depth (active layer thickness at its yearly maximum)",
    },
    "co2_flux": {
        "units": "umol m-2 s-1",
        "long_name": "net ecosystem CO2 exchange, positive upward",
    },
    "ch4_flux": {"units": "nmol m-2 s-1", "long_name": "surface CH4 flux, positive upward"},
    "soil_temperature": {
        "units": "degC",
        "long_name": "soil temperature at the shallowest sensor depth",
        "standard_name": "soil_temperature",
    },
}

LAT = ("lat", "latitude")
LON = ("lon", "long", "longitude")


def warn(message: str) -> None:
    """Issue a ``UserWarning`` pointing at the first caller outside :mod:`geocryo.readers`."""
    # Counting frames here, not a fixed stacklevel, keeps the warning on the user's line however
    # deep in the package's helpers it is raised.
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and _in_package(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _in_package(module: str) -> bool:
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


# ---------------------------------------------------------------------------------------------
# Files, columns and values


def require_file(path: str | PathLike[str], hint: str) -> Path:
    """``path`` as a ``Path``, or ``FileNotFoundError`` saying where such files come from."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist or is not a file; {hint}")
    return path


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet (``.parquet``, ``.pq``) or CSV (optionally compressed) file as a data frame."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, skipinitialspace=True)


def _by_lower_name(names: pd.Index) -> dict[str, str]:
    return {str(name).strip().lower(): name for name in names}


def find_columns(
    names: pd.Index, wanted: Mapping[str, tuple[str, ...]], where: str
) -> dict[str, str]:
    """The actual column name for each wanted key, found among its lower-case aliases."""
    lower = _by_lower_name(names)
    found, missing = {}, []
    for key, aliases in wanted.items():
        hit = next((lower[a] for a in aliases if a in lower), None)
        if hit is None:
            missing.append(f"{key!r} (accepted names: {', '.join(aliases)})")
        else:
            found[key] = hit
    if missing:
        raise ValueError(
            f"{where}: missing required column(s) {'; '.join(missing)}; "
            f"found columns {[str(n) for n in names]}"
        )
    return found


def match_columns(names: pd.Index, aliases: Mapping[str, str]) -> dict[str, str]:
    """Optional columns: ``{key: actual name}`` for each alias (lower case) that is present."""
    lower = _by_lower_name(names)
    return {key: lower[alias] for alias, key in aliases.items() if alias in lower}


def as_values(column: pd.Series) -> np.ndarray:
    """Float64 values with fill values, infinities and non-numbers as NaN."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan, copy=True
    )
    values[~np.isfinite(values) | np.isin(values, SENTINELS)] = np.nan
    return values


def drop_negative(alt: np.ndarray, where: str) -> np.ndarray:
    """Thaw depths with the negative ones as NaN, warning how many there were."""
    negative = alt < 0
    if negative.any():
        warn(f"{where}: {int(negative.sum())} negative thaw depth(s) treated as missing")
        alt = np.where(negative, np.nan, alt)
    return alt


# ---------------------------------------------------------------------------------------------
# Units

_SECONDS_PER_DAY = 86400.0
_M_C, _M_CO2, _M_CH4 = 12.011, 44.009, 16.043  # molar masses, g mol-1

#: Factors that turn a value in a supported unit (key, lower case) into the target's unit.
UNIT_CONVERSIONS: dict[str, dict[str, float]] = {
    "alt": {"cm": 1.0, "m": 100.0, "mm": 0.1},
    "co2_flux": {
        "umol m-2 s-1": 1.0,
        "mmol m-2 s-1": 1e3,
        "mol m-2 s-1": 1e6,
        "g c m-2 d-1": 1e6 / _M_C / _SECONDS_PER_DAY,
        "mg c m-2 d-1": 1e3 / _M_C / _SECONDS_PER_DAY,
        "g co2 m-2 d-1": 1e6 / _M_CO2 / _SECONDS_PER_DAY,
    },
    "ch4_flux": {
        "nmol m-2 s-1": 1.0,
        "umol m-2 s-1": 1e3,
        "mol m-2 s-1": 1e9,
        "mg ch4 m-2 d-1": 1e6 / _M_CH4 / _SECONDS_PER_DAY,
        "mg c m-2 d-1": 1e6 / _M_C / _SECONDS_PER_DAY,
        "g ch4 m-2 d-1": 1e9 / _M_CH4 / _SECONDS_PER_DAY,
    },
}


def conversion_factor(target: str, unit: str, column: str) -> float:
    """The factor that turns ``column``'s values, in ``unit``, into ``target``'s unit."""
    key = _normalise_unit(unit) if isinstance(unit, str) else None
    if key not in UNIT_CONVERSIONS[target]:
        raise ValueError(
            f"unit {unit!r} of column {column!r} is not supported; "
            f"use one of {', '.join(UNIT_CONVERSIONS[target])}"
        )
    return UNIT_CONVERSIONS[target][key]


def _normalise_unit(unit: str) -> str:
    text = unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("^", "")
    text = re.sub(r"\b(day|d)-1\b", "d-1", text)
    text = re.sub(r"\b(umol|nmol|mmol|mol) (co2|ch4) ", r"\1 ", text)  # species in the unit
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Time


def parse_times(column: pd.Series) -> pd.DatetimeIndex:
    """Dates from ISO strings or from AmeriFlux-style digits (YYYYMM, YYYYMMDD, YYYYMMDDHHMM).

    Stamps that carry a time zone are kept in their own local time, so that a record belongs to
    its local month.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        times = pd.DatetimeIndex(column)
    else:
        text = column.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
        digits = text.str.fullmatch(r"\d{6}|\d{8}|\d{12}")
        if digits.mean() > 0.5:
            formats = {6: "%Y%m", 8: "%Y%m%d", 12: "%Y%m%d%H%M"}
            fmt = formats[int(text[digits].str.len().mode().iloc[0])]
            times = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce"))
        else:
            times = pd.DatetimeIndex(pd.to_datetime(text, errors="coerce"))
    if times.tz is not None:
        times = times.tz_localize(None)
    return times.as_unit("ns")


def month_starts(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The first instant of each time's month (NaT stays NaT)."""
    months = times.to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
    return pd.DatetimeIndex(months)


def time_axis(grid: xr.Dataset, months: pd.DatetimeIndex, where: str) -> pd.DatetimeIndex:
    """The grid's own months, or the regular monthly axis spanning ``months``.

    A grid without a 1-D ``time`` (none, or a scalar one left by ``cube.isel(time=0)``) has no
    months of its own.
    """
    if len(months) == 0:
        raise ValueError(f"{where}: no valid data inside the grid")
    own = grid.coords.get("time")
    if own is not None and own.ndim == 1:
        axis = pd.DatetimeIndex(own.values).as_unit("ns")
        outside = int((~months.isin(axis)).sum())
        if outside == len(months):
            raise ValueError(
                f"{where}: no data within the grid's months {axis[0]:%Y-%m} to {axis[-1]:%Y-%m} "
                f"(the file spans {months.min():%Y-%m} to {months.max():%Y-%m})"
            )
        if outside:
            warn(
                f"{where}: {outside} record(s) outside the grid's months "
                f"{axis[0]:%Y-%m} to {axis[-1]:%Y-%m} dropped"
            )
        return axis
    return pd.date_range(months.min(), months.max(), freq="MS").as_unit("ns")


# ---------------------------------------------------------------------------------------------
# Space


def grid_crs(grid: xr.Dataset) -> str:
    """The grid's CRS as WKT from its ``spatial_ref``, EPSG:3338 where it has none."""
    ref = grid.coords.get("spatial_ref")
    wkt = ref.attrs.get("crs_wkt") if ref is not None else None
    return wkt or CRS


def check_grid(grid: xr.Dataset) -> None:
    """Refuse anything but a dataset with ``y`` and ``x`` coordinates."""
    if not isinstance(grid, xr.Dataset) or not {"y", "x"} <= set(grid.coords):
        raise ValueError(
            "grid must be an xarray.Dataset with 1-D 'y' and 'x' coordinates in EPSG:3338 metres, "
            "e.g. geocryo.grid.grid(ny, nx, resolution) or an existing cube"
        )


def covering_grid(lat: np.ndarray, lon: np.ndarray, resolution: float) -> xr.Dataset:
    """The smallest grid at ``resolution`` with centres on its multiples that holds every point."""
    res = float(resolution)
    if not res > 0:
        raise ValueError(f"resolution must be positive metres, got {resolution}")
    px, py = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(lon, lat)
    kx, ky = np.round(np.asarray(px) / res), np.round(np.asarray(py) / res)
    x = np.arange(kx.min(), kx.max() + 1) * res
    y = np.arange(ky.max(), ky.min() - 1, -1) * res  # north to south, like a raster
    return grid_from_axes(y, x)


def cells(
    grid: xr.Dataset, lat: np.ndarray, lon: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell indices ``(iy, ix)`` of the points inside the grid, and the mask of those points.

    The same rule as :func:`geocryo.grid.locate` (nearest centre, at most half a cell away),
    by binary search on the distinct locations so that long tables stay cheap. Points outside
    are dropped with a warning; all outside is an error.
    """
    points, inverse = np.unique(np.column_stack([lat, lon]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    transformer = pyproj.Transformer.from_crs("EPSG:4326", grid_crs(grid), always_xy=True)
    px, py = transformer.transform(points[:, 1], points[:, 0])
    iy, inside_y = _nearest(np.asarray(grid["y"].values, dtype=float), np.asarray(py))
    ix, inside_x = _nearest(np.asarray(grid["x"].values, dtype=float), np.asarray(px))
    inside = inside_y & inside_x
    if not inside.any():
        raise ValueError(
            f"{where}: all {len(points)} location(s) lie outside the grid "
            f"(y {grid['y'].values.min():.0f} to {grid['y'].values.max():.0f} m, "
            f"x {grid['x'].values.min():.0f} to {grid['x'].values.max():.0f} m, EPSG:3338)"
        )
    rows = inside[inverse]
    if not inside.all():
        warn(
            f"{where}: {int((~inside).sum())} of {len(points)} location(s) "
            f"({int((~rows).sum())} row(s)) lie outside the grid and were dropped"
        )
    return iy[inverse][rows], ix[inverse][rows], rows


def _nearest(coord: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest value of the monotonic ``coord`` to each ``p``, and whether the
    point lies within half a step of it."""
    if len(coord) == 1:
        return np.zeros(len(p), dtype=int), np.ones(len(p), dtype=bool)
    order = np.argsort(coord)
    ordered = coord[order]
    j = np.clip(np.searchsorted(ordered, p), 1, len(ordered) - 1)
    j = np.where(np.abs(p - ordered[j - 1]) <= np.abs(ordered[j] - p), j - 1, j)
    step = abs(coord[1] - coord[0])
    inside = np.abs(ordered[j] - p) <= step / 2 * (1 + 1e-9)
    return order[j], inside


def _warn_shared_cells(
    iy: np.ndarray, ix: np.ndarray, lat: np.ndarray, lon: np.ndarray, resolution: float, where: str
) -> None:
    pairs = np.unique(np.column_stack([iy, ix, lat, lon]), axis=0)
    shared = len(pairs) - len(np.unique(pairs[:, :2], axis=0))
    if shared:
        warn(
            f"{where}: {shared} location(s) share a {resolution:g} m cell with another and are "
            "averaged; if the table's pixel centres are not on multiples of the resolution, "
            "pass a grid that matches them"
        )


# ---------------------------------------------------------------------------------------------
# Gridding


def points_to_grid(
    grid: xr.Dataset,
    months: pd.DatetimeIndex,
    lat: np.ndarray,
    lon: np.ndarray,
    values: Mapping[str, np.ndarray],
    where: str,
    snapped: float | None = None,
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """Average point records into the ``(time, y, x)`` cells of ``grid``.

    Returns the time axis (:func:`time_axis`) and, for each entry of ``values``, the mean of
    its valid values in each cell, NaN where none falls. With ``snapped`` (the resolution of a
    grid built around the points) distinct locations that share a cell are warned about.
    """
    iy, ix, inside = cells(grid, lat, lon, where)
    if snapped is not None:
        _warn_shared_cells(iy, ix, lat[inside], lon[inside], snapped, where)
    time = time_axis(grid, months[inside], where)
    it = time.get_indexer(months[inside])
    shape = (len(time), grid.sizes["y"], grid.sizes["x"])
    flat = np.where(it >= 0, (it * shape[1] + iy) * shape[2] + ix, -1)
    size = int(np.prod(shape))
    fields = {name: binned_mean(flat, v[inside], size).reshape(shape) for name, v in values.items()}
    return time, fields


def binned_mean(
    bins: np.ndarray, values: np.ndarray, size: int, min_count: float | np.ndarray = 1
) -> np.ndarray:
    """Mean of the valid ``values`` in each bin ``0 .. size - 1`` (a bin below 0 is no bin).

    NaN where a bin holds no valid value or fewer than ``min_count`` (one per bin, or one each).
    """
    ok = np.isfinite(values) & (bins >= 0)
    count = np.bincount(bins[ok], minlength=size)
    total = np.bincount(bins[ok], weights=values[ok], minlength=size)
    kept = count >= np.maximum(min_count, 1)
    return np.divide(total, count, out=np.full(size, np.nan), where=kept)


def row_mean(matrix: np.ndarray) -> np.ndarray:
    """Mean over columns of the valid entries of each row; NaN where a row has none."""
    valid = np.isfinite(matrix)
    count = valid.sum(axis=1)
    total = np.where(valid, matrix, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(matrix), np.nan), where=count > 0)


def assemble(
    grid: xr.Dataset,
    time: pd.DatetimeIndex,
    fields: Mapping[str, np.ndarray],
    attrs: Mapping[str, str],
    where: str,
    history: str,
    empty: str = "every value is missing, a fill value or NaN",
) -> xr.Dataset:
    """The validated cube of ``fields`` on ``grid``'s coordinates, with CF attributes.

    ``attrs`` (``modality``, ``source``) go on every variable; ``history`` is the reader's call;
    ``empty`` says why, if no field holds a single valid value (then ``ValueError``).
    """
    if not any(np.isfinite(field).any() for field in fields.values()):
        raise ValueError(f"{where}: no valid data ({empty})")
    coords = {"time": ("time", time.to_numpy(), {"long_name": "start of the month"})}
    coords.update(_grid_coords(grid))
    data = {
        name: (
            ("time", "y", "x"),
            field.astype(np.float32),
            {**ATTRS[name], **attrs, "grid_mapping": "spatial_ref"},
        )
        for name, field in fields.items()
    }
    ds = xr.Dataset(data, coords=coords, attrs={"history": f"geocryo.readers.{history}"})
    return validate(ds)


def _grid_coords(grid: xr.Dataset) -> dict[str, xr.Variable]:
    """The grid's ``y``, ``x``, ``lat``, ``lon`` and ``spatial_ref``, made where it lacks them."""
    names = ("y", "x", "lat", "lon", "spatial_ref")
    if not all(name in grid.coords for name in names):
        grid = grid_from_axes(grid["y"].values, grid["x"].values, grid_crs(grid))
    return {name: grid.coords[name].variable for name in names}
