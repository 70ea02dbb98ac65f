"""Readers that turn real data tables into cubes: GeoCryoAI (ORNL DAAC 2371), AmeriFlux, CALM.

Each reader returns a small cube on a target grid (EPSG:3338 metres): a regular monthly ``time``
axis of month starts, variables on ``(time, y, x)`` with NaN wherever nothing was observed, CF
attributes (``units``, ``long_name``, ``modality``, ``source``, ``grid_mapping``) and the grid's
``lat``/``lon``/``spatial_ref`` coordinates. Tables are gridded in memory with numpy (one
``bincount`` per variable), so the table and the ``time x y x`` output must fit in memory.

Fill values (-9999 and the others in :data:`geocryo.cube.SENTINELS`), infinities and text such as
``"NA"`` become NaN before anything is averaged.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from .cube import SENTINELS, validate
from .grid import CRS, grid_from_axes, locate

__all__ = [
    "GEOCRYOAI_SOURCE",
    "GEOCRYOAI_UNITS",
    "UNIT_CONVERSIONS",
    "read_ameriflux",
    "read_calm",
    "read_geocryoai",
]

#: ``source`` attribute of the variables read from the GeoCryoAI release.
GEOCRYOAI_SOURCE = "GeoCryoAI (ORNL DAAC 2371)"

#: Units assumed for the GeoCryoAI table's value columns (override with ``units=``).
GEOCRYOAI_UNITS: dict[str, str] = {"alt": "cm", "fc": "umol m-2 s-1", "fch4": "nmol m-2 s-1"}

_GEOCRYOAI_TARGETS = {"alt": "alt", "fc": "co2_flux", "fch4": "ch4_flux"}

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

_ATTRS: dict[str, dict[str, str]] = {
    # The same words as the synthetic cube's, so that read and synthetic variables line up.
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

_HINTS = {
    "geocryoai": "download the GeoCryoAI release from the ORNL DAAC "
    "(https://doi.org/10.3334/ORNLDAAC/2371, free NASA Earthdata login) and pass its monthly "
    "1-km table (CSV or Parquet with columns datetime, lat, lon, alt, fc, fch4)",
    "ameriflux": "download the site's AmeriFlux BASE file (AMF_<site>_BASE_HH_<version>.csv) "
    "from https://ameriflux.lbl.gov (Data > Download Data), unzip it and pass the CSV",
    "calm": "download the sites' thaw-depth tables from the CALM programme "
    "(https://www2.gwu.edu/~calm/data/north.htm) and save them as one CSV with columns "
    "site, lat, lon, year, alt (cm)",
}


# ---------------------------------------------------------------------------------------------
# Public readers


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
    ``units={"alt": "m", "fch4": "mg CH4 m-2 d-1"}``; :data:`UNIT_CONVERSIONS` lists what is
    supported. Fluxes are taken as positive to the atmosphere, as in AmeriFlux.

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
    path = _require_file(path, "geocryoai")
    if grid is not None:
        _check_grid(grid)
    table = _read_table(path)
    where = f"{path.name} (GeoCryoAI)"
    cols = _find_columns(
        table.columns,
        {"datetime": ("datetime", "date", "time"), "lat": _LAT, "lon": _LON},
        where,
    )
    present = _match(table.columns, {column: column for column in _GEOCRYOAI_TARGETS})
    if not present:
        raise ValueError(
            f"{where}: no value column found; expected at least one of alt, fc, fch4 "
            f"(found columns {list(table.columns)})"
        )
    factors = _geocryoai_factors(units)

    months = _month_starts(_parse_times(table[cols["datetime"]]))
    lat = _as_values(table[cols["lat"]])
    lon = _as_values(table[cols["lon"]])
    values = {
        _GEOCRYOAI_TARGETS[name]: _as_values(table[col]) * factors[name]
        for name, col in present.items()
    }
    keep = _drop_unplaced(months, lat, lon, where)
    months, lat, lon = months[keep], lat[keep], lon[keep]
    values = {name: v[keep] for name, v in values.items()}
    if "alt" in values:
        values["alt"] = _drop_negative(values["alt"], where)

    built = grid is None
    if built:
        grid = _covering_grid(lat, lon, resolution)
    iy, ix, inside = _cells(grid, lat, lon, where)
    if built:
        _warn_shared_cells(iy, ix, lat[inside], lon[inside], resolution, where)
    time = _time_axis(grid, months[inside], where)
    it = _time_index(months[inside], time)
    fields = {
        name: _grid_mean(v[inside], it, iy, ix, (len(time), grid.sizes["y"], grid.sizes["x"]))
        for name, v in values.items()
    }
    attrs = {"modality": "process_model", "source": GEOCRYOAI_SOURCE}
    return _assemble(grid, time, fields, attrs, where, history=f"read_geocryoai({path.name!r})")


def read_ameriflux(
    path: str | PathLike[str],
    grid: xr.Dataset,
    lat: float | None = None,
    lon: float | None = None,
    site: str | None = None,
    min_coverage: float = 0.5,
) -> xr.Dataset:
    """Read an AmeriFlux BASE half-hourly (or hourly) CSV as monthly means at the site's cell.

    The file may open with comment lines (``# Site: US-Xxx``, ``# Version: ...``), then a header
    with ``TIMESTAMP_START`` and ``TIMESTAMP_END`` (local standard time, YYYYMMDDHHMM) and
    variables in AmeriFlux units, -9999 where missing. Read are:

    - ``FC`` (umol CO2 m-2 s-1, positive to the atmosphere) as ``co2_flux``;
    - ``FCH4`` (nmol CH4 m-2 s-1) as ``ch4_flux``;
    - ``TS`` soil temperatures (degC) as ``soil_temperature``: the sensors at the shallowest
      depth index (``V`` in ``TS_H_V_R``, or ``N`` in the older ``TS_N``), averaged record by
      record over horizontal positions and replicates. Deeper sensors are ignored, so that the
      monthly value is one depth's, not a mix that changes as sensors fail.

    Where a variable comes with position qualifiers only (``FC_1_1_1``, ``FC_2_1_1``), the
    replicates are averaged record by record. Gap-filled (``_F``), PI (``_PI``) and statistics
    (``_SD``, ``_N``) columns are not used: only measured records count. Variables the file
    lacks are left out of the cube.

    A record belongs to the month of its ``TIMESTAMP_START``. A month's mean is kept only if at
    least ``min_coverage`` of the month's records (days in the month x records per day, so rows
    absent from the file count as missing) hold a valid value; otherwise it is NaN.

    Parameters
    ----------
    path
        The BASE CSV file.
    grid
        Target grid with ``y``, ``x`` coordinates in EPSG:3338 metres; its ``time``, if any,
        becomes the output's (otherwise the months the file spans).
    lat, lon
        The site's coordinates in degrees (BASE files do not carry them: take them from the
        site's page on ameriflux.lbl.gov).
    site
        Site ID for the ``source`` attribute; defaults to the file's ``# Site:`` line or its
        name (``AMF_US-Xxx_BASE_...``).
    min_coverage
        Fraction (0 to 1) of a month's records that must be valid for its mean to be kept.

    Returns
    -------
    xr.Dataset
        A cube with ``co2_flux``, ``ch4_flux`` and ``soil_temperature`` (those the file has;
        ``modality="in_situ"``), NaN everywhere but the site's cell.

    Raises
    ------
    ValueError
        If ``lat``/``lon`` are missing or the site lies outside the grid, columns are missing,
        the time step cannot be worked out, or no month holds a valid value.
    FileNotFoundError
        If ``path`` does not exist (the message says where to download BASE files).
    """
    if lat is None or lon is None:
        raise ValueError(
            "read_ameriflux needs the site's coordinates: pass lat= and lon= in degrees "
            "(AmeriFlux BASE CSVs do not carry them; see the site's page on ameriflux.lbl.gov)"
        )
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage is a fraction between 0 and 1, got {min_coverage}")
    _check_grid(grid)
    path = _require_file(path, "ameriflux")
    header, skip = _comment_header(path)
    site = site or header.get("site") or _site_from_name(path.name) or path.stem
    where = f"{path.name} (AmeriFlux {site})"

    table = pd.read_csv(path, skiprows=skip, usecols=_is_ameriflux_column, dtype=str)
    cols = _find_columns(table.columns, {"TIMESTAMP_START": ("timestamp_start",)}, where)
    groups = _ameriflux_groups(table.columns)
    if not groups:
        raise ValueError(
            f"{where}: none of the columns FC, FCH4 or TS_* (soil temperature) found; "
            "is this an AmeriFlux BASE file?"
        )

    start = _parse_times(table[cols["TIMESTAMP_START"]])
    ok = ~pd.isna(start)
    table, start = table[ok], pd.DatetimeIndex(start[ok])
    first = ~start.duplicated()
    table, start = table[first], start[first]
    step = _time_step(table, start, where)
    months = _month_starts(start)

    try:
        iy, ix = locate(grid, lat, lon, crs=_grid_crs(grid))
    except ValueError as err:
        raise ValueError(f"{where}: the site {err}") from None
    time = _time_axis(grid, months, where)
    it = _time_index(months, time)
    per_month = (time.days_in_month.to_numpy() * (1440 // step)).astype(float)

    fields = {}
    for name, columns in groups.items():
        record = _row_mean(np.column_stack([_as_values(table[c]) for c in columns]))
        series = _monthly_mean(record, it, per_month, min_coverage)
        field = np.full((len(time), grid.sizes["y"], grid.sizes["x"]), np.nan, dtype=np.float32)
        field[:, iy[0], ix[0]] = series
        fields[name] = field
    attrs = {"modality": "in_situ", "source": f"AmeriFlux BASE {site}"}
    empty = f"no month has {min_coverage:.0%} of its records valid; see min_coverage"
    history = f"read_ameriflux({path.name!r}, min_coverage={min_coverage})"
    out = _assemble(grid, time, fields, attrs, where, history, empty)
    out.attrs.update(site=site, site_lat=float(lat), site_lon=float(lon))
    return out


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
    if not (isinstance(month, int | np.integer) and 1 <= month <= 12):
        raise ValueError(f"month is the calendar month (1 to 12) of the thaw depth, got {month!r}")
    _check_grid(grid)
    path = _require_file(path, "calm")
    table = _read_table(path)
    where = f"{path.name} (CALM)"
    cols = _find_columns(
        table.columns,
        {
            "lat": _LAT,
            "lon": _LON,
            "year": ("year",),
            "alt": ("alt", "alt_cm", "thaw_depth", "thaw_depth_cm", "thaw"),
        },
        where,
    )
    site_col = _match(table.columns, {"site": "site", "site_code": "site", "site_name": "site"})
    lat = _as_values(table[cols["lat"]])
    lon = _as_values(table[cols["lon"]])
    year = _as_values(table[cols["year"]])
    alt = _drop_negative(_as_values(table[cols["alt"]]), where)
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

    lat, lon = sites["lat"].to_numpy(), sites["lon"].to_numpy()
    dates = pd.DataFrame({"year": sites["year"].astype(int), "month": month, "day": 1})
    months = pd.DatetimeIndex(pd.to_datetime(dates)).as_unit("ns")
    iy, ix, inside = _cells(grid, lat, lon, where)
    time = _time_axis(grid, months[inside], where)
    it = _time_index(months[inside], time)
    shape = (len(time), grid.sizes["y"], grid.sizes["x"])
    fields = {"alt": _grid_mean(sites["alt"].to_numpy()[inside], it, iy, ix, shape)}
    attrs = {"modality": "in_situ", "source": "CALM"}
    return _assemble(grid, time, fields, attrs, where, history=f"read_calm({path.name!r})")


# ---------------------------------------------------------------------------------------------
# Tables and columns

_LAT = ("lat", "latitude")
_LON = ("lon", "long", "longitude")


def _require_file(path: str | PathLike[str], kind: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist or is not a file; {_HINTS[kind]}")
    return path


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, skipinitialspace=True)


def _find_columns(
    names: pd.Index, wanted: Mapping[str, tuple[str, ...]], where: str
) -> dict[str, str]:
    """The actual column name for each wanted key, found among its lower-case aliases."""
    lower = {str(name).strip().lower(): name for name in names}
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


def _match(names: pd.Index, aliases: Mapping[str, str]) -> dict[str, str]:
    """Optional columns: ``{key: actual name}`` for each alias (lower case) that is present."""
    lower = {str(name).strip().lower(): name for name in names}
    return {key: lower[alias] for alias, key in aliases.items() if alias in lower}


def _as_values(column: pd.Series) -> np.ndarray:
    """Float64 values with fill values, infinities and non-numbers as NaN."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan, copy=True
    )
    values[~np.isfinite(values) | np.isin(values, SENTINELS)] = np.nan
    return values


def _drop_negative(alt: np.ndarray, where: str) -> np.ndarray:
    negative = alt < 0
    if negative.any():
        warnings.warn(
            f"{where}: {int(negative.sum())} negative thaw depth(s) treated as missing",
            UserWarning,
            stacklevel=3,
        )
        alt = np.where(negative, np.nan, alt)
    return alt


def _geocryoai_factors(units: Mapping[str, str] | None) -> dict[str, float]:
    units = dict(units or {})
    unknown = set(units) - set(GEOCRYOAI_UNITS)
    if unknown:
        raise ValueError(
            f"units= names columns {sorted(unknown)}; the GeoCryoAI value columns are "
            f"{', '.join(GEOCRYOAI_UNITS)}"
        )
    factors = {}
    for column, default in GEOCRYOAI_UNITS.items():
        target = _GEOCRYOAI_TARGETS[column]
        unit = units.get(column, default)
        key = _normalise_unit(unit)
        if key not in UNIT_CONVERSIONS[target]:
            raise ValueError(
                f"unit {unit!r} of column {column!r} is not supported; "
                f"use one of {', '.join(UNIT_CONVERSIONS[target])}"
            )
        factors[column] = UNIT_CONVERSIONS[target][key]
    return factors


def _normalise_unit(unit: str) -> str:
    text = unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("^", "")
    text = re.sub(r"\b(day|d)-1\b", "d-1", text)
    text = re.sub(r"\b(umol|nmol|mmol|mol) (co2|ch4) ", r"\1 ", text)  # species in the unit
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Time


def _parse_times(column: pd.Series) -> pd.DatetimeIndex:
    """Dates from ISO strings or from AmeriFlux-style digits (YYYYMM, YYYYMMDD, YYYYMMDDHHMM)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column).as_unit("ns")
    text = column.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    digits = text.str.fullmatch(r"\d{6}|\d{8}|\d{12}")
    if digits.mean() > 0.5:
        formats = {6: "%Y%m", 8: "%Y%m%d", 12: "%Y%m%d%H%M"}
        fmt = formats[int(text[digits].str.len().mode().iloc[0])]
        times = pd.to_datetime(text, format=fmt, errors="coerce")
    else:
        times = pd.to_datetime(text, errors="coerce")
    return pd.DatetimeIndex(times).as_unit("ns")


def _month_starts(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    months = times.to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
    return pd.DatetimeIndex(months)


def _time_axis(grid: xr.Dataset, months: pd.DatetimeIndex, where: str) -> pd.DatetimeIndex:
    """The grid's own months, or the regular monthly axis spanning ``months``."""
    if len(months) == 0:
        raise ValueError(f"{where}: no valid data inside the grid")
    if "time" in grid.coords:
        axis = pd.DatetimeIndex(grid["time"].values).as_unit("ns")
        outside = int((~months.isin(axis)).sum())
        if outside == len(months):
            raise ValueError(
                f"{where}: no data within the grid's months {axis[0]:%Y-%m} to {axis[-1]:%Y-%m} "
                f"(the file spans {months.min():%Y-%m} to {months.max():%Y-%m})"
            )
        if outside:
            warnings.warn(
                f"{where}: {outside} record(s) outside the grid's months "
                f"{axis[0]:%Y-%m} to {axis[-1]:%Y-%m} dropped",
                UserWarning,
                stacklevel=3,
            )
        return axis
    return pd.date_range(months.min(), months.max(), freq="MS").as_unit("ns")


def _time_index(months: pd.DatetimeIndex, axis: pd.DatetimeIndex) -> np.ndarray:
    """Position of each month on ``axis``, -1 where it is not on it."""
    return axis.get_indexer(months)


# ---------------------------------------------------------------------------------------------
# Space


def _grid_crs(grid: xr.Dataset) -> str:
    ref = grid.coords.get("spatial_ref")
    wkt = ref.attrs.get("crs_wkt") if ref is not None else None
    return wkt or CRS


def _check_grid(grid: xr.Dataset) -> None:
    if not isinstance(grid, xr.Dataset) or not {"y", "x"} <= set(grid.coords):
        raise ValueError(
            "grid must be an xarray.Dataset with 1-D 'y' and 'x' coordinates in EPSG:3338 metres, "
            "e.g. geocryo.grid.grid(ny, nx, resolution) or an existing cube"
        )


def _drop_unplaced(
    months: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray, where: str
) -> np.ndarray:
    keep = ~pd.isna(months) & np.isfinite(lat) & np.isfinite(lon)
    if not keep.any():
        raise ValueError(f"{where}: no row has a valid date, lat and lon")
    if not keep.all():
        warnings.warn(
            f"{where}: {int((~keep).sum())} row(s) without a valid date, lat or lon dropped",
            UserWarning,
            stacklevel=3,
        )
    return np.asarray(keep)


def _covering_grid(lat: np.ndarray, lon: np.ndarray, resolution: float) -> xr.Dataset:
    """The smallest grid at ``resolution`` with centres on its multiples that holds every point."""
    res = float(resolution)
    if not res > 0:
        raise ValueError(f"resolution must be positive metres, got {resolution}")
    px, py = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(lon, lat)
    kx, ky = np.round(np.asarray(px) / res), np.round(np.asarray(py) / res)
    x = np.arange(kx.min(), kx.max() + 1) * res
    y = np.arange(ky.max(), ky.min() - 1, -1) * res  # north to south, like a raster
    return grid_from_axes(y, x)


def _cells(
    grid: xr.Dataset, lat: np.ndarray, lon: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell indices ``(iy, ix)`` of the points inside the grid, and the mask of those points.

    The same rule as :func:`geocryo.grid.locate` (nearest centre, at most half a cell away),
    by binary search on the distinct locations so that long tables stay cheap. Points outside
    are dropped with a warning; all outside is an error.
    """
    _check_grid(grid)
    points, inverse = np.unique(np.column_stack([lat, lon]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    transformer = pyproj.Transformer.from_crs("EPSG:4326", _grid_crs(grid), always_xy=True)
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
        warnings.warn(
            f"{where}: {int((~inside).sum())} of {len(points)} location(s) "
            f"({int((~rows).sum())} row(s)) lie outside the grid and were dropped",
            UserWarning,
            stacklevel=3,
        )
    return iy[inverse][rows], ix[inverse][rows], rows


def _warn_shared_cells(
    iy: np.ndarray, ix: np.ndarray, lat: np.ndarray, lon: np.ndarray, resolution: float, where: str
) -> None:
    pairs = np.unique(np.column_stack([iy, ix, lat, lon]), axis=0)
    shared = len(pairs) - len(np.unique(pairs[:, :2], axis=0))
    if shared:
        warnings.warn(
            f"{where}: {shared} location(s) share a {resolution:g} m cell with another and are "
            "averaged; if the table's pixel centres are not on multiples of the resolution, "
            "pass a grid that matches them",
            UserWarning,
            stacklevel=3,
        )


def _nearest(coord: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest value of the monotonic ``coord`` to each ``p``, and whether the
    point lies within half a step of it."""
    order = np.argsort(coord)
    ordered = coord[order]
    if len(coord) == 1:
        return np.zeros(len(p), dtype=int), np.ones(len(p), dtype=bool)
    j = np.clip(np.searchsorted(ordered, p), 1, len(ordered) - 1)
    j = np.where(np.abs(p - ordered[j - 1]) <= np.abs(ordered[j] - p), j - 1, j)
    step = abs(coord[1] - coord[0])
    inside = np.abs(ordered[j] - p) <= step / 2 * (1 + 1e-9)
    return order[j], inside


# ---------------------------------------------------------------------------------------------
# Gridding


def _grid_mean(
    values: np.ndarray, it: np.ndarray, iy: np.ndarray, ix: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """Mean of the valid ``values`` falling in each (time, y, x) cell; NaN where none falls."""
    nt, ny, nx = shape
    ok = np.isfinite(values) & (it >= 0)
    flat = (it[ok] * ny + iy[ok]) * nx + ix[ok]
    size = nt * ny * nx
    total = np.bincount(flat, weights=values[ok], minlength=size)
    count = np.bincount(flat, minlength=size)
    out = np.full(size, np.nan, dtype=np.float32)
    filled = count > 0
    out[filled] = total[filled] / count[filled]
    return out.reshape(shape)


def _row_mean(matrix: np.ndarray) -> np.ndarray:
    """Mean over columns of the valid entries of each row; NaN where a row has none."""
    valid = np.isfinite(matrix)
    count = valid.sum(axis=1)
    total = np.where(valid, matrix, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(matrix), np.nan), where=count > 0)


def _monthly_mean(
    record: np.ndarray, it: np.ndarray, per_month: np.ndarray, min_coverage: float
) -> np.ndarray:
    """Monthly means of ``record``, NaN for months with less than ``min_coverage`` valid."""
    ok = np.isfinite(record) & (it >= 0)
    n = len(per_month)
    count = np.bincount(it[ok], minlength=n).astype(float)
    total = np.bincount(it[ok], weights=record[ok], minlength=n)
    kept = (count > 0) & (count >= min_coverage * per_month)
    return np.divide(total, count, out=np.full(n, np.nan), where=kept)


def _assemble(
    grid: xr.Dataset,
    time: pd.DatetimeIndex,
    fields: Mapping[str, np.ndarray],
    attrs: Mapping[str, str],
    where: str,
    history: str,
    empty: str = "every value is missing, a fill value or NaN",
) -> xr.Dataset:
    if not any(np.isfinite(field).any() for field in fields.values()):
        raise ValueError(f"{where}: no valid data ({empty})")
    coords = {"time": ("time", time.to_numpy(), {"long_name": "start of the month"})}
    coords.update(_grid_coords(grid))
    data = {
        name: (
            ("time", "y", "x"),
            field.astype(np.float32),
            {**_ATTRS[name], **attrs, "grid_mapping": "spatial_ref"},
        )
        for name, field in fields.items()
    }
    ds = xr.Dataset(data, coords=coords, attrs={"history": f"geocryo.readers.{history}"})
    return validate(ds)


def _grid_coords(grid: xr.Dataset) -> dict[str, xr.Variable]:
    """The grid's ``y``, ``x``, ``lat``, ``lon`` and ``spatial_ref``, made where it lacks them."""
    _check_grid(grid)
    names = ("y", "x", "lat", "lon", "spatial_ref")
    if not all(name in grid.coords for name in names):
        grid = grid_from_axes(grid["y"].values, grid["x"].values, _grid_crs(grid))
    return {name: grid.coords[name].variable for name in names}


# ---------------------------------------------------------------------------------------------
# AmeriFlux specifics

_QUALIFIED = re.compile(r"^(FC|FCH4|TS)((?:_\d+){0,3})$")
_AMERIFLUX_TARGETS = {"FC": "co2_flux", "FCH4": "ch4_flux", "TS": "soil_temperature"}


def _is_ameriflux_column(name: str) -> bool:
    upper = name.strip().upper()
    return upper in ("TIMESTAMP_START", "TIMESTAMP_END") or bool(_QUALIFIED.match(upper))


def _ameriflux_groups(names: pd.Index) -> dict[str, list[str]]:
    """The columns that make each output variable: the bare name if present, else its
    replicates; for soil temperature, the shallowest depth index only."""
    found: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for name in names:
        match = _QUALIFIED.match(str(name).strip().upper())
        if match:
            index = tuple(int(i) for i in match.group(2).split("_")[1:])
            found.setdefault(match.group(1), []).append((index, name))
    groups = {}
    for base, entries in found.items():
        if base == "TS":
            depth = {name: _depth_index(index) for index, name in entries}
            shallowest = min(depth.values())
            groups["soil_temperature"] = [n for n, d in depth.items() if d == shallowest]
        else:
            bare = [name for index, name in entries if not index]
            groups[_AMERIFLUX_TARGETS[base]] = bare or [name for _, name in entries]
    return {name: groups[name] for name in _AMERIFLUX_TARGETS.values() if name in groups}


def _depth_index(index: tuple[int, ...]) -> int:
    # TS_H_V_R: V is the depth; TS_N: N is the depth rank; a bare TS is one sensor.
    if len(index) >= 2:
        return index[1]
    return index[0] if index else 0


def _comment_header(path: Path) -> tuple[dict[str, str], int]:
    """The ``# key: value`` lines atop the file (keys in lower case), and how many lines to skip."""
    header: dict[str, str] = {}
    skip = 0
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            if not line.startswith("#"):
                break
            skip += 1
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip().lower()] = value.strip()
    return header, skip


def _site_from_name(name: str) -> str | None:
    match = re.match(r"AMF_([A-Za-z]{2}-[A-Za-z0-9]{3})_", name)
    return match.group(1) if match else None


def _time_step(table: pd.DataFrame, start: pd.DatetimeIndex, where: str) -> int:
    """Minutes per record, from TIMESTAMP_END - TIMESTAMP_START (or the spacing of starts)."""
    end_col = _match(table.columns, {"timestamp_end": "end"}).get("end")
    if end_col is not None:
        minutes = (_parse_times(table[end_col]) - start) / pd.Timedelta(minutes=1)
    else:
        minutes = np.diff(start.sort_values().to_numpy()) / np.timedelta64(1, "m")
    minutes = np.asarray(minutes, dtype=float)
    minutes = minutes[np.isfinite(minutes) & (minutes > 0)]
    step = round(float(np.median(minutes))) if len(minutes) else 0
    if step <= 0 or 1440 % step:
        raise ValueError(
            f"{where}: cannot work out the record length from TIMESTAMP_START/TIMESTAMP_END "
            f"(got {step} min); BASE files are half-hourly (30) or hourly (60)"
        )
    return step
